//! The ledger on a real kernel log: limits over the causal past, bad input,
//! conservation and order independence, and a co-op split by a partition.

use std::collections::BTreeMap;

use icn_identity::{Did, KeyPair};
use icn_kernel::{Changes, Event, EventId, Log, LogConfig, Verdict, ViewRow, encode_body};
use icn_ledger::{KIND_TRANSFER, LedgerDomain, Leg, Transfer, VIEW_BALANCE, VIEW_NOTICE};
use icn_testkit::{Coop, at, did_of, member, verified};
use proptest::prelude::*;

const H: u64 = 60;

fn new_log(coop: &Coop) -> Log {
    Log::new(
        verified(coop.genesis.clone()),
        LogConfig::default(),
        vec![Box::new(LedgerDomain::default())],
    )
    .unwrap()
    .0
}

fn pay(
    coop: &mut Coop,
    payer: &KeyPair,
    legs: &[(&KeyPair, u64)],
    deps: Vec<EventId>,
    minute: u64,
) -> Event {
    let body = Transfer {
        currency: "hours".into(),
        legs: legs
            .iter()
            .map(|(to, amount)| Leg {
                to: did_of(to),
                amount: *amount,
            })
            .collect(),
        memo: "work".into(),
    };
    coop.event_signed(
        did_of(payer),
        payer,
        KIND_TRANSFER,
        encode_body(&body),
        deps,
        at(minute),
    )
}

fn offer(log: &mut Log, event: &Event) -> Verdict {
    log.ingest(verified(event.clone()), at(10_000), &mut Changes::default())
}

/// Balances by member from the view rows, and whether they sum to zero.
fn balances(log: &Log) -> BTreeMap<String, i64> {
    log.all_rows()
        .into_iter()
        .filter(|row| row.view == VIEW_BALANCE)
        .map(|row| {
            let value: serde_json::Value =
                serde_json::from_str(row.value.as_deref().unwrap()).unwrap();
            (row.key, value["balance"].as_i64().unwrap())
        })
        .collect()
}

fn rejected_because(verdict: Verdict, words: &str) {
    match verdict {
        Verdict::Rejected(rejection) => {
            assert!(rejection.to_string().contains(words), "{rejection}")
        }
        other => panic!("expected a rejection mentioning {words:?}, got {other:?}"),
    }
}

#[test]
fn the_floor_is_checked_over_the_payments_in_the_causal_past() {
    let [ana, ben] = [member(1), member(2)];
    let mut coop = Coop::found("Bakery", &[&ana, &ben]);
    let mut log = new_log(&coop);
    // Ana pays 40 h: exactly at the default floor.
    let first = pay(&mut coop, &ana, &[(&ben, 40 * H)], vec![], 1);
    assert_eq!(offer(&mut log, &first), Verdict::Accepted);
    let over = pay(&mut coop, &ana, &[(&ben, 1)], vec![], 2);
    rejected_because(offer(&mut log, &over), "below the floor");
    coop.rewind(did_of(&ana), 2, Some(first.id()));

    // Ben pays Ana 10 h back. A payment by Ana that does not know of it
    // (no dep) is still over the floor, on every node.
    let back = pay(&mut coop, &ben, &[(&ana, 10 * H)], vec![], 3);
    assert_eq!(offer(&mut log, &back), Verdict::Accepted);
    let unaware = pay(&mut coop, &ana, &[(&ben, 5 * H)], vec![], 4);
    rejected_because(offer(&mut log, &unaware), "below the floor");
    coop.rewind(did_of(&ana), 2, Some(first.id()));
    // With Ben's payment in its causal past, it is within the floor.
    let aware = pay(&mut coop, &ana, &[(&ben, 5 * H)], vec![back.id()], 5);
    assert_eq!(offer(&mut log, &aware), Verdict::Accepted);
    let balances = balances(&log);
    assert_eq!(balances[&format!("{}/hours", did_of(&ana))], -35 * H as i64);
    assert_eq!(balances[&format!("{}/hours", did_of(&ben))], 35 * H as i64);
}

#[test]
fn bad_transfers_are_refused_with_a_reason_and_change_nothing() {
    let [ana, ben, stranger] = [member(1), member(2), member(9)];
    let mut coop = Coop::found("Bakery", &[&ana, &ben]);
    let mut log = new_log(&coop);
    let before = log.all_rows();
    let ana_did = did_of(&ana);
    let cases: Vec<(Transfer, &str)> = vec![
        (
            Transfer {
                currency: "hours".into(),
                legs: vec![Leg {
                    to: did_of(&ben),
                    amount: 0,
                }],
                memo: String::new(),
            },
            "at least one unit",
        ),
        (
            Transfer {
                currency: "euros".into(),
                legs: vec![Leg {
                    to: did_of(&ben),
                    amount: 5,
                }],
                memo: String::new(),
            },
            "no currency `euros`",
        ),
        (
            Transfer {
                currency: "hours".into(),
                legs: vec![Leg {
                    to: ana_did,
                    amount: 5,
                }],
                memo: String::new(),
            },
            "cannot pay themselves",
        ),
        (
            Transfer {
                currency: "hours".into(),
                legs: vec![Leg {
                    to: did_of(&stranger),
                    amount: 5,
                }],
                memo: String::new(),
            },
            "not a member",
        ),
        (
            Transfer {
                currency: "hours".into(),
                legs: vec![],
                memo: String::new(),
            },
            "1 to 16 payees",
        ),
        (
            Transfer {
                currency: "hours".into(),
                legs: vec![
                    Leg {
                        to: did_of(&ben),
                        amount: 5,
                    },
                    Leg {
                        to: did_of(&ben),
                        amount: 5,
                    },
                ],
                memo: String::new(),
            },
            "appears twice",
        ),
        (
            Transfer {
                currency: "hours".into(),
                legs: vec![Leg {
                    to: did_of(&ben),
                    amount: u64::MAX,
                }],
                memo: String::new(),
            },
            "overflow",
        ),
        (
            Transfer {
                currency: "hours".into(),
                legs: vec![Leg {
                    to: did_of(&ben),
                    amount: 5,
                }],
                memo: "x".repeat(501),
            },
            "memo is longer",
        ),
    ];
    for (transfer, reason) in cases {
        let event = coop.event_signed(
            ana_did,
            &ana,
            KIND_TRANSFER,
            encode_body(&transfer),
            vec![],
            at(1),
        );
        rejected_because(offer(&mut log, &event), reason);
        coop.rewind(ana_did, 1, Some(coop.genesis.id()));
    }
    // A stranger's transfer: not a member.
    let theirs = pay(&mut coop, &stranger, &[(&ana, 5)], vec![], 1);
    rejected_because(offer(&mut log, &theirs), "not a member");
    // Garbage in the body.
    let garbage = coop.event_signed(ana_did, &ana, KIND_TRANSFER, vec![0xff; 7], vec![], at(1));
    assert!(matches!(offer(&mut log, &garbage), Verdict::Rejected(_)));
    assert_eq!(log.all_rows(), before, "a refused transfer changed a view");
}

/// A random history: transfers among four members, each payer keeping
/// within the floor as far as its own node knows, with random deps.
fn history(seed: u64, count: usize) -> (Coop, Vec<Event>) {
    let keys: Vec<KeyPair> = (1..=4).map(member).collect();
    let mut coop = Coop::found("Sim", &keys.iter().collect::<Vec<_>>());
    let mut events: Vec<Event> = Vec::new();
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..count {
        let payer = (next() % 4) as usize;
        let payee = (payer + 1 + (next() % 3) as usize) % 4;
        let amount = 1 + next() % (15 * H);
        let deps = if !events.is_empty() && next() % 2 == 0 {
            vec![events[(next() as usize) % events.len()].id()]
        } else {
            vec![]
        };
        events.push(pay(
            &mut coop,
            &keys[payer],
            &[(&keys[payee], amount)],
            deps,
            i as u64,
        ));
    }
    (coop, events)
}

fn run(coop: &Coop, events: &[Event], order: &[usize]) -> (Vec<ViewRow>, BTreeMap<String, i64>) {
    let mut log = new_log(coop);
    for &i in order {
        log.ingest(
            verified(events[i].clone()),
            at(10_000),
            &mut Changes::default(),
        );
    }
    (log.all_rows(), balances(&log))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any order of the same transfers ends in the same views, and the
    /// balances always sum to zero (some transfers are over the floor and
    /// refused: the same ones in every order).
    #[test]
    fn balances_are_conserved_and_independent_of_order(seed: u64, count in 1usize..40, shuffle: u64) {
        let (coop, events) = history(seed, count);
        let in_order: Vec<usize> = (0..events.len()).collect();
        let (rows, balances) = run(&coop, &events, &in_order);
        prop_assert_eq!(balances.values().sum::<i64>(), 0);
        let mut order = in_order.clone();
        let mut state = shuffle | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let (shuffled_rows, _) = run(&coop, &events, &order);
        prop_assert_eq!(rows, shuffled_rows, "order {:?}", order);
    }
}

/// The partition test: the co-op splits in two; Ana pays Ben on one side
/// and Cleo on the other with the same chain position; both sides carry on;
/// the network heals. Every honest node ends with identical balances that
/// sum to zero, exactly one of Ana's entries counts, the payee of the other
/// is told, and Ana's account is frozen.
#[test]
fn a_fork_across_a_partition_is_resolved_the_same_way_everywhere() {
    let keys: Vec<KeyPair> = (1..=5).map(member).collect();
    let [ana, ben, cleo, dan, eve] = [&keys[0], &keys[1], &keys[2], &keys[3], &keys[4]];
    let mut coop = Coop::found("Split", &keys.iter().collect::<Vec<_>>());
    let mut shared = vec![pay(&mut coop, dan, &[(ana, 2 * H)], vec![], 1)];
    let (seq, prev) = coop.position(&did_of(ana));

    // Side one: Ana, Ben, Dan. Ana pays Ben 30 h; Ben pays Dan from it.
    let to_ben = pay(&mut coop, ana, &[(ben, 30 * H)], vec![shared[0].id()], 10);
    let ben_pays_dan = pay(&mut coop, ben, &[(dan, 20 * H)], vec![to_ben.id()], 11);
    // Side two: Cleo and Eve. Ana (a copy of her laptop) pays Cleo 30 h at the same position.
    coop.rewind(did_of(ana), seq, prev);
    let to_cleo = pay(&mut coop, ana, &[(cleo, 30 * H)], vec![shared[0].id()], 10);
    let eve_pays_cleo = pay(&mut coop, eve, &[(cleo, H)], vec![], 12);
    // Ana carries on on side two after the fork.
    let ana_later = pay(&mut coop, ana, &[(eve, H)], vec![], 13);
    let side_one = vec![to_ben.clone(), ben_pays_dan.clone()];
    let side_two = vec![to_cleo.clone(), eve_pays_cleo.clone(), ana_later.clone()];

    // Five nodes: three see side one first, two see side two first, then all heal.
    let mut nodes: Vec<Log> = (0..5).map(|_| new_log(&coop)).collect();
    for (index, node) in nodes.iter_mut().enumerate() {
        for event in &shared {
            assert_eq!(offer(node, event), Verdict::Accepted);
        }
        let (mine, theirs) = if index < 3 {
            (&side_one, &side_two)
        } else {
            (&side_two, &side_one)
        };
        for event in mine {
            assert_eq!(offer(node, event), Verdict::Accepted, "before the heal");
        }
        // Heal: the other side's events arrive (in reverse, for good measure).
        for event in theirs.iter().rev() {
            offer(node, event);
        }
    }
    shared.extend(side_one.iter().chain(&side_two).cloned());

    let winner = to_ben.id().min(to_cleo.id());
    let loser = to_ben.id().max(to_cleo.id());
    let first = balances(&nodes[0]);
    assert_eq!(first.values().sum::<i64>(), 0);
    for node in &nodes {
        assert!(node.is_counted(&winner) && !node.is_counted(&loser));
        assert_eq!(balances(node), first, "nodes disagree after healing");
        assert_eq!(node.all_rows(), nodes[0].all_rows());
        // Ana's later payment is refused: her account is frozen after the fork.
        assert!(!node.is_counted(&ana_later.id()));
    }
    // Ben's onward payment counts only if Ana's payment to him did.
    assert_eq!(
        nodes[0].is_counted(&ben_pays_dan.id()),
        winner == to_ben.id()
    );
    assert!(nodes[0].is_counted(&eve_pays_cleo.id()));

    // The payee of the voided entry and Ana are told.
    let voided_payee = if winner == to_ben.id() {
        did_of(cleo)
    } else {
        did_of(ben)
    };
    let notices: Vec<ViewRow> = nodes[0]
        .all_rows()
        .into_iter()
        .filter(|row| row.view == VIEW_NOTICE)
        .collect();
    let told = |who: Did, kind: &str| {
        notices.iter().any(|row| {
            row.key.starts_with(&who.to_string()) && row.value.as_deref().unwrap().contains(kind)
        })
    };
    assert!(told(voided_payee, "voided"), "{notices:?}");
    assert!(told(did_of(ana), "frozen"), "{notices:?}");
    let conflicts = nodes[0]
        .all_rows()
        .into_iter()
        .find(|row| row.key == "#conflicts")
        .unwrap();
    assert!(
        conflicts
            .value
            .unwrap()
            .contains("\"ledger_conflicts_detected_total\":1")
    );
}
