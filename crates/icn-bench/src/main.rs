//! `cargo run --release -p icn-bench [events|ledger|sync|propagate] [COUNT]`: figures, each
//! beside a ceiling measured in the same run, so the ratio is what counts.
//!
//! - `events`: ingest throughput of signed events (decode, verify,
//!   validate, fold, commit) beside a minimal loop over the same bytes
//!   (decode, batch signature check, batched SQLite insert, nothing else);
//! - `ledger`: see `ledger.rs` (transfers from peers, members' own payments
//!   through the admin API, balance and history queries);
//! - `sync [COUNT]`: catch-up after a split, see `sync.rs`;
//! - `propagate [NODES] [TRIALS]`: time for a new event to reach every
//!   node of a mesh, see `propagate.rs`;
//! - `gateway [SECONDS] [CONNECTIONS]`: the HTTP gateway under wrk beside
//!   a trivial axum handler, see `gateway.rs`;
//! - `mvc [NODES]`: the pilot's performance floor as one burst, see `mvc.rs`;
//! - `serve [COUNT]`: a sync round for a peer one event behind, see `serve.rs`;
//! - `restart [COUNT]`: start-up time and resident memory of a node
//!   holding COUNT transfers, beside opening its store alone, see `restart.rs`;
//! - `files [MB]`: keeping a folder in a member's files space beside a
//!   read + hash + encrypt loop, then again after 1% changed, see `files.rs`.

mod files;
mod gateway;
mod governance;
mod ledger;
mod mvc;
mod propagate;
mod restart;
mod serve;
mod sync;
mod trust;

use std::time::{Duration, Instant};

use icn_kernel::{Domain, Event};
use icn_node::{DataDir, Node, pipeline::ingest_batches};
use icn_testkit::{Coop, NoteDomain, at, member, verified};

pub(crate) const BATCH: usize = 100;

pub(crate) fn domains() -> Vec<Box<dyn Domain>> {
    vec![Box::new(NoteDomain::default())]
}

pub(crate) fn make_events(count: usize) -> (Coop, Vec<Vec<u8>>) {
    let keys: Vec<_> = (1..=10).map(member).collect();
    let refs: Vec<_> = keys.iter().collect();
    let mut coop = Coop::found("Bench", &refs);
    let events = (0..count)
        .map(|i| {
            let text = format!("worked 3h on the website, entry {i}");
            coop.note(&keys[i % keys.len()], &text, vec![], at(i as u64 / 100))
                .bytes()
                .to_vec()
        })
        .collect();
    (coop, events)
}

/// A node on a fresh data directory that has joined the bench co-op.
/// A node whose member (identity and unlocked key) is `key`, with no co-op.
pub(crate) fn member_node(dir: &std::path::Path, key: icn_identity::KeyPair) -> Node {
    let data = DataDir::new(dir);
    data.write_public_identity(&icn_node::PublicIdentity {
        did: icn_testkit::did_of(&key),
        device_key: key.public(),
        device_label: "bench".into(),
    })
    .expect("writes");
    Node::open(data, vec![key], &icn_node::modules()).expect("opens")
}

fn fresh_node(coop: &Coop) -> (tempfile::TempDir, Node) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = Node::open(
        DataDir::new(dir.path()),
        Vec::new(),
        &icn_node::Modules::of_domains(domains),
    )
    .expect("opens");
    node.join(verified(coop.genesis.clone())).expect("joins");
    (dir, node)
}

/// The node's peer ingest path: verification of the next batch on `threads`
/// threads overlaps the validation and commit of the current one.
fn ours_pipelined(coop: &Coop, events: &[Vec<u8>], threads: usize) -> (f64, f64) {
    let (_dir, mut node) = fresh_node(coop);
    let batches: Vec<Vec<Vec<u8>>> = events.chunks(BATCH).map(<[_]>::to_vec).collect();
    let start = Instant::now();
    let report = ingest_batches(&mut node, batches, threads, at(1_000_000)).expect("ingests");
    let rate = events.len() as f64 / start.elapsed().as_secs_f64();
    assert_eq!(report.accepted, events.len() as u64, "every event counted");
    (rate, events.len() as f64 / report.commits as f64)
}

/// Everything on one thread, one step after the other: decode, verify,
/// validate and fold, commit; `batch` events per transaction.
fn ours_sequential(coop: &Coop, events: &[Vec<u8>], batch: usize) -> (f64, Phases) {
    let (_dir, mut node) = fresh_node(coop);
    let mut phases = Phases::default();
    let start = Instant::now();
    for chunk in events.chunks(batch) {
        let verifying = Instant::now();
        let decoded: Vec<Event> = chunk
            .iter()
            .map(|bytes| Event::decode(bytes).expect("valid"))
            .collect();
        let verified = Event::verify_all(decoded, 1)
            .into_iter()
            .map(|result| result.expect("signed"))
            .collect();
        let ingesting = Instant::now();
        phases.verify += ingesting - verifying;
        node.ingest(verified, at(1_000_000)).expect("ingests");
        phases.ingest += ingesting.elapsed();
    }
    let rate = events.len() as f64 / start.elapsed().as_secs_f64();
    assert_eq!(
        node.log().expect("joined").counted_len(),
        events.len() + 1,
        "every event counted"
    );
    (rate, phases)
}

/// Where the sequential path spends its time.
#[derive(Default)]
struct Phases {
    /// Decoding and strict signature checks.
    verify: Duration,
    /// Validation, folding and the SQLite commit.
    ingest: Duration,
}

/// The ceiling: decode, batch-verify 64 at a time, insert, commit every 100.
pub(crate) fn ceiling(events: &[Vec<u8>]) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let connection = rusqlite::Connection::open(dir.path().join("ceiling.db")).expect("opens");
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE events (id BLOB PRIMARY KEY, bytes BLOB NOT NULL);",
        )
        .expect("schema");
    let start = Instant::now();
    for chunk in events.chunks(BATCH) {
        let decoded: Vec<Event> = chunk
            .iter()
            .map(|bytes| Event::decode(bytes).expect("valid"))
            .collect();
        for group in decoded.chunks(64) {
            let messages: Vec<Vec<u8>> = group.iter().map(Event::signed_message).collect();
            let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
            let signatures: Vec<_> = group.iter().map(|e| *e.signature().inner()).collect();
            let keys: Vec<_> = group
                .iter()
                .map(|e| *e.content().signer.verifying_key())
                .collect();
            ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).expect("valid batch");
        }
        let transaction = connection.unchecked_transaction().expect("begins");
        {
            let mut insert = transaction
                .prepare_cached("INSERT INTO events (id, bytes) VALUES (?1, ?2)")
                .expect("prepares");
            for event in &decoded {
                insert
                    .execute((event.id().0.as_slice(), event.bytes()))
                    .expect("inserts");
            }
        }
        transaction.commit().expect("commits");
    }
    events.len() as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let which = args
        .iter()
        .find(|arg| arg.parse::<usize>().is_err())
        .map_or("all", String::as_str);
    let count: usize = args
        .iter()
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(20_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    match which {
        "events" => events(count, threads),
        "ledger" => ledger::run(count, threads),
        "sync" => sync::run(count),
        "governance" => {
            // `governance [PROPOSALS] [NODES]`: defaults 50 and 10.
            let mut numbers = args.iter().filter_map(|arg| arg.parse::<usize>().ok());
            let proposals = numbers.next().unwrap_or(50);
            governance::run(proposals, numbers.next().unwrap_or(10));
        }
        "trust" => trust::run(
            args.iter()
                .find_map(|arg| arg.parse().ok())
                .unwrap_or(10_000),
        ),
        "gateway" => {
            // `gateway [SECONDS] [CONNECTIONS]`, defaults 10 and 32.
            let mut numbers = args.iter().filter_map(|arg| arg.parse::<u64>().ok());
            let seconds = numbers.next().unwrap_or(10);
            gateway::run(seconds, numbers.next().unwrap_or(32) as usize);
        }
        "restart" => restart::run(count, threads),
        "serve" => serve::run(count),
        // `files [MB]`, default 256.
        "files" => files::run(args.iter().find_map(|arg| arg.parse().ok()).unwrap_or(256)),
        "restart-child" => {
            // Internal: one side of `restart`, in a process of its own.
            let what = args.get(1).map_or("", String::as_str);
            let dir = args.get(2).expect("restart-child SIDE DIR");
            restart::child(what, std::path::Path::new(dir));
        }
        "mvc" => mvc::run(args.iter().find_map(|arg| arg.parse().ok()).unwrap_or(10)),
        "propagate" => {
            // `propagate [NODES] [TRIALS]`: the numbers in order, defaults 10 and 200.
            let mut numbers = args.iter().filter_map(|arg| arg.parse::<usize>().ok());
            let nodes = numbers.next().unwrap_or(10);
            propagate::run(nodes, numbers.next().unwrap_or(200));
        }
        "all" => {
            events(count, threads);
            ledger::run(count, threads);
        }
        other => {
            eprintln!(
                "icn-bench: unknown benchmark {other:?}; use events, ledger, sync, propagate, trust, governance, gateway, mvc, restart, serve or nothing (all)"
            );
            std::process::exit(2);
        }
    }
}

fn events(count: usize, threads: usize) {
    let (coop, events) = make_events(count);
    println!(
        "icn-bench ingest: {count} signed events of ~{} bytes",
        events[0].len()
    );
    let ceiling_rate = ceiling(&events);
    let (pipelined_all, group_all) = ours_pipelined(&coop, &events, threads);
    let (pipelined_one, group_one) = ours_pipelined(&coop, &events, 1);
    let (sequential, phases) = ours_sequential(&coop, &events, BATCH);
    let (single, _) = ours_sequential(&coop, &events[..count.min(2_000)], 1);
    println!(
        "ceiling (decode + batch verify + SQLite, 100 per commit, 1 core): {ceiling_rate:>9.0} events/s"
    );
    println!(
        "icn, batches of {BATCH}, pipelined, strict verify on {threads} threads: {pipelined_all:>9.0} events/s  ratio {:.2}  ({group_all:.0} events per commit)",
        pipelined_all / ceiling_rate
    );
    println!(
        "icn, batches of {BATCH}, pipelined, strict verify on 1 thread:  {pipelined_one:>9.0} events/s  ratio {:.2}  ({group_one:.0} events per commit)",
        pipelined_one / ceiling_rate
    );
    println!(
        "icn, batches of {BATCH}, all on 1 thread, no overlap:           {sequential:>9.0} events/s  ratio {:.2}",
        sequential / ceiling_rate
    );
    println!(
        "  of which decode + verify {:.0} ms, validate + fold + commit {:.0} ms",
        phases.verify.as_secs_f64() * 1e3,
        phases.ingest.as_secs_f64() * 1e3
    );
    println!("icn, one event per commit (fsync each), 1 thread:            {single:>9.0} events/s");
}
