//! `icn-bench sync [COUNT]`: two members' nodes, each of which wrote COUNT
//! payments while they were apart, meet over QUIC on loopback and sync.
//! Prints the catch-up time, the events per second that crossed, and the
//! bytes both sent (framed sync messages) against the bytes of the events
//! themselves.

use icn_node::prelude::*;
use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use icn_identity::Did;
use icn_node::{
    Node,
    http::AppState,
    net::{Net, NetOptions},
};

use crate::member_node;
use icn_testkit::{at, did_of, member};

/// Writes `count` payments from the node's member to `to`, 500 per commit.
/// Returns the bytes of the events written.
fn pay_many(node: &mut Node, to: Did, count: usize) -> usize {
    let request = icn_api::Pay {
        to: to.to_string(),
        amount: "1m".into(),
        currency: None,
        memo: "bench".into(),
    };
    let mut bytes = 0;
    for chunk in 0..count.div_ceil(500) {
        let n = 500.min(count - chunk * 500);
        let ids = node
            .batched(|node| {
                (0..n)
                    .map(|i| node.pay(&request, at((chunk * 500 + i) as u64 / 1000)))
                    .collect::<Result<Vec<_>, _>>()
            })
            .expect("commits")
            .expect("pays");
        let log = node.log().expect("a co-op");
        bytes += ids
            .iter()
            .map(|id| log.get(id).expect("kept").bytes().len())
            .sum::<usize>();
    }
    bytes
}

pub fn run(count: usize) {
    let (dir_a, dir_b) = (
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    );
    let (key_a, key_b) = (member(1), member(2));
    let (did_a, did_b) = (did_of(&key_a), did_of(&key_b));
    let mut a = member_node(dir_a.path(), key_a);
    let params = [("ledger.floor".to_owned(), "1000000".to_owned())].into();
    a.create_coop("Bench", &[did_b], &params, at(0))
        .expect("founds");
    let genesis = a.log().expect("a co-op").genesis().clone();
    let mut b = member_node(dir_b.path(), key_b);
    b.join(genesis.verify().expect("signed")).expect("joins");
    let written = Instant::now();
    let bytes_events = pay_many(&mut a, did_b, count) + pay_many(&mut b, did_a, count);
    println!(
        "icn-bench sync: two nodes apart, each wrote {count} payments ({:.1} s); events total {bytes_events} bytes",
        written.elapsed().as_secs_f64()
    );
    let expected = 2 * count + 1;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
        let (state_a, state_b) = (AppState::new(a), AppState::new(b));
        let net_a = Net::start(state_a.node.clone(), NetOptions::direct(loopback, vec![]))
            .await
            .expect("starts");
        let ticket = net_a.ticket().expect("a ticket").encode();
        let start = Instant::now();
        let net_b = Net::start(state_b.node.clone(), NetOptions::direct(loopback, vec![ticket]))
            .await
            .expect("starts");
        let counted = |state: &AppState| {
            state
                .node
                .lock()
                .expect("not poisoned")
                .log()
                .map_or(0, |log| log.counted_len())
        };
        while counted(&state_a) < expected || counted(&state_b) < expected {
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "did not converge"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let elapsed = start.elapsed().as_secs_f64();
        let sent = net_a.metrics.snapshot().bytes_sent + net_b.metrics.snapshot().bytes_sent;
        println!(
            "catch-up after the split: {elapsed:.2} s (dial included); {:.0} events/s crossed",
            (2 * count) as f64 / elapsed
        );
        println!(
            "bytes sent by both (framed sync messages): {sent}; events themselves: {bytes_events}; overhead {:+.1}%",
            (sent as f64 / bytes_events as f64 - 1.0) * 100.0
        );
        net_a.close().await;
        net_b.close().await;
    });
}
