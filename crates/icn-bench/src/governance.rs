//! `icn-bench governance [PROPOSALS] [NODES]`: a co-op of NODES members'
//! nodes (default 10) on a loopback QUIC mesh opens PROPOSALS proposals at
//! once (default 50, spread over the members), every member votes on every
//! one from their own node, and the closer's node closes each as soon as
//! everyone has voted. The figure is the time from the first proposal until
//! every node holds every outcome, with the phases beside it; and, for each
//! proposal, the time from its close on the closer until every node has it.

use icn_node::prelude::*;
use std::time::{Duration, Instant};

use icn_governance as gov;
use icn_node::node::now;

use crate::propagate::{self, Arrivals, Mesh, percentile, wait_all};

/// Proposal `n`: a plain decision by simple majority, open for a day.
pub(crate) fn decision(n: usize) -> icn_api::Propose {
    icn_api::Propose {
        title: format!("Proposal {n}"),
        text: String::new(),
        template: "simple-majority".into(),
        duration: Some("1d".into()),
        circle: None,
        review: None,
        action: icn_api::ProposalAction::Decision,
        draft: false,
        hidden: None,
    }
}

pub fn run(proposals: usize, nodes: usize) {
    let Mesh { states, .. } = &propagate::nodes(nodes);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let arrivals: Arrivals = Default::default();
        let nets = propagate::connect(states, &arrivals).await;
        let dids: Vec<_> = states
            .iter()
            .map(|state| state.node.lock().expect("not poisoned").identity().expect("an identity").did)
            .collect();
        let warm = propagate::pay(&states[0], &dids[1]).0;
        wait_all(&arrivals, warm, nodes, Duration::from_secs(120)).expect("the mesh forms");

        let start = Instant::now();
        let mut ids = Vec::with_capacity(proposals);
        for n in 0..proposals {
            let request = decision(n);
            let id = states[n % nodes]
                .node
                .lock()
                .expect("not poisoned")
                .propose(&request, now())
                .expect("proposes");
            ids.push(id);
        }
        for id in &ids {
            wait_all(&arrivals, *id, nodes, Duration::from_secs(60)).expect("proposals spread");
        }
        let spread = start.elapsed();
        // Every member votes on every proposal from their own node, all at once.
        let voters: Vec<_> = states
            .iter()
            .map(|state| {
                let (state, ids) = (state.clone(), ids.clone());
                tokio::task::spawn_blocking(move || {
                    for id in ids {
                        let vote = icn_api::CastVote {
                            proposal: id.to_string(),
                            choice: "yes".into(),
                            reason: String::new(),
                            strength: None,
                        };
                        state.node.lock().expect("not poisoned").vote(&vote, now()).expect("votes");
                    }
                })
            })
            .collect();
        for voter in voters {
            voter.await.expect("voted");
        }
        let voted = start.elapsed();
        // The closer (the first founder) closes what everyone has voted on,
        // as its daemon's tick would; here it runs as soon as it can.
        let mut closes = Vec::new();
        let mut closed_at = Vec::new();
        while closes.len() < proposals {
            let signed = states[0]
                .node
                .lock()
                .expect("not poisoned")
                .governance_duties(now())
                .expect("duties");
            let at = Instant::now();
            closed_at.extend(signed.iter().map(|_| at));
            closes.extend(signed);
            if closes.len() < proposals {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        let mut after_close = Vec::new();
        let mut last = start;
        for (id, at) in closes.iter().zip(&closed_at) {
            let everywhere = wait_all(&arrivals, *id, nodes, Duration::from_secs(60)).expect("outcomes spread");
            after_close.push((everywhere - *at).as_secs_f64() * 1e3);
            last = last.max(everywhere);
        }
        let total = last - start;
        let open: usize = states
            .iter()
            .map(|state| {
                state.node.lock().expect("not poisoned").store().view_len(gov::VIEW_OPEN).expect("reads") as usize
            })
            .sum();
        assert_eq!(open, 0, "every node holds every outcome");
        println!("{proposals} proposals, {nodes} voters on {nodes} nodes (loopback QUIC mesh), every member votes on every proposal");
        println!(
            "time from the first proposal until every node holds every outcome: {:.0} ms (proposals on every node after {:.0} ms; all {} votes committed after {:.0} ms)",
            total.as_secs_f64() * 1e3,
            spread.as_secs_f64() * 1e3,
            proposals * nodes,
            voted.as_secs_f64() * 1e3
        );
        println!(
            "a close reaches every node: p50 {:.1} ms, p99 {:.1} ms after the closer signs it",
            percentile(&mut after_close, 0.5),
            percentile(&mut after_close, 0.99)
        );
        for net in nets {
            net.close().await;
        }
    });
}
