//! `icn-bench trust [MEMBERS]`: the trust graph at scale. MEMBERS members
//! (default 10 000), each stating trust in 10 others (100 000 edges), some
//! with transfers between them; then (a) building the graph from its rows,
//! (b) score lookups per second between random members (each a bounded
//! best-path search of depth 3), and (c) a full recomputation: every
//! member's scores to everyone they reach. Beside them, in the same run, a
//! ceiling: a plain breadth-first walk of the same depth over the same
//! adjacency lists, with no scoring.

use std::{collections::BTreeMap, time::Instant};

use icn_governance::trust::{
    Class, Pair, Statement, TrustContext, TrustGraph, TrustParams, parse_pair,
};
use icn_identity::{Did, KeyPair};

const OUT_DEGREE: usize = 10;
const NOW_MS: u64 = 1_800_000_000_000;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

pub fn run(members: usize) {
    let members = members.clamp(100, 100_000);
    let dids: Vec<Did> = (0..members)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            Did::from_inception_key(KeyPair::from_seed(&seed).public())
        })
        .collect();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut rows = Vec::with_capacity(members * OUT_DEGREE);
    let mut adjacency = vec![Vec::with_capacity(OUT_DEGREE); members];
    for (from, did) in dids.iter().enumerate() {
        let mut targets = std::collections::BTreeSet::new();
        while targets.len() < OUT_DEGREE {
            let to = rng.next() as usize % members;
            if to != from {
                targets.insert(to);
            }
        }
        for to in targets {
            adjacency[from].push(to);
            let statement = Statement::new(
                300 + (rng.next() % 700) as u16,
                Class::Colleague,
                NOW_MS - (rng.next() % (400 * 86_400_000)),
                String::new(),
            );
            let transfers = rng.next() % 4;
            let pair = Pair {
                from: did.to_string(),
                to: dids[to].to_string(),
                statements: BTreeMap::from([(TrustContext::General, statement)]),
                transfers,
                last_transfer_ms: if transfers > 0 {
                    NOW_MS - 86_400_000
                } else {
                    0
                },
                recent_transfers: Default::default(),
            };
            rows.push(serde_json::to_string(&pair).expect("serialises"));
        }
    }
    println!(
        "icn-bench trust: {members} members, {} edges ({OUT_DEGREE} statements each), depth 3",
        rows.len()
    );

    let start = Instant::now();
    let graph = TrustGraph::new(
        TrustParams::default(),
        rows.iter().filter_map(|row| parse_pair(row)),
    );
    println!(
        "(a) build the graph from its view rows (JSON): {:.0} ms",
        start.elapsed().as_secs_f64() * 1e3
    );

    let lookups = 20_000;
    let pairs: Vec<(usize, usize)> = (0..lookups)
        .map(|_| (rng.next() as usize % members, rng.next() as usize % members))
        .collect();
    let start = Instant::now();
    let mut reached = 0usize;
    for (from, to) in &pairs {
        if graph.score(&dids[*from], &dids[*to], TrustContext::General, NOW_MS) > 0.0 {
            reached += 1;
        }
    }
    let rate = lookups as f64 / start.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut walked = 0usize;
    let mut stamps = vec![0u32; members];
    for (n, (from, _)) in pairs.iter().enumerate() {
        walked += walk(&adjacency, *from, &mut stamps, n as u32 + 1);
    }
    let ceiling = lookups as f64 / start.elapsed().as_secs_f64();
    println!(
        "(b) score lookups, cold (one search each): {rate:>8.0}/s ({}% reach a score); ceiling, a bare depth-3 walk: {ceiling:>8.0}/s; ratio {:.2}; seeds' claim 50 000/s",
        reached * 100 / lookups,
        rate / ceiling
    );
    let sample = 200.min(members);
    let start = Instant::now();
    let mut scored = 0usize;
    for did in dids.iter().take(sample) {
        scored += graph.scores_from(did, TrustContext::General, NOW_MS);
    }
    let per_member = start.elapsed().as_secs_f64() / sample as f64;
    println!(
        "(c) full recomputation (every member's scores to all they reach, ~{} each): {:.1} s for {members} members (measured on {sample}, {:.2} ms each); walked {walked} nodes in (b)",
        scored / sample,
        per_member * members as f64,
        per_member * 1e3
    );
}

/// Nodes a plain breadth-first walk of depth 3 visits from `from`, with a
/// reused visited-stamp array: the least any depth-3 search must do.
fn walk(adjacency: &[Vec<usize>], from: usize, stamps: &mut [u32], stamp: u32) -> usize {
    stamps[from] = stamp;
    let mut seen = 1;
    let mut frontier = vec![from];
    for _ in 0..3 {
        let mut next = Vec::new();
        for node in frontier {
            for to in &adjacency[node] {
                if stamps[*to] != stamp {
                    stamps[*to] = stamp;
                    seen += 1;
                    next.push(*to);
                }
            }
        }
        frontier = next;
    }
    seen
}
