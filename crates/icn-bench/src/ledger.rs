//! Ledger benchmarks, each beside a ceiling measured in the same run:
//! (a) ingest of peers' transfers, (b) members' own payments through the
//! admin API with concurrent clients (group commit), (c) balance queries,
//! (d) one member's history among a million entries.

use icn_node::prelude::*;
use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use icn_identity::{Did, KeyPair};
use icn_kernel::encode_body;
use icn_ledger::{KIND_TRANSFER, Leg, Transfer};
use icn_node::{
    DataDir, Node,
    http::{AppState, admin_router},
    pipeline::ingest_batches,
};
use icn_testkit::{Coop, at, did_of, member, verified};

use crate::{BATCH, ceiling};

/// Transfers of one minute, round robin among ten members, no deps (each
/// payer's own chain stays far above a floor raised for the bench).
pub(crate) fn transfers(count: usize) -> (Coop, Vec<Vec<u8>>) {
    let keys: Vec<KeyPair> = (1..=10).map(member).collect();
    let refs: Vec<&KeyPair> = keys.iter().collect();
    let mut coop = Coop::found_with("Bench", &refs, &[("ledger.floor", "1000000")]);
    let events = (0..count)
        .map(|i| {
            let payer = &keys[i % 10];
            let body = Transfer {
                currency: "hours".into(),
                legs: vec![Leg {
                    to: did_of(&keys[(i + 1 + i / 10 % 9) % 10]),
                    amount: 1,
                }],
                memo: "bread".into(),
                request: None,
            };
            coop.event_signed(
                did_of(payer),
                payer,
                KIND_TRANSFER,
                encode_body(&body),
                vec![],
                at(i as u64 / 1000),
            )
            .bytes()
            .to_vec()
        })
        .collect();
    (coop, events)
}

pub(crate) fn fresh_node(dir: &Path, coop: &Coop) -> Node {
    let mut node = Node::open(DataDir::new(dir), Vec::new(), &icn_node::modules()).expect("opens");
    node.join(verified(coop.genesis.clone())).expect("joins");
    node
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    samples[((samples.len() - 1) as f64 * p) as usize]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// (a) Peers' transfers through the node's pipeline beside the ceiling loop.
fn ingest(count: usize, threads: usize) {
    let (coop, events) = transfers(count);
    let ceiling_rate = ceiling(&events);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = fresh_node(dir.path(), &coop);
    let batches: Vec<Vec<Vec<u8>>> = events.chunks(BATCH).map(<[_]>::to_vec).collect();
    let start = Instant::now();
    let report = ingest_batches(&mut node, batches, threads, at(1_000_000)).expect("ingests");
    let rate = count as f64 / start.elapsed().as_secs_f64();
    assert_eq!(report.accepted, count as u64, "every transfer counted");
    println!(
        "(a) transfers from peers, {count} of ~{} bytes:",
        events[0].len()
    );
    println!(
        "    ceiling (decode + batch verify + SQLite, 100 per commit): {ceiling_rate:>9.0} tx/s"
    );
    println!(
        "    icn (strict verify on {threads} threads, limits over the causal past, views, commit): {rate:>9.0} tx/s  ratio {:.2}",
        rate / ceiling_rate
    );
}

/// (b) Members' own payments through the admin API (HTTP over the Unix
/// socket, one connection per request as `icnctl` makes them), `clients`
/// at a time; beside a ceiling of signing and committing the same number
/// of events in batches with nothing else.
fn authoring(total: usize, clients: usize) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = DataDir::new(dir.path());
    let mut node = crate::member_node(dir.path(), member(1));
    let payees: Vec<Did> = (2..=10).map(|n| did_of(&member(n))).collect();
    let params = [("ledger.floor".to_owned(), "1000000".to_owned())].into();
    node.create_coop("Bench", &payees, &params, at(0))
        .expect("founds");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let socket = data.root().join(icn_api::ADMIN_SOCKET_FILE);
    let state = AppState::new(node);
    let listener = {
        let _guard = runtime.enter();
        tokio::net::UnixListener::bind(&socket).expect("binds")
    };
    runtime.spawn(axum::serve(listener, admin_router(state.clone())).into_future());

    let per_client = total / clients;
    let socket = Arc::new(socket);
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|client| {
            let socket = socket.clone();
            let payee = payees[client % payees.len()].to_string();
            std::thread::spawn(move || {
                let body = format!(r#"{{"to":"{payee}","amount":"1m","memo":"bread"}}"#);
                let admin = icn_client::Client::new(&socket).expect("a runtime");
                (0..per_client)
                    .map(|_| {
                        let sent = Instant::now();
                        let response = admin
                            .request("POST", "/admin/v1/ledger/pay", Some(body.as_bytes()))
                            .expect("answers");
                        assert_eq!(
                            response.status,
                            201,
                            "{:?}",
                            String::from_utf8_lossy(&response.body)
                        );
                        sent.elapsed()
                    })
                    .collect::<Vec<Duration>>()
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = workers
        .into_iter()
        .flat_map(|worker| worker.join().expect("client"))
        .collect();
    let elapsed = start.elapsed();
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    drop(runtime);

    // Ceiling: sign the same number of transfers and insert them, 100 per commit.
    let signing = Instant::now();
    let (_, events) = transfers(latencies.len());
    let sign_time = signing.elapsed();
    let store_rate = ceiling(&events);
    let ceiling_rate = 1.0 / (sign_time.as_secs_f64() / latencies.len() as f64 + 1.0 / store_rate);
    println!(
        "(b) members' own payments through the admin API, {clients} concurrent clients, {} payments:",
        latencies.len()
    );
    println!(
        "    ceiling (sign + decode + batch verify + SQLite, 100 per commit, no HTTP): {ceiling_rate:>9.0} tx/s"
    );
    println!(
        "    icn (HTTP, parse, sign, validate, group commit, answer): {rate:>9.0} tx/s  ratio {:.2};  {:.1}x the seeds' 5,000 tx/s",
        rate / ceiling_rate,
        rate / 5_000.0
    );
    println!(
        "    latency p50 {:.2} ms, p99 {:.2} ms (target p99 < 20 ms)",
        ms(percentile(&mut latencies, 0.5)),
        ms(percentile(&mut latencies, 0.99))
    );
}

/// (c) and (d): queries on a node holding `count` transfers (two entries
/// each), beside the same lookups straight on SQLite.
fn queries(count: usize, threads: usize) {
    let (coop, events) = transfers(count);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut node = fresh_node(dir.path(), &coop);
    let batches: Vec<Vec<Vec<u8>>> = events.chunks(BATCH).map(<[_]>::to_vec).collect();
    let start = Instant::now();
    ingest_batches(&mut node, batches, threads, at(1_000_000)).expect("ingests");
    let loaded = start.elapsed();
    let member = did_of(&member(3));
    let raw = rusqlite::Connection::open(dir.path().join("icn.db")).expect("opens");

    let mut ours = Vec::new();
    let mut bare = Vec::new();
    let key = format!("{member}/hours");
    for _ in 0..10_000 {
        let start = Instant::now();
        let balance = node.balance(&member).expect("answers");
        ours.push(start.elapsed());
        assert_eq!(balance.accounts.len(), 1);
        let start = Instant::now();
        let value: String = raw
            .prepare_cached(
                "SELECT value FROM view_rows WHERE view = 'ledger.balance' AND key = ?1",
            )
            .expect("prepares")
            .query_row([&key], |row| row.get(0))
            .expect("a row");
        bare.push(start.elapsed());
        assert!(!value.is_empty());
    }
    let (ours_p99, bare_p99) = (percentile(&mut ours, 0.99), percentile(&mut bare, 0.99));
    println!("(c) balance query, 10,000 times:");
    println!(
        "    ceiling (one SQLite point lookup): p50 {:.3} ms, p99 {:.3} ms",
        ms(percentile(&mut bare, 0.5)),
        ms(bare_p99)
    );
    println!(
        "    icn (node.balance: lookup, parse, format): p50 {:.3} ms, p99 {:.3} ms (target p99 < 1 ms)  ratio of p99s {:.2}",
        ms(percentile(&mut ours, 0.5)),
        ms(ours_p99),
        bare_p99.as_secs_f64() / ours_p99.as_secs_f64()
    );

    let entries: i64 = raw
        .query_row(
            "SELECT COUNT(*) FROM view_rows WHERE view = 'ledger.entry'",
            [],
            |row| row.get(0),
        )
        .expect("counts");
    let filter = icn_api::HistoryFilter {
        did: Some(member.to_string()),
        limit: Some(50),
        ..Default::default()
    };
    let (mut ours, mut bare) = (Vec::new(), Vec::new());
    let (lower, upper) = (format!("{member}/"), format!("{member}/\u{10FFFF}"));
    for _ in 0..1_000 {
        let start = Instant::now();
        let history = node.history(&filter).expect("answers");
        ours.push(start.elapsed());
        assert_eq!(history.entries.len(), 50);
        let start = Instant::now();
        let mut statement = raw
            .prepare_cached(
                "SELECT key, value FROM view_rows WHERE view = 'ledger.entry' AND key >= ?1 AND key < ?2 ORDER BY key DESC LIMIT 50",
            )
            .expect("prepares");
        let rows: Vec<(String, String)> = statement
            .query_map([&lower, &upper], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("queries")
            .collect::<Result<_, _>>()
            .expect("rows");
        bare.push(start.elapsed());
        assert_eq!(rows.len(), 50);
    }
    let (ours_p99, bare_p99) = (percentile(&mut ours, 0.99), percentile(&mut bare, 0.99));
    println!(
        "(d) one member's latest 50 entries among {entries} entries (loaded in {:.1} s), 1,000 times:",
        loaded.as_secs_f64()
    );
    println!(
        "    ceiling (one SQLite range query): p50 {:.3} ms, p99 {:.3} ms",
        ms(percentile(&mut bare, 0.5)),
        ms(bare_p99)
    );
    println!(
        "    icn (node.history: range, parse, format): p50 {:.3} ms, p99 {:.3} ms (target < 50 ms)  ratio of p99s {:.2}",
        ms(percentile(&mut ours, 0.5)),
        ms(ours_p99),
        bare_p99.as_secs_f64() / ours_p99.as_secs_f64()
    );
    if let Some(rss) = resident_mb() {
        println!(
            "    resident memory of the bench process: {rss:.0} MB (the log keeps every event in memory)"
        );
    }
}

fn resident_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

pub fn run(count: usize, threads: usize) {
    ingest(count, threads);
    authoring(count.min(20_000), 16);
    queries(500_000, threads);
}
