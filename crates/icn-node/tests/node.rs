//! The node over a real store: what happens when writing fails.

use icn_identity::Did;
use icn_kernel::{KIND_KEY_ADD, KeyAdd, encode_body};
use icn_node::prelude::*;
use icn_node::{DataDir, Node, NodeError, PublicIdentity};
use icn_store::StoreError;
use icn_testkit::{at, member};

fn node_with_coop(dir: &std::path::Path) -> Node {
    node_with_founders(dir, &[])
}

/// Member 1's node, founding a co-op with `others`.
fn node_with_founders(dir: &std::path::Path, others: &[Did]) -> Node {
    let key = member(1);
    let data = DataDir::new(dir);
    std::fs::create_dir_all(dir).unwrap();
    data.write_public_identity(&PublicIdentity {
        did: Did::from_inception_key(key.public()),
        device_key: key.public(),
        device_label: "laptop".into(),
    })
    .unwrap();
    let mut node = Node::open(data, vec![key], &icn_node::modules()).unwrap();
    node.create_coop("Bakery", others, &Default::default(), at(0))
        .unwrap();
    node
}

#[test]
fn a_full_disk_fails_the_write_and_the_log_does_not_run_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node_with_coop(dir.path());
    node.store()
        .set_page_limit(node.store().page_count().unwrap())
        .unwrap();

    let mut failure = None;
    for i in 0..200u8 {
        let body = encode_body(&KeyAdd {
            key: member(100 + (i % 15)).public(),
            label: "x".repeat(60),
        });
        match node.append(KIND_KEY_ADD, body, at(1)) {
            Ok(_) => {}
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    let failure = failure.expect("the page limit is reached");
    assert!(
        matches!(failure, NodeError::Store(StoreError::DiskFull)),
        "{failure}"
    );
    let counted_in_memory = node.log().unwrap().counted_len() as u64;
    assert_eq!(counted_in_memory, node.store().counted_events().unwrap());

    // Room again: writing resumes at the right position.
    node.store().set_page_limit(1 << 30).unwrap();
    let body = encode_body(&KeyAdd {
        key: member(200).public(),
        label: "after".into(),
    });
    node.append(KIND_KEY_ADD, body, at(2)).unwrap();
    drop(node);
    let reopened = Node::open(DataDir::new(dir.path()), Vec::new(), &icn_node::modules()).unwrap();
    assert_eq!(
        reopened.log().unwrap().counted_len() as u64,
        counted_in_memory + 1
    );
}

/// A rotation cut short after its event was committed (identity.json still
/// names the old key, the keystore holds both): the node signs with the new
/// key on the next start and brings identity.json up to date.
#[test]
fn an_interrupted_rotation_resumes_with_the_key_the_log_authorises() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = node_with_coop(dir.path());
    let old_identity = node.identity().unwrap().clone();
    let new = member(2);
    node.rotate_key(new.clone(), "new laptop", at(1)).unwrap();
    drop(node);
    DataDir::new(dir.path())
        .write_public_identity(&old_identity)
        .unwrap();

    let mut node = Node::open(
        DataDir::new(dir.path()),
        vec![member(1), new.clone()],
        &icn_node::modules(),
    )
    .unwrap();
    assert_eq!(node.identity().unwrap().device_key, new.public());
    assert_eq!(node.identity().unwrap().device_label, "new laptop");
    let on_disk = DataDir::new(dir.path()).public_identity().unwrap().unwrap();
    assert_eq!(on_disk.device_key, new.public());
    // And it can sign.
    let body = encode_body(&KeyAdd {
        key: member(3).public(),
        label: "paper".into(),
    });
    node.append(KIND_KEY_ADD, body, at(2)).unwrap();
    drop(node);

    // Only the rotated-away key left: a clear refusal, not a silent bad signer.
    let Err(error) = Node::open(
        DataDir::new(dir.path()),
        vec![member(1)],
        &icn_node::modules(),
    ) else {
        panic!("a revoked key was accepted as signer");
    };
    assert!(error.to_string().contains("may sign for"), "{error}");
}

/// Peer ingest through the pipeline: batches verified on several workers are
/// committed in their original order (so no chain waits on itself), and
/// garbage or forged bytes are counted, not applied, and stop nothing.
#[test]
fn the_pipeline_commits_in_order_and_counts_bad_bytes() {
    use icn_node::pipeline::ingest_batches;
    use icn_testkit::{Coop, NoteDomain, verified};

    fn note_domains() -> Vec<Box<dyn icn_kernel::Domain>> {
        vec![Box::new(NoteDomain::default())]
    }
    let keys: Vec<_> = (1..=3).map(member).collect();
    let mut coop = Coop::found("Pipeline", &keys.iter().collect::<Vec<_>>());
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(
        DataDir::new(dir.path()),
        Vec::new(),
        &icn_node::Modules::of_domains(note_domains),
    )
    .unwrap();
    node.join(verified(coop.genesis.clone())).unwrap();

    let mut wire: Vec<Vec<u8>> = (0..60)
        .map(|i| {
            coop.note(&keys[i % 3], &format!("note {i}"), vec![], at(1))
                .bytes()
                .to_vec()
        })
        .collect();
    let mut forged = wire[59].clone();
    let last = forged.len() - 1;
    forged[last] ^= 1; // breaks the signature
    wire.insert(30, b"not an event".to_vec());
    wire.insert(31, forged);
    let batches: Vec<Vec<Vec<u8>>> = wire.chunks(7).map(<[_]>::to_vec).collect();

    let report = ingest_batches(&mut node, batches, 3, at(2)).unwrap();
    assert_eq!(report.accepted, 60, "{report:?}");
    assert_eq!(report.malformed, 2, "{report:?}");
    assert_eq!(report.pending, 0, "out-of-order commit: {report:?}");
    assert!(report.commits >= 1);
    assert_eq!(node.log().unwrap().counted_len(), 61);
}

/// An event by `key`'s identity, first in its chain, in the node's co-op.
fn first_event_of(
    node: &Node,
    key: &icn_identity::KeyPair,
    kind: &str,
    body: Vec<u8>,
) -> icn_kernel::Event {
    let log = node.log().unwrap();
    icn_kernel::Event::sign(
        icn_kernel::EventContent {
            format: icn_kernel::FORMAT_VERSION,
            scope: log.coop(),
            author: Did::from_inception_key(key.public()),
            seq: 1,
            prev: None,
            deps: vec![],
            timestamp: at(10),
            kind: icn_kernel::EventKind::new(kind).unwrap(),
            body,
            signer: key.public(),
        },
        key,
    )
    .unwrap()
}

#[test]
fn a_request_is_paid_by_the_payers_node_once_its_auto_accept_time_comes() {
    let dir = tempfile::tempdir().unwrap();
    let ben = member(2);
    let ben_did = Did::from_inception_key(ben.public());
    let mut node = node_with_founders(dir.path(), &[ben_did]);
    let me = node.identity().unwrap().did;
    let request = icn_ledger::Request {
        payer: me,
        currency: "hours".into(),
        amount: 120,
        memo: "bread".into(),
    };
    let asked = first_event_of(&node, &ben, icn_ledger::KIND_REQUEST, encode_body(&request));
    node.ingest(vec![asked.verify().unwrap()], at(10)).unwrap();

    // Six days on: not yet.
    let day = 24 * 60;
    assert!(node.ledger_duties(at(10 + 6 * day)).unwrap().is_empty());
    assert_eq!(node.inbox(&me).unwrap().requests[0].status, "pending");
    // Seven days on: the node pays it, once.
    let paid = node.ledger_duties(at(10 + 7 * day)).unwrap();
    assert_eq!(paid.len(), 1);
    assert!(node.ledger_duties(at(10 + 8 * day)).unwrap().is_empty());
    let inbox = node.inbox(&me).unwrap();
    assert_eq!(inbox.requests[0].status, "paid");
    assert_eq!(
        inbox.requests[0].answer.as_deref(),
        Some(paid[0].to_string().as_str())
    );
    assert_eq!(node.balance(&ben_did).unwrap().accounts[0].balance, 120);
}

#[test]
fn a_group_commit_that_fails_records_none_of_its_events() {
    let dir = tempfile::tempdir().unwrap();
    let ben = Did::from_inception_key(member(2).public());
    // Nothing moves on Cy's account: a founder's row is there from the start.
    let cy = Did::from_inception_key(member(3).public());
    let mut node = node_with_founders(dir.path(), &[ben, cy]);
    let pay = |node: &mut Node, minute: u64| {
        let request = icn_api::Pay {
            to: ben.to_string(),
            amount: "1m".into(),
            currency: None,
            memo: "x".repeat(400),
        };
        node.pay(&request, at(minute))
    };
    let before = node.log().unwrap().counted_len();
    node.store()
        .set_page_limit(node.store().page_count().unwrap())
        .unwrap();
    let outcome = node.batched(|node| (0..300).map(|i| pay(node, i).unwrap()).count());
    assert!(
        matches!(outcome, Err(NodeError::Store(_))),
        "{:?}",
        outcome.map(|_| ())
    );
    assert_eq!(node.log().unwrap().counted_len(), before);
    // With room again, a batch commits and every event is there after a restart.
    node.store().set_page_limit(1_000_000_000).unwrap();
    let signed = node
        .batched(|node| (0..3).map(|i| pay(node, i).unwrap()).collect::<Vec<_>>())
        .unwrap();
    drop(node);
    let reopened = Node::open(
        DataDir::new(dir.path()),
        vec![member(1)],
        &icn_node::modules(),
    )
    .unwrap();
    for id in &signed {
        assert!(reopened.log().unwrap().is_counted(id));
    }
    assert_eq!(reopened.balance(&ben).unwrap().accounts[0].balance, 3);
}

/// A balance read from the views on a reader's connection answers what the
/// node answers, for a member named by DID; for what the views cannot answer
/// alone (a name), it says so, and the node answers.
#[test]
fn the_views_answer_a_balance_as_the_node_does() {
    let dir = tempfile::tempdir().unwrap();
    let ben = Did::from_inception_key(member(2).public());
    // Nothing moves on Cy's account: a founder's row is there from the start.
    let cy = Did::from_inception_key(member(3).public());
    let mut node = node_with_founders(dir.path(), &[ben, cy]);
    let me = node.identity().unwrap().did;
    let pay = icn_api::Pay {
        to: ben.to_string(),
        amount: "90m".into(),
        currency: None,
        memo: "bread".into(),
    };
    node.pay(&pay, at(1)).unwrap();
    let readers = node.readers();
    for did in [me, ben, cy] {
        let now = icn_node::node::now();
        let from_views = readers
            .read(|views| icn_coop::ledger::balance_from_views(views, &did.to_string(), now))
            .unwrap();
        assert_eq!(from_views, Some(node.balance(&did).unwrap()), "{did}");
    }
    let by_name = readers
        .read(|views| icn_coop::ledger::balance_from_views(views, "Ben", icn_node::node::now()))
        .unwrap();
    assert_eq!(by_name, None);
}

/// Every event is verified before it is stored, and stored with a checksum of
/// its whole bytes: a start verifies only events whose bytes changed since
/// (or that were stored before checksums were), so it does not verify every
/// signature again, and still refuses a damaged one.
#[test]
fn a_start_verifies_only_the_events_whose_bytes_changed_since_they_were_stored() {
    use icn_node::node::{Signatures, replay_store};
    let dir = tempfile::tempdir().unwrap();
    let ben = Did::from_inception_key(member(2).public());
    let mut node = node_with_founders(dir.path(), &[ben]);
    for minutes in 1..=3 {
        let pay = icn_api::Pay {
            to: ben.to_string(),
            amount: format!("{minutes}m"),
            currency: None,
            memo: String::new(),
        };
        node.pay(&pay, at(minutes)).unwrap();
    }
    drop(node);
    let replay = |signatures| {
        let store = icn_store::Store::open(dir.path()).unwrap();
        replay_store(&store, &icn_node::modules(), signatures)
            .unwrap()
            .unwrap()
            .verified
    };
    assert_eq!(replay(Signatures::Changed), 0);
    // The genesis and three payments: `icnctl verify` checks them all.
    assert_eq!(replay(Signatures::All), 4);

    let database =
        || rusqlite::Connection::open(dir.path().join(icn_store::DATABASE_FILE)).unwrap();
    // Rows from before checksums: verified at the next start, which writes
    // theirs; trusted from then on.
    database()
        .execute("UPDATE events SET sum = NULL", [])
        .unwrap();
    assert_eq!(replay(Signatures::Changed), 4);
    drop(Node::open(DataDir::new(dir.path()), Vec::new(), &icn_node::modules()).unwrap());
    assert_eq!(replay(Signatures::Changed), 0);

    // A signature damaged on disk (the id, which covers only the content,
    // still matches): the checksum shows it, and the start refuses.
    let connection = database();
    let bytes: Vec<u8> = connection
        .query_row(
            "SELECT bytes FROM events ORDER BY seqno DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    let mut damaged = bytes.clone();
    *damaged.last_mut().unwrap() ^= 0x01;
    connection
        .execute(
            "UPDATE events SET bytes = ?1 WHERE bytes = ?2",
            rusqlite::params![damaged, bytes],
        )
        .unwrap();
    drop(connection);
    let refused = Node::open(DataDir::new(dir.path()), Vec::new(), &icn_node::modules());
    assert!(
        matches!(&refused, Err(NodeError::Damaged { reason, .. }) if reason.contains("signature")),
        "{:?}",
        refused.err()
    );
}
