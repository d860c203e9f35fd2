//! `icn-bench propagate [NODES] [TRIALS]`: NODES members' nodes in one
//! process, connected over QUIC on loopback in a sparse mesh (each node
//! dials up to four earlier ones), push new events along. One payment at a
//! time is made on a node in turn; the figure is the time from the payment
//! call until every node has committed it. The ceiling beside it is one
//! local commit (the payment's own fsync), measured in the same run: every
//! node commits the event, and here all of them share this machine's cores.

use icn_node::prelude::*;
use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use icn_kernel::EventId;
use icn_node::{
    http::{AppState, SharedState},
    net::{Net, NetOptions},
};
use icn_testkit::{at, did_of, member};

use crate::member_node;

/// Earlier nodes each node dials: a sparse mesh, as a co-op's would be
/// with a few always-on nodes and the rest reaching some of them.
const DIALS: usize = 4;

pub(crate) type Arrivals = Arc<Mutex<HashMap<EventId, Vec<Instant>>>>;

/// `nodes` members' nodes of one co-op, each in its own temporary data
/// directory (dropped with the mesh), not yet connected.
pub(crate) struct Mesh {
    _dirs: Vec<tempfile::TempDir>,
    pub states: Vec<SharedState>,
    pub dids: Vec<icn_identity::Did>,
}

pub(crate) fn nodes(nodes: usize) -> Mesh {
    assert!((2..=120).contains(&nodes), "NODES is 2 to 120");
    let dirs: Vec<tempfile::TempDir> = (0..nodes)
        .map(|_| tempfile::tempdir().expect("dir"))
        .collect();
    let keys: Vec<_> = (0..nodes).map(|i| member(i as u8 + 1)).collect();
    let dids: Vec<_> = keys.iter().map(did_of).collect();
    let mut founder = member_node(dirs[0].path(), member(1));
    let params = [("ledger.floor".to_owned(), "1000000".to_owned())].into();
    founder
        .create_coop("Bench", &dids[1..], &params, at(0))
        .expect("founds");
    let genesis = founder.log().expect("a co-op").genesis().clone();
    let mut states = vec![AppState::new(founder)];
    for (i, dir) in dirs.iter().enumerate().skip(1) {
        let mut node = member_node(dir.path(), member(i as u8 + 1));
        node.join(genesis.clone().verify().expect("signed"))
            .expect("joins");
        states.push(AppState::new(node));
    }
    Mesh {
        _dirs: dirs,
        states,
        dids,
    }
}

/// Starts every node's replication on loopback, each dialling up to
/// [`DIALS`] earlier ones, and notes when each commits each event.
pub(crate) async fn connect(states: &[SharedState], arrivals: &Arrivals) -> Vec<Arc<Net>> {
    let mut nets: Vec<Arc<Net>> = Vec::new();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for (i, state) in states.iter().enumerate() {
        let mut bootstrap = Vec::new();
        for _ in 0..DIALS.min(i) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let ticket = nets[rng as usize % i].ticket().expect("a ticket").encode();
            if !bootstrap.contains(&ticket) {
                bootstrap.push(ticket);
            }
        }
        let net = Net::start(state.node.clone(), NetOptions::direct(loopback, bootstrap))
            .await
            .expect("starts");
        nets.push(net);
        record_arrivals(state, arrivals.clone());
    }
    nets
}

pub fn run(nodes: usize, trials: usize) {
    let Mesh { states, dids, .. } = &self::nodes(nodes);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let arrivals: Arrivals = Arc::default();
        let nets = connect(states, &arrivals).await;
        // Warm-up: connections come up and a first event reaches everyone.
        let warm = pay(&states[0], &dids[1]).0;
        wait_all(&arrivals, warm, nodes, Duration::from_secs(120)).expect("the mesh forms");

        let mut latencies = Vec::with_capacity(trials);
        let mut commits = Vec::with_capacity(trials);
        let mut lost = 0;
        for trial in 0..trials {
            let from = trial % nodes;
            let start = Instant::now();
            let (id, committed) = pay(&states[from], &dids[(from + 1) % nodes]);
            commits.push(committed.as_secs_f64() * 1000.0);
            match wait_all(&arrivals, id, nodes, Duration::from_secs(10)) {
                Some(last) => latencies.push((last - start).as_secs_f64() * 1000.0),
                None => lost += 1,
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let connections: usize = nets.iter().map(|net| net.peers().peers.len()).sum();
        println!(
            "{nodes} nodes, {} connections (each node dials up to {DIALS} earlier ones), {trials} payments one at a time",
            connections / 2
        );
        println!(
            "time until every node has committed a new payment: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
            percentile(&mut latencies, 0.50),
            percentile(&mut latencies, 0.99),
            percentile(&mut latencies, 1.0),
            if lost > 0 {
                format!(" ({lost} not everywhere within 10 s; sync would carry them)")
            } else {
                String::new()
            }
        );
        let commit = percentile(&mut commits, 0.50);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!(
            "ceiling: one local commit p50 {commit:.1} ms (p99 {:.1} ms); all {nodes} nodes share {cores} cores here, so {nodes} commits take at least {:.1} ms",
            percentile(&mut commits, 0.99),
            commit * nodes as f64 / cores as f64
        );
        for net in nets {
            net.close().await;
        }
    });
}

/// Notes when each node commits each event (its kept-event broadcast).
fn record_arrivals(state: &SharedState, arrivals: Arrivals) {
    let mut kept = state.node.lock().expect("not poisoned").subscribe_kept();
    tokio::spawn(async move {
        while let Ok(event) = kept.recv().await {
            let now = Instant::now();
            arrivals
                .lock()
                .expect("not poisoned")
                .entry(event.id())
                .or_default()
                .push(now);
        }
    });
}

/// Pays 1 minute; returns the event and how long the local commit took.
pub(crate) fn pay(state: &SharedState, to: &icn_identity::Did) -> (EventId, Duration) {
    let request = icn_api::Pay {
        to: to.to_string(),
        amount: "1m".into(),
        currency: None,
        memo: "propagation".into(),
    };
    let start = Instant::now();
    // On the benchmark's own thread (block_on), not a runtime worker.
    let id = state
        .node
        .lock()
        .expect("not poisoned")
        .pay(&request, icn_node::node::now())
        .expect("pays");
    (id, start.elapsed())
}

/// The instant the last of `nodes` nodes committed `id`, if all did in time.
pub(crate) fn wait_all(
    arrivals: &Arrivals,
    id: EventId,
    nodes: usize,
    within: Duration,
) -> Option<Instant> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(times) = arrivals.lock().expect("not poisoned").get(&id)
            && times.len() >= nodes
        {
            return times.iter().max().copied();
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

pub(crate) fn percentile(values: &mut [f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * q).round() as usize]
}
