//! `cargo run --release -p icn-bench [EVENTS]`: ingest throughput of signed
//! events (decode, verify, validate, fold, commit) beside a minimal ceiling
//! loop over the same bytes (decode, batch signature check, batched SQLite
//! insert, nothing else), measured in the same run so the ratio is what counts.

use std::time::Instant;

use icn_kernel::{Changes, Domain, Event, Log, LogConfig};
use icn_store::Store;
use icn_testkit::{Coop, NoteDomain, at, member, verified};

const BATCH: usize = 100;

fn domains() -> Vec<Box<dyn Domain>> {
    vec![Box::new(NoteDomain::default())]
}

fn make_events(count: usize) -> (Coop, Vec<Vec<u8>>) {
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

/// Our pipeline; `batch` events per transaction, `threads` for verification.
fn ours(coop: &Coop, events: &[Vec<u8>], batch: usize, threads: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut store = Store::open(dir.path()).expect("store opens");
    let (mut log, changes) = Log::new(
        verified(coop.genesis.clone()),
        LogConfig::default(),
        domains(),
    )
    .expect("genesis");
    store.commit(&changes, &[]).expect("commit");
    let now = at(1_000_000);
    let start = Instant::now();
    for chunk in events.chunks(batch) {
        let decoded: Vec<Event> = chunk
            .iter()
            .map(|bytes| Event::decode(bytes).expect("valid"))
            .collect();
        let mut changes = Changes::default();
        for result in Event::verify_all(decoded, threads) {
            let event = result.expect("signed");
            log.ingest(event, now, &mut changes);
        }
        store.commit(&changes, &[]).expect("commit");
    }
    let rate = events.len() as f64 / start.elapsed().as_secs_f64();
    assert_eq!(log.counted_len(), events.len() + 1, "every event counted");
    rate
}

/// The ceiling: decode, batch-verify 64 at a time, insert, commit every 100.
fn ceiling(events: &[Vec<u8>]) -> f64 {
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
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (coop, events) = make_events(count);
    println!(
        "icn-bench ingest: {count} signed events of ~{} bytes",
        events[0].len()
    );
    let ceiling_rate = ceiling(&events);
    let batched_all = ours(&coop, &events, BATCH, threads);
    let batched_one = ours(&coop, &events, BATCH, 1);
    let single = ours(&coop, &events[..count.min(2_000)], 1, 1);
    println!(
        "ceiling (decode + batch verify + SQLite, 100 per commit, 1 core): {ceiling_rate:>9.0} events/s"
    );
    println!(
        "icn, batches of {BATCH}, strict verify on {threads} threads:         {batched_all:>9.0} events/s  ratio {:.2}",
        batched_all / ceiling_rate
    );
    println!(
        "icn, batches of {BATCH}, strict verify on 1 thread:           {batched_one:>9.0} events/s  ratio {:.2}",
        batched_one / ceiling_rate
    );
    println!("icn, one event per commit (fsync each), 1 thread:         {single:>9.0} events/s");
}
