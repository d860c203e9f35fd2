//! The node over a real store: what happens when writing fails.

use icn_identity::Did;
use icn_kernel::{KIND_KEY_ADD, KeyAdd, encode_body};
use icn_node::{DataDir, Node, NodeError, PublicIdentity};
use icn_store::StoreError;
use icn_testkit::{at, member};

fn node_with_coop(dir: &std::path::Path) -> Node {
    let key = member(1);
    let data = DataDir::new(dir);
    std::fs::create_dir_all(dir).unwrap();
    data.write_public_identity(&PublicIdentity {
        did: Did::from_inception_key(key.public()),
        device_key: key.public(),
        device_label: "laptop".into(),
    })
    .unwrap();
    let mut node = Node::open(data, Some(key)).unwrap();
    node.create_coop("Bakery", &[], at(0)).unwrap();
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
    let reopened = Node::open(DataDir::new(dir.path()), None).unwrap();
    assert_eq!(
        reopened.log().unwrap().counted_len() as u64,
        counted_in_memory + 1
    );
}
