//! The files domain in the kernel: who may write which namespace, siblings
//! made apart, and the same views from any order of the same events.

use icn_files::{
    FilesDomain,
    crypto::{BlobId, NamespaceKey, Wrap},
    domain::{
        COOP_NAMESPACE, Change, FileRow, KIND_KEY, KIND_VERSION, KeyBody, VIEW_FILE, VersionBody,
        personal,
    },
};
use icn_identity::KeyPair;
use icn_kernel::{Changes, Event, EventId, Log, LogConfig, Verdict, ViewRow};
use icn_testkit::{Coop, at, did_of, member, verified};
use proptest::prelude::*;

fn new_log(coop: &Coop) -> Log {
    Log::new(
        verified(coop.genesis.clone()),
        LogConfig::default(),
        vec![Box::new(FilesDomain::default())],
    )
    .unwrap()
    .0
}

fn offer(log: &mut Log, event: &Event) -> Verdict {
    log.ingest(verified(event.clone()), at(10_000), &mut Changes::default())
}

fn key_event(
    coop: &mut Coop,
    author: &KeyPair,
    namespace: &str,
    readers: &[&KeyPair],
    time: u64,
) -> Event {
    let key = NamespaceKey::generate();
    let body = KeyBody {
        namespace: namespace.to_owned(),
        wraps: readers
            .iter()
            .map(|reader| Wrap::seal(&key, &reader.public(), namespace))
            .collect(),
        of: None,
    };
    coop.event(
        author,
        KIND_KEY,
        postcard::to_stdvec(&body).unwrap(),
        at(time),
    )
}

fn version(
    coop: &mut Coop,
    author: &KeyPair,
    namespace: &str,
    file: u8,
    key: EventId,
    parents: Vec<EventId>,
    time: u64,
) -> Event {
    let body = VersionBody {
        namespace: namespace.to_owned(),
        file: [file; 32],
        key,
        parents: parents.clone(),
        change: Change::Put {
            manifest: BlobId([time as u8; 32]),
            path: vec![1; 40],
            size: time,
        },
    };
    // The parents are in the version's causal past (the kernel bounds
    // deps; the test of too many parents carries none).
    let deps = if parents.len() <= 4 {
        parents
    } else {
        Vec::new()
    };
    coop.event_signed(
        did_of(author),
        author,
        KIND_VERSION,
        postcard::to_stdvec(&body).unwrap(),
        deps,
        at(time),
    )
}

fn heads(log: &Log, namespace: &str, file: u8) -> Vec<String> {
    let key = format!("{namespace}/{}", hex(&[file; 32]));
    log.all_rows()
        .into_iter()
        .find(|row| row.view == VIEW_FILE && row.key == key)
        .and_then(|row| row.value)
        .map(|value| serde_json::from_str::<FileRow>(&value).unwrap().heads)
        .unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn edits_made_apart_are_both_kept_until_one_supersedes_them() {
    let keys: Vec<KeyPair> = (1..=3).map(member).collect();
    let [ana, ben, cleo] = [&keys[0], &keys[1], &keys[2]];
    let mut coop = Coop::found("Drive", &[ana, ben, cleo]);
    let mut log = new_log(&coop);
    let key = key_event(&mut coop, ana, COOP_NAMESPACE, &[ana, ben, cleo], 1);
    assert_eq!(offer(&mut log, &key), Verdict::Accepted);
    let first = version(&mut coop, ana, COOP_NAMESPACE, 1, key.id(), vec![], 2);
    assert_eq!(offer(&mut log, &first), Verdict::Accepted);
    // During a split, Ana and Ben each edit the file they both saw.
    let by_ana = version(
        &mut coop,
        ana,
        COOP_NAMESPACE,
        1,
        key.id(),
        vec![first.id()],
        3,
    );
    let by_ben = version(
        &mut coop,
        ben,
        COOP_NAMESPACE,
        1,
        key.id(),
        vec![first.id()],
        4,
    );
    assert_eq!(offer(&mut log, &by_ben), Verdict::Accepted);
    assert_eq!(offer(&mut log, &by_ana), Verdict::Accepted);
    assert_eq!(
        heads(&log, COOP_NAMESPACE, 1),
        vec![by_ana.id().to_string(), by_ben.id().to_string()],
        "both edits are kept, neither overwrites the other"
    );
    // Cleo merges them: one head again.
    let merged = version(
        &mut coop,
        cleo,
        COOP_NAMESPACE,
        1,
        key.id(),
        vec![by_ana.id(), by_ben.id()],
        5,
    );
    assert_eq!(offer(&mut log, &merged), Verdict::Accepted);
    assert_eq!(
        heads(&log, COOP_NAMESPACE, 1),
        vec![merged.id().to_string()]
    );
    // A version filed under another key's id for the same path supersedes
    // across files (the namespace's supersession is one set).
    let other_key = key_event(&mut coop, ben, COOP_NAMESPACE, &[ana, ben, cleo], 5);
    assert_eq!(offer(&mut log, &other_key), Verdict::Accepted);
    let across = version(
        &mut coop,
        ben,
        COOP_NAMESPACE,
        2,
        other_key.id(),
        vec![merged.id()],
        6,
    );
    assert_eq!(offer(&mut log, &across), Verdict::Accepted);
    assert!(heads(&log, COOP_NAMESPACE, 1).is_empty());
    assert_eq!(
        heads(&log, COOP_NAMESPACE, 2),
        vec![across.id().to_string()]
    );
}

#[test]
fn a_member_writes_only_their_own_space_and_the_coops() {
    let keys: Vec<KeyPair> = (1..=2).map(member).collect();
    let [ana, ben] = [&keys[0], &keys[1]];
    let mut coop = Coop::found("Drive", &[ana, ben]);
    let mut log = new_log(&coop);
    let ana_space = personal(&did_of(ana));
    let refused = |verdict: Verdict, why: &str| match verdict {
        Verdict::Rejected(rejection) | Verdict::Quarantined(rejection) => assert!(
            rejection.to_string().contains(why),
            "{rejection} should say {why:?}"
        ),
        other => panic!("{other:?}: should be refused for {why:?}"),
    };
    // Ben cannot write Ana's space, nor wrap her key to himself.
    let intrusion = key_event(&mut coop, ben, &ana_space, &[ben], 1);
    refused(offer(&mut log, &intrusion), "not a namespace");
    let leak = key_event(&mut coop, ana, &ana_space, &[ana, ben], 1);
    refused(offer(&mut log, &leak), "only to its member's own keys");
    let own = key_event(&mut coop, ana, &ana_space, &[ana], 2);
    assert_eq!(offer(&mut log, &own), Verdict::Accepted);
    let made_up = key_event(&mut coop, ana, "somewhere:else", &[ana], 2);
    refused(offer(&mut log, &made_up), "not a namespace");
    let too_many = version(
        &mut coop,
        ana,
        &ana_space,
        1,
        own.id(),
        (0..17).map(|n| EventId([n; 32])).collect(),
        3,
    );
    refused(offer(&mut log, &too_many), "at most 16");
}

/// Events of several members on a few files, with parents drawn from
/// what came before.
fn history(seed: u64, count: usize) -> (Coop, Vec<Event>) {
    let keys: Vec<KeyPair> = (1..=4).map(member).collect();
    let mut coop = Coop::found("Drive", &keys.iter().collect::<Vec<_>>());
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let readers: Vec<&KeyPair> = keys.iter().collect();
    let mut events = vec![key_event(&mut coop, &keys[0], COOP_NAMESPACE, &readers, 1)];
    let key = events[0].id();
    let mut versions: Vec<EventId> = Vec::new();
    for i in 0..count {
        let author = &keys[(next() % 4) as usize];
        let mut parents: Vec<EventId> = Vec::new();
        for _ in 0..next() % 3 {
            if !versions.is_empty() {
                parents.push(versions[(next() as usize) % versions.len()]);
            }
        }
        let file = (next() % 3) as u8;
        if i % 7 == 3 {
            // The key's maker wraps it again to more keys: its wraps join
            // the key's row in whatever order the events arrive.
            let body = KeyBody {
                namespace: COOP_NAMESPACE.to_owned(),
                wraps: vec![Wrap::seal(
                    &NamespaceKey::generate(),
                    &member(9).public(),
                    COOP_NAMESPACE,
                )],
                of: Some(key),
            };
            let time = at(10 + i as u64);
            let rewrap = coop.event(
                &keys[0],
                KIND_KEY,
                postcard::to_stdvec(&body).unwrap(),
                time,
            );
            events.push(rewrap);
        }
        let event = if next() % 5 == 0 {
            let space = personal(&did_of(author));
            version(&mut coop, author, &space, file, key, vec![], 10 + i as u64)
        } else {
            version(
                &mut coop,
                author,
                COOP_NAMESPACE,
                file,
                key,
                parents,
                10 + i as u64,
            )
        };
        versions.push(event.id());
        events.push(event);
    }
    (coop, events)
}

fn run(coop: &Coop, events: &[Event], order: &[usize]) -> Vec<ViewRow> {
    let mut log = new_log(coop);
    for &i in order {
        offer(&mut log, &events[i]);
    }
    log.all_rows()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any order of the same keys and versions ends in the same views.
    #[test]
    fn files_views_are_independent_of_order(seed: u64, count in 1usize..30, shuffle: u64) {
        let (coop, events) = history(seed, count);
        let in_order: Vec<usize> = (0..events.len()).collect();
        let rows = run(&coop, &events, &in_order);
        prop_assert!(rows.iter().any(|row| row.view == VIEW_FILE));
        let mut order = in_order.clone();
        let mut state = shuffle | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(rows, run(&coop, &events, &order), "order {:?}", order);
    }
}

/// A node with the files module alone, for its member `key`'s seed.
fn files_node(dir: &std::path::Path, seed: u8) -> icn_runtime::Node {
    let key = member(seed);
    let data = icn_runtime::DataDir::new(dir);
    data.write_public_identity(&icn_runtime::PublicIdentity {
        did: did_of(&key),
        device_key: key.public(),
        device_label: "laptop".into(),
    })
    .unwrap();
    let modules = icn_runtime::Modules::new(vec![icn_files::FilesModule::module()]);
    let mut node = icn_runtime::Node::open(data, vec![key], &modules).unwrap();
    node.create_coop("Drive", &[], &Default::default(), at(0))
        .unwrap();
    node
}

#[test]
fn a_device_linked_later_can_read_the_members_files() {
    use icn_runtime::operation::{Body, Services};
    let dir = tempfile::tempdir().unwrap();
    let node = files_node(dir.path(), 1);
    let source = dir.path().join("plan.txt");
    std::fs::write(&source, b"the plan").unwrap();
    let services = Services {
        readers: node.readers(),
        node: std::sync::Arc::new(std::sync::Mutex::new(node)),
    };
    let put = icn_files::service::operations()
        .into_iter()
        .find_map(|operation| match operation.body {
            Body::Task(run) if operation.id == "filesPut" => Some(run),
            _ => None,
        })
        .unwrap();
    let request = serde_json::json!({ "source": source, "path": "plan.txt" });
    put(
        &services,
        &icn_runtime::Requester::ThisNode,
        request.to_string().as_bytes(),
    )
    .unwrap();
    let now = icn_runtime::node::now();
    let mut node = services.node.lock().unwrap();
    let space = personal(&did_of(&member(1)));
    let phone = node.add_device("phone", now).unwrap();
    let phone = icn_identity::paper_key_decode(&phone.paper_key).unwrap();
    let opens = |node: &icn_runtime::Node| {
        node.store()
            .view(icn_files::domain::VIEW_KEY)
            .unwrap()
            .iter()
            .filter(|(key, _)| key.starts_with(&space))
            .flat_map(|(_, value)| {
                serde_json::from_str::<icn_files::domain::KeyRow>(value)
                    .unwrap()
                    .wraps
            })
            .filter_map(|wrap| {
                let bytes: Vec<u8> = (0..wrap.len())
                    .step_by(2)
                    .map(|at| u8::from_str_radix(&wrap[at..at + 2], 16).unwrap())
                    .collect();
                postcard::from_bytes::<Wrap>(&bytes).ok()
            })
            .any(|wrap| wrap.open(&phone, &space).is_ok())
    };
    assert!(!opens(&node), "the phone was not among the key's readers");
    icn_files::service::share_keys(&mut node, now).unwrap();
    assert!(opens(&node), "the duty shared the key with the phone");
    let events = node.log().unwrap().counted_len();
    icn_files::service::share_keys(&mut node, now).unwrap();
    assert_eq!(
        node.log().unwrap().counted_len(),
        events,
        "nothing left to share"
    );
}
