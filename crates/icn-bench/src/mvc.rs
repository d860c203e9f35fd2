//! `icn-bench mvc [NODES]`: the pilot's performance floor, as the MVC
//! states it — 100 transfers in an hour, 50 concurrent votes, 1,000+ gossip
//! messages a minute — run as one burst on a loopback QUIC mesh of NODES
//! members' nodes (default 10), all at once: every member makes its share
//! of 100 payments and of 50 proposals, then every member votes on every
//! proposal (500 votes, each proposal's 10 at the same time). Figures: how
//! long the floor's hour of work takes until every node holds all of it,
//! and the gossip rate the mesh sustained meanwhile (events delivered to a
//! peer, counted by the nodes' own replication metrics), each beside the
//! floor.

use icn_node::prelude::*;
use std::time::{Duration, Instant};

use icn_node::node::now;

use crate::propagate::{self, Arrivals, Mesh, wait_all};

const TRANSFERS: usize = 100;
const PROPOSALS: usize = 50;

pub fn run(nodes: usize) {
    let Mesh { states, dids, .. } = &propagate::nodes(nodes);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let arrivals: Arrivals = Default::default();
        let nets = propagate::connect(states, &arrivals).await;
        let warm = propagate::pay(&states[0], &dids[1]).0;
        wait_all(&arrivals, warm, nodes, Duration::from_secs(120)).expect("the mesh forms");
        let delivered = || -> u64 { nets.iter().map(|net| net.peers().metrics.events_received).sum() };
        let delivered_before = delivered();
        let start = Instant::now();
        // Payments and proposals from every node at once.
        let makers: Vec<_> = states
            .iter()
            .enumerate()
            .map(|(i, state)| {
                let state = state.clone();
                let to = dids[(i + 1) % nodes];
                tokio::task::spawn_blocking(move || {
                    let mut made = Vec::new();
                    for n in (i..TRANSFERS).step_by(nodes) {
                        let pay = icn_api::Pay {
                            to: to.to_string(),
                            amount: format!("{}m", 15 + n % 45),
                            currency: None,
                            memo: format!("shift {n}"),
                        };
                        made.push((false, state.node.lock().expect("not poisoned").pay(&pay, now()).expect("pays")));
                    }
                    for n in (i..PROPOSALS).step_by(nodes) {
                        let request = crate::governance::decision(n);
                        made.push((true, state.node.lock().expect("not poisoned").propose(&request, now()).expect("proposes")));
                    }
                    made
                })
            })
            .collect();
        let mut events = Vec::new();
        let mut proposals = Vec::new();
        for maker in makers {
            for (proposal, id) in maker.await.expect("made") {
                events.push(id);
                if proposal {
                    proposals.push(id);
                }
            }
        }
        for id in &proposals {
            wait_all(&arrivals, *id, nodes, Duration::from_secs(120)).expect("proposals spread");
        }
        // Every member votes on every proposal, all members at once.
        let voters: Vec<_> = states
            .iter()
            .map(|state| {
                let (state, proposals) = (state.clone(), proposals.clone());
                tokio::task::spawn_blocking(move || {
                    proposals
                        .iter()
                        .map(|id| {
                            let vote = icn_api::CastVote {
                                proposal: id.to_string(),
                                choice: "yes".into(),
                                reason: String::new(),
                                strength: None,
                            };
                            state.node.lock().expect("not poisoned").vote(&vote, now()).expect("votes")
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for voter in voters {
            events.extend(voter.await.expect("voted"));
        }
        let mut last = start;
        for id in &events {
            last = last.max(wait_all(&arrivals, *id, nodes, Duration::from_secs(120)).expect("everything spreads"));
        }
        let elapsed = (last - start).as_secs_f64();
        let gossip = delivered() - delivered_before;
        let per_minute = gossip as f64 / elapsed * 60.0;
        println!(
            "MVC floor on {nodes} nodes (loopback QUIC mesh, 2 cores shared by all): {TRANSFERS} transfers, {PROPOSALS} proposals, {} votes ({} events)",
            PROPOSALS * nodes,
            events.len()
        );
        println!(
            "all of it on every node after {:.2} s (the floor allows an hour: {:.0}x faster)",
            elapsed,
            3600.0 / elapsed
        );
        println!(
            "{PROPOSALS} proposals voted concurrently by all {nodes} members; gossip: {gossip} events delivered to peers (each pushed by every connected peer, duplicates included; {} unique deliveries), a rate of {:.0} a minute during the burst (floor 1,000: {:.0}x)",
            events.len() * (nodes - 1),
            per_minute,
            per_minute / 1000.0
        );
        for net in nets {
            net.close().await;
        }
    });
}
