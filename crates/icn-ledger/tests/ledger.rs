//! The ledger on a real kernel log: limits over the causal past, bad input,
//! conservation and order independence, and a co-op split by a partition.

use std::collections::BTreeMap;

use icn_identity::{Did, KeyPair};
use icn_kernel::{
    Changes, Event, EventId, Log, LogConfig, Rejection, VIEW_QUARANTINE, Verdict, ViewRow,
    encode_body,
};
use icn_ledger::*;
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
        request: None,
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

/// As a peer's event: a rule's refusal quarantines it in its place.
fn offer(log: &mut Log, event: &Event) -> Verdict {
    log.ingest(verified(event.clone()), at(10_000), &mut Changes::default())
}

/// As this node's own new event: a rule's refusal stores nothing.
fn offer_own(log: &mut Log, event: &Event) -> Verdict {
    log.ingest_own(verified(event.clone()), at(10_000), &mut Changes::default())
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
    rejected_because(offer_own(&mut log, &over), "below the floor");
    coop.rewind(did_of(&ana), 2, Some(first.id()));

    // Ben pays Ana 10 h back. A payment by Ana that does not know of it
    // (no dep) is still over the floor, on every node.
    let back = pay(&mut coop, &ben, &[(&ana, 10 * H)], vec![], 3);
    assert_eq!(offer(&mut log, &back), Verdict::Accepted);
    let unaware = pay(&mut coop, &ana, &[(&ben, 5 * H)], vec![], 4);
    rejected_because(offer_own(&mut log, &unaware), "below the floor");
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
                request: None,
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
                request: None,
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
                request: None,
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
                request: None,
            },
            "not a member",
        ),
        (
            Transfer {
                currency: "hours".into(),
                legs: vec![],
                memo: String::new(),
                request: None,
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
                request: None,
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
                request: None,
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
                request: None,
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
        rejected_because(offer_own(&mut log, &event), reason);
        coop.rewind(ana_did, 1, Some(coop.genesis.id()));
    }
    // A stranger's transfer: not a member.
    let theirs = pay(&mut coop, &stranger, &[(&ana, 5)], vec![], 1);
    rejected_because(offer_own(&mut log, &theirs), "not a member");
    // Garbage in the body.
    let garbage = coop.event_signed(ana_did, &ana, KIND_TRANSFER, vec![0xff; 7], vec![], at(1));
    assert!(matches!(
        offer_own(&mut log, &garbage),
        Verdict::Rejected(_)
    ));
    assert_eq!(log.all_rows(), before, "a refused transfer changed a view");
    // The same garbage from a peer is quarantined with its reason, in its
    // place in Ana's chain, and moves nothing.
    assert!(matches!(
        offer(&mut log, &garbage),
        Verdict::Quarantined(Rejection::BadBody { .. })
    ));
    let ledger_rows = |log: &Log| -> Vec<ViewRow> {
        log.all_rows()
            .into_iter()
            .filter(|row| row.view.starts_with("ledger."))
            .collect()
    };
    assert_eq!(
        ledger_rows(&log),
        before
            .into_iter()
            .filter(|row| row.view.starts_with("ledger."))
            .collect::<Vec<_>>()
    );
    assert!(
        log.all_rows()
            .iter()
            .any(|row| row.view == VIEW_QUARANTINE && row.key.starts_with(&ana_did.to_string()))
    );
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

/// The partition test: the co-op splits in two. On one side Ana's laptop pays
/// Ben, keeps paying, and Ben and Dan build on her entries; on the other a
/// stale copy of her data directory (a restored backup) signs other entries
/// at the same chain positions, and Cleo builds on them. The network heals.
/// Every node, whichever side it saw first, counts the branch the co-op built
/// on (more members depend on it), not the smaller id; Ana's entries on that
/// branch keep counting, the other branch is voided and each of its payees is
/// told; Ana's spending stops only once her causal past holds the proof.
#[test]
fn a_fork_across_a_partition_costs_only_the_branch_the_coop_did_not_build_on() {
    let keys: Vec<KeyPair> = (1..=5).map(member).collect();
    let [ana, ben, cleo, dan, eve] = [&keys[0], &keys[1], &keys[2], &keys[3], &keys[4]];
    let mut coop = Coop::found("Split", &keys.iter().collect::<Vec<_>>());
    let shared = vec![pay(&mut coop, dan, &[(ana, 2 * H)], vec![], 1)];
    let (seq, prev) = coop.position(&did_of(ana));

    // Side one: Ana's laptop pays Ben 3 h and keeps paying; Ben and Dan
    // build on her entries.
    let to_ben = pay(&mut coop, ana, &[(ben, 3 * H)], vec![shared[0].id()], 10);
    let ben_pays_dan = pay(&mut coop, ben, &[(dan, 2 * H)], vec![to_ben.id()], 11);
    let ana_pays_dan = pay(&mut coop, ana, &[(dan, H)], vec![], 12);
    let dan_pays_ben = pay(&mut coop, dan, &[(ben, H)], vec![ana_pays_dan.id()], 13);
    let ana_pays_ben = pay(&mut coop, ana, &[(ben, H)], vec![dan_pays_ben.id()], 14);
    let laptop_head = coop.position(&did_of(ana));
    // Side two: a stale copy of Ana's laptop pays Cleo 3 h at the same
    // position, then Eve; Cleo builds on it.
    coop.rewind(did_of(ana), seq, prev);
    let to_cleo = pay(&mut coop, ana, &[(cleo, 3 * H)], vec![shared[0].id()], 10);
    let cleo_pays_eve = pay(&mut coop, cleo, &[(eve, H)], vec![to_cleo.id()], 12);
    let copy_pays_eve = pay(&mut coop, ana, &[(eve, H)], vec![], 13);
    coop.rewind(did_of(ana), laptop_head.0, laptop_head.1);
    let side_one = vec![
        to_ben.clone(),
        ben_pays_dan.clone(),
        ana_pays_dan.clone(),
        dan_pays_ben.clone(),
        ana_pays_ben.clone(),
    ];
    let side_two = vec![
        to_cleo.clone(),
        cleo_pays_eve.clone(),
        copy_pays_eve.clone(),
    ];

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

    // Ben and Dan built on the laptop's entry, Cleo alone on the copy's:
    // the laptop's branch counts whichever id is smaller.
    let first = balances(&nodes[0]);
    assert_eq!(first.values().sum::<i64>(), 0);
    for node in &nodes {
        for counted in &side_one {
            assert!(
                node.is_counted(&counted.id()),
                "the branch the co-op built on counts"
            );
            assert!(
                node.quarantined(&counted.id()).is_none(),
                "and is not frozen"
            );
        }
        assert!(!node.is_counted(&to_cleo.id()) && !node.is_counted(&copy_pays_eve.id()));
        // Cleo's onward payment counts, judged without the voided entry.
        assert!(node.is_counted(&cleo_pays_eve.id()));
        assert_eq!(balances(node), first, "nodes disagree after healing");
        assert_eq!(node.all_rows(), nodes[0].all_rows());
    }
    assert_eq!(
        balance_of(&nodes[0], &did_of(ben).to_string()),
        3 * H as i64
    );
    assert_eq!(
        balance_of(&nodes[0], &did_of(ana).to_string()),
        -3 * H as i64
    );

    // Every payee of every voided entry is told, and so is Ana.
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
    assert!(told(did_of(cleo), "voided"), "{notices:?}");
    assert!(told(did_of(eve), "voided"), "{notices:?}");
    assert!(!told(did_of(ben), "voided"), "{notices:?}");
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

    // Once a node knows of the fork, what it signs carries the proof (the
    // losing variant) among its deps; Ana's laptop, having synced, pays
    // again: her account is frozen for that payment, everywhere.
    let proof_deps = nodes[0].unseen_heads(&did_of(ana));
    assert!(proof_deps.contains(&to_cleo.id()), "{proof_deps:?}");
    let after_sync = pay(&mut coop, ana, &[(ben, H)], proof_deps, 20);
    // Her own node refuses it (nothing is stored) …
    let mut laptop = new_log(&coop);
    for event in shared.iter().chain(&side_one).chain(&side_two) {
        offer(&mut laptop, event);
    }
    rejected_because(offer_own(&mut laptop, &after_sync), "frozen");
    // … and a modified client's copy is quarantined by everyone.
    for node in &mut nodes {
        match offer(node, &after_sync) {
            Verdict::Quarantined(reason) => assert!(reason.to_string().contains("frozen")),
            other => panic!("{other:?}"),
        }
    }
}

fn signed(
    coop: &mut Coop,
    key: &KeyPair,
    kind: &str,
    body: Vec<u8>,
    deps: Vec<EventId>,
    minute: u64,
) -> Event {
    coop.event_signed(did_of(key), key, kind, body, deps, at(minute))
}

/// One row of a view, as JSON.
fn row(log: &Log, view: &str, key: &str) -> serde_json::Value {
    let row = log
        .all_rows()
        .into_iter()
        .find(|row| row.view == view && row.key == key)
        .unwrap_or_else(|| panic!("no {view} row {key}"));
    serde_json::from_str(row.value.as_deref().unwrap()).unwrap()
}

fn balance_of(log: &Log, account: &str) -> i64 {
    balances(log)
        .get(&format!("{account}/hours"))
        .copied()
        .unwrap_or(0)
}

#[test]
fn requests_are_paid_declined_or_withdrawn_once() {
    let [ana, ben] = [member(1), member(2)];
    let mut coop = Coop::found("Bakery", &[&ana, &ben]);
    let mut log = new_log(&coop);
    let ask = |coop: &mut Coop, amount: u64, minute: u64| {
        let body = Request {
            payer: did_of(&ana),
            currency: "hours".into(),
            amount,
            memo: "website".into(),
        };
        signed(coop, &ben, KIND_REQUEST, encode_body(&body), vec![], minute)
    };
    let answer = |coop: &mut Coop, request: &Event, amount: u64, minute: u64| {
        let body = Transfer {
            currency: "hours".into(),
            legs: vec![Leg {
                to: did_of(&ben),
                amount,
            }],
            memo: "website".into(),
            request: Some(request.id()),
        };
        signed(
            coop,
            &ana,
            KIND_TRANSFER,
            encode_body(&body),
            vec![request.id()],
            minute,
        )
    };
    let ben_key = |request: &Event| format!("{}/{}", did_of(&ben), request.id());

    // Ben asks for 3 h; the row shows under both, pending, with its auto-accept time.
    let first = ask(&mut coop, 3 * H, 1);
    assert_eq!(offer(&mut log, &first), Verdict::Accepted);
    let pending = row(&log, VIEW_REQUEST, &ben_key(&first));
    assert_eq!(pending["status"], "pending");
    assert_eq!(
        pending["auto_accept_at_ms"],
        at(1).as_millis() + 7 * DAY_MS,
        "the default auto-accepts after 7 days"
    );
    row(
        &log,
        VIEW_REQUEST,
        &format!("{}/{}", did_of(&ana), first.id()),
    );
    // A payment that does not know of the request cannot pay it.
    let blind = Transfer {
        currency: "hours".into(),
        legs: vec![Leg {
            to: did_of(&ben),
            amount: 3 * H,
        }],
        memo: String::new(),
        request: Some(first.id()),
    };
    let blind = signed(
        &mut coop,
        &ana,
        KIND_TRANSFER,
        encode_body(&blind),
        vec![],
        2,
    );
    rejected_because(offer_own(&mut log, &blind), "no payment request");
    coop.rewind(did_of(&ana), 1, Some(coop.genesis.id()));
    let short = answer(&mut coop, &first, 2 * H, 2);
    rejected_because(offer_own(&mut log, &short), "exactly what it asks");
    coop.rewind(did_of(&ana), 1, Some(coop.genesis.id()));
    // Ana pays it.
    let paid = answer(&mut coop, &first, 3 * H, 2);
    assert_eq!(offer(&mut log, &paid), Verdict::Accepted);
    let row_now = row(&log, VIEW_REQUEST, &ben_key(&first));
    assert_eq!(row_now["status"], "paid");
    assert_eq!(row_now["answer"], paid.id().to_string());
    assert!(row_now["auto_accept_at_ms"].is_null());
    assert_eq!(balance_of(&log, &did_of(&ben).to_string()), 3 * H as i64);
    let again = answer(&mut coop, &first, 3 * H, 3);
    rejected_because(offer_own(&mut log, &again), "already paid");
    coop.rewind(did_of(&ana), 2, Some(paid.id()));

    // Ana declines the second; it cannot be paid after.
    let second = ask(&mut coop, H, 4);
    assert_eq!(offer(&mut log, &second), Verdict::Accepted);
    let decline = Decline {
        request: second.id(),
        reason: "I did not ask for this".into(),
    };
    let decline = signed(
        &mut coop,
        &ana,
        KIND_DECLINE,
        encode_body(&decline),
        vec![second.id()],
        5,
    );
    assert_eq!(offer(&mut log, &decline), Verdict::Accepted);
    assert_eq!(
        row(&log, VIEW_REQUEST, &ben_key(&second))["status"],
        "declined"
    );
    let late = answer(&mut coop, &second, H, 6);
    rejected_because(offer_own(&mut log, &late), "already declined");
    coop.rewind(did_of(&ana), 3, Some(decline.id()));

    // Ben withdraws the third; a payment that knows of that is refused.
    let third = ask(&mut coop, H, 7);
    assert_eq!(offer(&mut log, &third), Verdict::Accepted);
    let cancel = signed(
        &mut coop,
        &ben,
        KIND_CANCEL,
        encode_body(&Cancel {
            request: third.id(),
        }),
        vec![],
        8,
    );
    assert_eq!(offer(&mut log, &cancel), Verdict::Accepted);
    let body = Transfer {
        currency: "hours".into(),
        legs: vec![Leg {
            to: did_of(&ben),
            amount: H,
        }],
        memo: String::new(),
        request: Some(third.id()),
    };
    let after_cancel = signed(
        &mut coop,
        &ana,
        KIND_TRANSFER,
        encode_body(&body),
        vec![cancel.id()],
        9,
    );
    rejected_because(offer_own(&mut log, &after_cancel), "withdrawn");
    assert_eq!(
        row(&log, VIEW_REQUEST, &ben_key(&third))["status"],
        "withdrawn"
    );
    // Only the payer declines; nobody asks themselves.
    let by_ben = Decline {
        request: third.id(),
        reason: String::new(),
    };
    let by_ben = signed(
        &mut coop,
        &ben,
        KIND_DECLINE,
        encode_body(&by_ben),
        vec![],
        10,
    );
    rejected_because(offer_own(&mut log, &by_ben), "only the payer");
    coop.rewind(did_of(&ben), 4, Some(cancel.id()));
    let selfish = Request {
        payer: did_of(&ben),
        currency: "hours".into(),
        amount: H,
        memo: String::new(),
    };
    let selfish = signed(
        &mut coop,
        &ben,
        KIND_REQUEST,
        encode_body(&selfish),
        vec![],
        11,
    );
    rejected_because(offer_own(&mut log, &selfish), "ask themselves");
}

#[test]
fn disputes_settle_by_compensating_entries_and_nothing_is_deleted() {
    let [ana, ben, cleo, dan] = [member(1), member(2), member(3), member(4)];
    let mut coop = Coop::found("Bakery", &[&ana, &ben, &cleo, &dan]);
    let mut log = new_log(&coop);
    let paid = pay(&mut coop, &ana, &[(&ben, 10 * H)], vec![], 1);
    assert_eq!(offer(&mut log, &paid), Verdict::Accepted);
    let dispute = |entry: EventId, mediator: &KeyPair| Dispute {
        entry,
        payee: did_of(&ben),
        reason: "the work was never done".into(),
        mediator: did_of(mediator),
    };

    // Refusals: an entry that does not exist, an entry of someone else's,
    // a party as mediator, an empty reason.
    let (ana_seq, ana_prev) = coop.position(&did_of(&ana));
    let ghost = signed(
        &mut coop,
        &ana,
        KIND_DISPUTE,
        encode_body(&dispute(ben_pays_nobody(), &cleo)),
        vec![],
        2,
    );
    rejected_because(offer_own(&mut log, &ghost), "no payment");
    coop.rewind(did_of(&ana), ana_seq, ana_prev);
    let by_ben = signed(
        &mut coop,
        &ben,
        KIND_DISPUTE,
        encode_body(&dispute(paid.id(), &cleo)),
        vec![paid.id()],
        2,
    );
    rejected_because(offer_own(&mut log, &by_ben), "no payment");
    coop.rewind(did_of(&ben), 0, None);
    let partial_judge = signed(
        &mut coop,
        &ana,
        KIND_DISPUTE,
        encode_body(&dispute(paid.id(), &ben)),
        vec![],
        2,
    );
    rejected_because(offer_own(&mut log, &partial_judge), "cannot mediate");
    coop.rewind(did_of(&ana), ana_seq, ana_prev);

    // Ana disputes, naming Cleo; Ben and Cleo are told.
    let opened = signed(
        &mut coop,
        &ana,
        KIND_DISPUTE,
        encode_body(&dispute(paid.id(), &cleo)),
        vec![],
        2,
    );
    assert_eq!(offer(&mut log, &opened), Verdict::Accepted);
    let key = format!("{}/{}", did_of(&ben), opened.id());
    assert_eq!(row(&log, VIEW_DISPUTE, &key)["status"], "open");
    assert_eq!(
        row(
            &log,
            VIEW_NOTICE,
            &format!("{}/{}", did_of(&cleo), opened.id())
        )["kind"],
        "dispute"
    );
    let twice = signed(
        &mut coop,
        &ana,
        KIND_DISPUTE,
        encode_body(&dispute(paid.id(), &dan)),
        vec![],
        3,
    );
    rejected_because(offer_own(&mut log, &twice), "already disputed");
    coop.rewind(did_of(&ana), ana_seq + 1, Some(opened.id()));

    // Evidence from Ben (who has seen the dispute); not from Dan.
    let evidence = |text: &str| {
        encode_body(&Evidence {
            dispute: opened.id(),
            text: text.into(),
        })
    };
    let from_ben = signed(
        &mut coop,
        &ben,
        KIND_EVIDENCE,
        evidence("photos of the finished site"),
        vec![opened.id()],
        4,
    );
    assert_eq!(offer(&mut log, &from_ben), Verdict::Accepted);
    let from_dan = signed(
        &mut coop,
        &dan,
        KIND_EVIDENCE,
        evidence("I heard things"),
        vec![opened.id()],
        4,
    );
    rejected_because(offer_own(&mut log, &from_dan), "only the parties");
    coop.rewind(did_of(&dan), 0, None);
    assert_eq!(
        row(&log, VIEW_DISPUTE, &key)["evidence"][0]["text"],
        "photos of the finished site"
    );

    // Dan cannot resolve it; Cleo rules a partial refund of 4 h.
    let resolve = |outcome: Outcome| {
        encode_body(&Resolve {
            dispute: opened.id(),
            outcome,
            note: "half done".into(),
        })
    };
    let by_dan = signed(
        &mut coop,
        &dan,
        KIND_RESOLVE,
        resolve(Outcome::Reversed),
        vec![opened.id()],
        5,
    );
    rejected_because(offer_own(&mut log, &by_dan), "the mediator");
    coop.rewind(did_of(&dan), 0, None);
    let too_much = signed(
        &mut coop,
        &cleo,
        KIND_RESOLVE,
        resolve(Outcome::PartialRefund { amount: 11 * H }),
        vec![from_ben.id()],
        5,
    );
    rejected_because(offer_own(&mut log, &too_much), "at most what was paid");
    coop.rewind(did_of(&cleo), 0, None);
    let ruled = signed(
        &mut coop,
        &cleo,
        KIND_RESOLVE,
        resolve(Outcome::PartialRefund { amount: 4 * H }),
        vec![from_ben.id()],
        5,
    );
    assert_eq!(offer(&mut log, &ruled), Verdict::Accepted);
    assert_eq!(balance_of(&log, &did_of(&ana).to_string()), -6 * H as i64);
    assert_eq!(balance_of(&log, &did_of(&ben).to_string()), 6 * H as i64);
    let settled = row(&log, VIEW_DISPUTE, &key);
    assert_eq!(settled["status"], "partial refund");
    assert_eq!(settled["refunded"], 4 * H);
    // The original payment is still in Ben's history; the refund is a new entry.
    let ben_entries: Vec<serde_json::Value> = log
        .all_rows()
        .into_iter()
        .filter(|row| row.view == VIEW_ENTRY && row.key.starts_with(&did_of(&ben).to_string()))
        .map(|row| serde_json::from_str(row.value.as_deref().unwrap()).unwrap())
        .collect();
    let kinds: Vec<&str> = ben_entries
        .iter()
        .map(|entry| entry["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["payment", "refund"]);
    assert_eq!(ben_entries[1]["about"], paid.id().to_string());
    let again = signed(
        &mut coop,
        &cleo,
        KIND_RESOLVE,
        resolve(Outcome::Reversed),
        vec![],
        6,
    );
    rejected_because(offer_own(&mut log, &again), "already resolved");
    coop.rewind(did_of(&cleo), 1, Some(ruled.id()));

    // A write-off: the commons makes Ana whole, Ben keeps what he was paid.
    let second = pay(&mut coop, &ana, &[(&ben, 2 * H)], vec![], 7);
    assert_eq!(offer(&mut log, &second), Verdict::Accepted);
    let opened = signed(
        &mut coop,
        &ana,
        KIND_DISPUTE,
        encode_body(&dispute(second.id(), &dan)),
        vec![],
        8,
    );
    assert_eq!(offer(&mut log, &opened), Verdict::Accepted);
    let write_off = Resolve {
        dispute: opened.id(),
        outcome: Outcome::WriteOff,
        note: "Ben moved away".into(),
    };
    let write_off = signed(
        &mut coop,
        &dan,
        KIND_RESOLVE,
        encode_body(&write_off),
        vec![opened.id()],
        9,
    );
    assert_eq!(offer(&mut log, &write_off), Verdict::Accepted);
    assert_eq!(balance_of(&log, &did_of(&ana).to_string()), -6 * H as i64);
    assert_eq!(balance_of(&log, &did_of(&ben).to_string()), 8 * H as i64);
    assert_eq!(balance_of(&log, COMMONS), -2 * H as i64);
    assert_eq!(balances(&log).values().sum::<i64>(), 0);
}

/// An id no event has.
fn ben_pays_nobody() -> EventId {
    EventId([7; 32])
}

#[test]
fn demurrage_is_off_by_default_and_charged_per_period_when_on() {
    let [ana, ben] = [member(1), member(2)];
    const PERIOD_MINUTES: u64 = 30 * 24 * 60;
    let late = at(3 * PERIOD_MINUTES);
    let charge = |coop: &mut Coop, period: u64, amount: u64, minute: u64| {
        let body = Demurrage {
            currency: "hours".into(),
            period,
            amount,
        };
        signed(
            coop,
            &ben,
            KIND_DEMURRAGE,
            encode_body(&body),
            vec![],
            minute,
        )
    };
    let own = |log: &mut Log, event: &Event| {
        log.ingest_own(verified(event.clone()), late, &mut Changes::default())
    };

    let mut plain = Coop::found("Plain", &[&ana, &ben]);
    let mut log = new_log(&plain);
    let off = charge(&mut plain, 0, 1, PERIOD_MINUTES + 1);
    rejected_because(own(&mut log, &off), "demurrage is off");

    // 2 % a period on what is above 5 h.
    let mut coop = Coop::found_with(
        "Taxed",
        &[&ana, &ben],
        &[
            ("ledger.demurrage_bp", "200"),
            ("ledger.demurrage_threshold", "5"),
        ],
    );
    let mut log = new_log(&coop);
    let paid = pay(&mut coop, &ana, &[(&ben, 20 * H)], vec![], 1);
    assert_eq!(own(&mut log, &paid), Verdict::Accepted);
    // Ben's node knows of the payment through a dep; without it the
    // balance in its causal past is 0 and nothing is due.
    let due = 15 * H * 200 / 10_000;
    let early = charge(&mut coop, 0, due, PERIOD_MINUTES - 1);
    rejected_because(own(&mut log, &early), "has not ended");
    coop.rewind(did_of(&ben), 0, None);
    let blind = charge(&mut coop, 0, due, PERIOD_MINUTES + 1);
    rejected_because(own(&mut log, &blind), "is 0:00");
    coop.rewind(did_of(&ben), 0, None);
    let body = Demurrage {
        currency: "hours".into(),
        period: 0,
        amount: due,
    };
    let first = signed(
        &mut coop,
        &ben,
        KIND_DEMURRAGE,
        encode_body(&body),
        vec![paid.id()],
        PERIOD_MINUTES + 1,
    );
    assert_eq!(own(&mut log, &first), Verdict::Accepted);
    assert_eq!(balance_of(&log, COMMONS), due as i64);
    assert_eq!(
        balance_of(&log, &did_of(&ben).to_string()),
        (20 * H - due) as i64
    );
    let twice = charge(&mut coop, 0, due, PERIOD_MINUTES + 2);
    rejected_because(own(&mut log, &twice), "already charged");
    coop.rewind(did_of(&ben), 1, Some(first.id()));
    // The next period charges on the balance after the first charge.
    let next_due = (20 * H - due - 5 * H) * 200 / 10_000;
    let wrong = charge(&mut coop, 1, due, 2 * PERIOD_MINUTES + 1);
    rejected_because(own(&mut log, &wrong), "demurrage due");
    coop.rewind(did_of(&ben), 1, Some(first.id()));
    let second = charge(&mut coop, 1, next_due, 2 * PERIOD_MINUTES + 1);
    assert_eq!(own(&mut log, &second), Verdict::Accepted);
    assert_eq!(balances(&log).values().sum::<i64>(), 0);
}

#[test]
fn a_bad_parameter_refuses_the_genesis() {
    let ana = member(1);
    let coop = Coop::found_with("Odd", &[&ana], &[("ledger.floor", "lots")]);
    let refused = Log::new(
        verified(coop.genesis.clone()),
        LogConfig::default(),
        vec![Box::new(LedgerDomain::default())],
    );
    let error = refused.err().expect("a refusal").to_string();
    assert!(error.contains("ledger.floor"), "{error}");
}
