//! `restart [COUNT]`: what a node holding COUNT transfers pays to start
//! again, each side in a fresh process: the time `Node::open` takes (what
//! `icnd` does before its admin socket answers: the store opened, the log
//! rebuilt and the stored views checked against it) and the resident
//! memory afterwards, beside a process that only opens the same SQLite
//! store and reads its size (the floor any restart pays). Issue 17's
//! targets for 1M events: under 2 s and at most 150 MB.

use std::{path::Path, process::Command, time::Instant};

use icn_node::{DataDir, Node, pipeline::ingest_batches};
use icn_testkit::at;

use crate::BATCH;

/// The child's side: opens `dir` as `what` (`node` or `store`) and prints
/// `elapsed_ms resident_mb peak_mb`.
pub fn child(what: &str, dir: &Path) {
    let start = Instant::now();
    match what {
        "node" => {
            let node = Node::open(DataDir::new(dir), Vec::new(), &icn_node::modules())
                .expect("the node opens");
            let events = node.log().map_or(0, |log| log.counted_len());
            let elapsed = start.elapsed();
            report(elapsed, events);
        }
        "log" => {
            // The kernel's share: the log rebuilt with no domain folded.
            let store = icn_store::Store::open(dir).expect("the store opens");
            let modules = icn_node::Modules::of_domains(Vec::new);
            let replayed =
                icn_node::node::replay_store(&store, &modules, icn_node::node::Signatures::Changed)
                    .expect("the log replays")
                    .expect("a co-op is stored");
            let events = replayed.log.counted_len();
            let elapsed = start.elapsed();
            report(elapsed, events);
        }
        "store" => {
            let store = icn_store::Store::open(dir).expect("the store opens");
            let events = store.counted_events().expect("counts");
            let elapsed = start.elapsed();
            report(elapsed, events as usize);
        }
        other => panic!("restart-child: unknown side {other:?}"),
    }
}

fn report(elapsed: std::time::Duration, events: usize) {
    let (resident, peak) = memory_mb();
    println!(
        "{:.1} {resident:.1} {peak:.1} {events}",
        elapsed.as_secs_f64() * 1e3
    );
}

/// Resident and peak resident memory of this process, in MB.
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map_or(f64::NAN, |kb| kb / 1024.0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

struct Measured {
    ms: f64,
    resident_mb: f64,
    peak_mb: f64,
    events: usize,
}

fn measure(what: &str, dir: &Path) -> Measured {
    let output = Command::new(std::env::current_exe().expect("this program"))
        .args(["restart-child", what])
        .arg(dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the child runs");
    assert!(output.status.success(), "restart-child {what} failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let numbers: Vec<f64> = text
        .split_whitespace()
        .filter_map(|word| word.parse().ok())
        .collect();
    let [ms, resident_mb, peak_mb, events] = numbers[..] else {
        panic!("restart-child {what} printed {text:?}");
    };
    Measured {
        ms,
        resident_mb,
        peak_mb,
        events: events as usize,
    }
}

pub fn run(count: usize, threads: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    {
        let (coop, events) = crate::ledger::transfers(count);
        let mut node = crate::ledger::fresh_node(dir.path(), &coop);
        let batches: Vec<Vec<Vec<u8>>> = events.chunks(BATCH).map(<[_]>::to_vec).collect();
        drop(events);
        let start = Instant::now();
        let report = ingest_batches(&mut node, batches, threads, at(1_000_000)).expect("ingests");
        assert_eq!(report.accepted, count as u64, "every transfer counted");
        println!(
            "icn-bench restart: a node holding {count} transfers (loaded in {:.1} s), opened again in a fresh process:",
            start.elapsed().as_secs_f64()
        );
    }
    let floor = measure("store", dir.path());
    let kernel = measure("log", dir.path());
    let ours = measure("node", dir.path());
    println!(
        "  floor (open the SQLite store, count its events): {:>8.0} ms  resident {:>6.0} MB  peak {:>6.0} MB  ({} events stored)",
        floor.ms, floor.resident_mb, floor.peak_mb, floor.events
    );
    println!(
        "  of which the kernel (the log alone, no domain):   {:>8.0} ms  resident {:>6.0} MB  peak {:>6.0} MB",
        kernel.ms, kernel.resident_mb, kernel.peak_mb
    );
    println!(
        "  icn (Node::open: replay, views checked):          {:>8.0} ms  resident {:>6.0} MB  peak {:>6.0} MB  ({} events count)",
        ours.ms, ours.resident_mb, ours.peak_mb, ours.events
    );
    println!(
        "  per stored event: {:.2} KB resident above the floor; targets for 1M events: < 2,000 ms, ≤ 150 MB",
        (ours.resident_mb - floor.resident_mb) * 1024.0 / floor.events.max(1) as f64
    );
}
