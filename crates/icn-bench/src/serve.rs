//! `icn-bench serve [COUNT]`: a sync round for a peer one event behind on
//! a log of COUNT events. Measures what the serving side does between the
//! peer's hello and its first page (`Session::on_message`), beside the
//! least any server must do (read this log's heads and fetch the one
//! event the peer lacks) and beside a scan of the whole kept order (what
//! serving from position 1 cost before the cursor resumed at the peer's
//! heads).

use std::time::{Duration, Instant};

use icn_kernel::{Log, LogConfig};
use icn_sync::{Head, Hello, Message, Output, Session, SessionConfig};
use icn_testkit::{at, verified};

fn median(mut samples: Vec<Duration>) -> f64 {
    samples.sort();
    samples[samples.len() / 2].as_secs_f64() * 1e3
}

pub fn run(count: usize) {
    let (coop, events) = crate::make_events(count);
    let (mut log, _) = Log::new(
        verified(coop.genesis.clone()),
        LogConfig::default(),
        crate::domains(),
    )
    .expect("a log");
    let mut changes = icn_kernel::Changes::default();
    for bytes in &events {
        let event = icn_kernel::Event::decode(bytes).expect("decodes");
        log.ingest(verified(event), at(1_000_000), &mut changes);
        changes = icn_kernel::Changes::default();
    }
    drop(events);
    assert_eq!(log.counted_len(), count + 1, "every event counts");

    // The peer holds everything but the last event of one author.
    let heads = log.heads();
    let (behind_author, (behind_seq, missing)) = heads
        .iter()
        .max_by_key(|(_, (_, id))| log.kept_order().iter().rposition(|kept| kept == id))
        .map(|(author, head)| (*author, *head))
        .expect("heads");
    let hello = Hello {
        coop: log.coop(),
        round: 1,
        heads: heads
            .iter()
            .map(|(author, (seq, id))| {
                if *author == behind_author {
                    Head {
                        author: *author,
                        seq: seq - 1,
                        id: log.chain_id(author, seq - 1).expect("a prev"),
                    }
                } else {
                    Head {
                        author: *author,
                        seq: *seq,
                        id: *id,
                    }
                }
            })
            .collect(),
        uncounted: Vec::new(),
    };

    let rounds = 200;
    let (mut ours, mut floor, mut scan) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut session = Session::new(log.coop(), SessionConfig::default());
        let start = Instant::now();
        let out = session
            .on_message(Message::Hello(hello.clone()), &log, 0)
            .expect("serves");
        ours.push(start.elapsed());
        let [Output::Send(Message::Page(page))] = &out[..] else {
            panic!("one page: {out:?}");
        };
        assert_eq!(page.events.len(), 1, "exactly the missing event");
        assert!(page.done);

        let start = Instant::now();
        let heads = log.heads();
        let bytes = log.get(&missing).expect("kept").bytes().to_vec();
        floor.push(start.elapsed());
        assert!(heads.len() > 1 && !bytes.is_empty());

        let start = Instant::now();
        let lacking = log
            .kept_order()
            .iter()
            .filter_map(|id| log.get(id))
            .filter(|event| event.author() == behind_author && event.seq() > behind_seq - 1)
            .count();
        scan.push(start.elapsed());
        assert_eq!(lacking, 1);
    }
    println!(
        "icn-bench serve: a peer one event behind on a log of {count} events, {rounds} rounds (medians):"
    );
    println!(
        "  floor (read the heads, fetch the missing event):      {:>9.3} ms",
        median(floor)
    );
    println!(
        "  icn (hello to first page, resuming at the peer's heads): {:>6.3} ms",
        median(ours)
    );
    println!(
        "  a scan of the whole kept order (serving from position 1): {:>5.3} ms",
        median(scan)
    );
}
