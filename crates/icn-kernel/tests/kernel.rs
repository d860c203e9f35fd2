//! The kernel's behaviour at its boundary: events in, verdicts and view rows out.

use icn_identity::KeyPair;
use icn_kernel::{
    Changes, Domain, Event, EventId, KIND_KEY_ADD, KIND_KEY_REVOKE, KIND_KEY_ROTATE, KeyAdd,
    KeyRevoke, KeyRotate, Log, LogConfig, PendingReason, Rejection, Timestamp, Verdict, ViewRow,
    encode_body,
};
use icn_testkit::{Coop, NoteDomain, at, did_of, member, verified};
use proptest::prelude::*;

fn domains() -> Vec<Box<dyn Domain>> {
    vec![Box::new(NoteDomain::default())]
}

fn new_log(coop: &Coop) -> Log {
    Log::new(
        verified(coop.genesis.clone()),
        LogConfig::default(),
        domains(),
    )
    .unwrap()
    .0
}

fn offer(log: &mut Log, event: &Event, now: Timestamp) -> Verdict {
    log.ingest(verified(event.clone()), now, &mut Changes::default())
}

/// As this node's own new event: a rule's refusal stores nothing.
fn offer_own(log: &mut Log, event: &Event, now: Timestamp) -> Verdict {
    log.ingest_own(verified(event.clone()), now, &mut Changes::default())
}

#[test]
fn notes_count_and_fold_into_rows() {
    let ana = member(1);
    let mut coop = Coop::found("Bakery", &[&ana]);
    let mut log = new_log(&coop);
    let note = coop.note(&ana, "hello", vec![], at(1));
    let mut changes = Changes::default();
    assert_eq!(
        log.ingest(verified(note.clone()), at(1), &mut changes),
        Verdict::Accepted
    );
    assert!(
        changes
            .rows
            .iter()
            .any(|row| row.view == "note" && row.key == note.id().to_string())
    );
    assert_eq!(changes.stored.len(), 1);
    assert_eq!(offer(&mut log, &note, at(1)), Verdict::Duplicate);
    assert_eq!(log.counted_len(), 2);
}

#[test]
fn domain_rules_unknown_kinds_scope_and_prev_are_enforced() {
    let ana = member(1);
    let mut coop = Coop::found("Bakery", &[&ana]);
    let mut other = Coop::found("Other", &[&ana]);
    let mut log = new_log(&coop);

    // Signed by this node: refused, nothing stored, the position stays free.
    let empty = coop.note(&ana, "", vec![], at(1));
    let refusal = Verdict::Rejected(Rejection::rule("a note has 1 to 100 bytes"));
    assert_eq!(offer_own(&mut log, &empty, at(1)), refusal);
    assert!(!log.is_counted(&empty.id()));
    assert_eq!(log.next_position(&did_of(&ana)).0, 2);
    // From a peer: quarantined in its place, with its reason, in no view.
    let mut changes = Changes::default();
    assert_eq!(
        log.ingest(verified(empty.clone()), at(1), &mut changes),
        Verdict::Quarantined(Rejection::rule("a note has 1 to 100 bytes"))
    );
    assert!(log.is_counted(&empty.id()));
    assert!(log.quarantined(&empty.id()).is_some());
    assert!(changes.rows.iter().all(|row| row.view != "note"));
    let row = changes
        .rows
        .iter()
        .find(|row| row.view == icn_kernel::VIEW_QUARANTINE)
        .expect("a quarantine row");
    assert!(row.value.as_deref().unwrap().contains("1 to 100 bytes"));
    // The author's next event builds on it and counts.
    let next = coop.note(&ana, "after", vec![], at(2));
    assert_eq!(offer(&mut log, &next, at(2)), Verdict::Accepted);
    // A kind this build does not know is quarantined the same way.
    let unknown = coop.event(&ana, "ledger.transfer", vec![1, 2, 3], at(3));
    assert!(matches!(
        offer(&mut log, &unknown, at(3)),
        Verdict::Quarantined(Rejection::UnknownKind { .. })
    ));
    let foreign = other.note(&ana, "hi", vec![], at(1));
    assert_eq!(
        offer(&mut log, &foreign, at(1)),
        Verdict::Rejected(Rejection::WrongScope)
    );
    assert_eq!(
        offer(&mut log, &other.genesis, at(1)),
        Verdict::Rejected(Rejection::SecondGenesis)
    );
    // The genesis, the quarantined note, the next note, the unknown kind.
    assert_eq!(log.counted_len(), 4);
}

#[test]
fn device_keys_are_added_revoked_and_rotated_by_the_identity() {
    let ana = member(1);
    let laptop = member(10);
    let phone = member(11);
    let mut coop = Coop::found("Bakery", &[&ana]);
    let mut log = new_log(&coop);
    let ana_did = did_of(&ana);

    // The laptop key cannot sign before it is authorised.
    let early = coop.event_signed(
        ana_did,
        &laptop,
        "note.add",
        encode_body(&"x"),
        vec![],
        at(1),
    );
    assert_eq!(
        offer(&mut log, &early, at(1)),
        Verdict::Rejected(Rejection::UnauthorisedKey { author: ana_did })
    );
    coop.rewind(ana_did, 1, Some(coop.genesis.id()));

    let add = coop.event(
        &ana,
        KIND_KEY_ADD,
        encode_body(&KeyAdd {
            key: laptop.public(),
            label: "laptop".into(),
        }),
        at(2),
    );
    assert_eq!(offer(&mut log, &add, at(2)), Verdict::Accepted);
    let by_laptop = coop.event_signed(
        ana_did,
        &laptop,
        "note.add",
        encode_body(&icn_testkit::Note {
            text: "from laptop".into(),
        }),
        vec![],
        at(3),
    );
    assert_eq!(offer(&mut log, &by_laptop, at(3)), Verdict::Accepted);

    // Rotate the laptop key to the phone; the inception key is revoked with the laptop signing.
    let rotate = coop.event_signed(
        ana_did,
        &laptop,
        KIND_KEY_ROTATE,
        encode_body(&KeyRotate {
            new: phone.public(),
            label: "phone".into(),
            old: ana.public(),
        }),
        vec![],
        at(4),
    );
    assert_eq!(offer(&mut log, &rotate, at(4)), Verdict::Accepted);
    let revoked_use = coop.note(&ana, "old key", vec![], at(5));
    assert_eq!(
        offer(&mut log, &revoked_use, at(5)),
        Verdict::Rejected(Rejection::UnauthorisedKey { author: ana_did })
    );
    coop.rewind(ana_did, 4, Some(rotate.id()));

    // Revoking the laptop leaves the phone; revoking the phone too is refused.
    let revoke = coop.event_signed(
        ana_did,
        &phone,
        KIND_KEY_REVOKE,
        encode_body(&KeyRevoke {
            key: laptop.public(),
        }),
        vec![],
        at(6),
    );
    assert_eq!(offer(&mut log, &revoke, at(6)), Verdict::Accepted);
    let last = coop.event_signed(
        ana_did,
        &phone,
        KIND_KEY_REVOKE,
        encode_body(&KeyRevoke {
            key: phone.public(),
        }),
        vec![],
        at(7),
    );
    assert!(matches!(
        offer_own(&mut log, &last, at(7)),
        Verdict::Rejected(Rejection::Rule { .. })
    ));
    coop.rewind(ana_did, 5, Some(revoke.id()));
    // A revoked key can never come back: a peer's attempt is quarantined
    // and changes no key.
    let re_add = coop.event_signed(
        ana_did,
        &phone,
        KIND_KEY_ADD,
        encode_body(&KeyAdd {
            key: ana.public(),
            label: "again".into(),
        }),
        vec![],
        at(8),
    );
    assert!(matches!(
        offer(&mut log, &re_add, at(8)),
        Verdict::Quarantined(Rejection::Rule { .. })
    ));

    let keys = log.key_state(&ana_did);
    assert_eq!(
        keys.authorised.keys().copied().collect::<Vec<_>>(),
        vec![phone.public()]
    );
    assert!(keys.revoked.contains(&ana.public()) && keys.revoked.contains(&laptop.public()));
}

#[test]
fn out_of_order_events_wait_and_then_count() {
    let ana = member(1);
    let ben = member(2);
    let mut coop = Coop::found("Bakery", &[&ana, &ben]);
    let mut log = new_log(&coop);
    let first = coop.note(&ana, "one", vec![], at(1));
    let second = coop.note(&ana, "two", vec![], at(2));
    let reply = coop.note(&ben, "re: two", vec![second.id()], at(3));

    assert_eq!(
        offer(&mut log, &reply, at(3)),
        Verdict::Pending(PendingReason::Missing(vec![second.id()]))
    );
    assert!(matches!(
        offer(&mut log, &second, at(3)),
        Verdict::Pending(_)
    ));
    assert_eq!(log.pending_len(), 2);
    let mut changes = Changes::default();
    assert_eq!(
        log.ingest(verified(first), at(3), &mut changes),
        Verdict::Accepted
    );
    // Releasing `first` released `second`, which released `reply`.
    let accepted: Vec<EventId> = changes
        .verdicts
        .iter()
        .filter(|(_, verdict)| *verdict == Verdict::Accepted)
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(accepted.len(), 3);
    assert_eq!(log.pending_len(), 0);
    assert_eq!(log.counted_len(), 4);
}

#[test]
fn future_events_wait_for_the_clock_and_are_not_rejected() {
    let ana = member(1);
    let mut coop = Coop::found("Bakery", &[&ana]);
    let mut log = new_log(&coop);
    let future = coop.note(&ana, "from the future", vec![], at(60));
    assert_eq!(
        offer(&mut log, &future, at(0)),
        Verdict::Pending(PendingReason::Future(at(60)))
    );
    let mut changes = Changes::default();
    log.tick(at(30), &mut changes);
    assert!(changes.verdicts.is_empty());
    log.tick(at(56), &mut changes); // within the five-minute skew
    assert_eq!(changes.verdicts, vec![(future.id(), Verdict::Accepted)]);
}

#[test]
fn a_full_pending_buffer_drops_instead_of_growing() {
    let ana = member(1);
    let mut coop = Coop::found("Bakery", &[&ana]);
    let config = LogConfig {
        pending_max: 3,
        ..LogConfig::default()
    };
    let mut log = Log::new(verified(coop.genesis.clone()), config, domains())
        .unwrap()
        .0;
    let _gap = coop.note(&ana, "never delivered", vec![], at(1));
    let waiting: Vec<Event> = (0..4)
        .map(|i| coop.note(&ana, &format!("n{i}"), vec![], at(2)))
        .collect();
    let verdicts: Vec<Verdict> = waiting
        .iter()
        .map(|event| offer(&mut log, event, at(2)))
        .collect();
    assert!(matches!(verdicts[2], Verdict::Pending(_)));
    assert_eq!(verdicts[3], Verdict::Dropped);
    assert_eq!(log.pending_len(), 3);
}

/// A hostile member floods events that can never be placed (their prev
/// never arrives): the buffer holds only so many of one author's, so an
/// honest member's waiting event still finds room; a stranger's later event
/// is not parked at all; an event whose prev is here but whose signer the
/// chain never authorised is refused before it takes space; and what waited
/// too long is dropped.
#[test]
fn a_members_flood_cannot_fill_the_pending_buffer_for_everyone() {
    let [ana, ben, mallory] = [member(1), member(2), member(3)];
    let mut coop = Coop::found("Bakery", &[&ana, &ben, &mallory]);
    let config = LogConfig {
        pending_max: 100,
        pending_per_author_max: 10,
        ..LogConfig::default()
    };
    let mut log = Log::new(verified(coop.genesis.clone()), config, domains())
        .unwrap()
        .0;
    let _gap = coop.note(&mallory, "never delivered", vec![], at(1));
    let flood: Vec<Verdict> = (0..50)
        .map(|i| {
            let event = coop.note(&mallory, &format!("flood {i}"), vec![], at(2));
            offer(&mut log, &event, at(2))
        })
        .collect();
    assert_eq!(
        flood
            .iter()
            .filter(|v| matches!(v, Verdict::Pending(_)))
            .count(),
        10
    );
    assert!(flood[10..].iter().all(|v| *v == Verdict::Dropped));
    // Ben's event waiting for his own missing prev still parks, and counts
    // once the prev arrives.
    let ben_first = coop.note(&ben, "first", vec![], at(3));
    let ben_second = coop.note(&ben, "second", vec![], at(4));
    assert!(matches!(
        offer(&mut log, &ben_second, at(4)),
        Verdict::Pending(_)
    ));
    assert_eq!(offer(&mut log, &ben_first, at(4)), Verdict::Accepted);
    assert!(log.is_counted(&ben_second.id()));
    // A stranger's second event waits for nothing: it is dropped.
    let stranger = member(9);
    let mut outsiders = Coop::found("Elsewhere", &[&stranger]);
    outsiders.genesis = coop.genesis.clone();
    outsiders.id = coop.id;
    let _ = outsiders.note(&stranger, "one", vec![], at(5));
    let two = outsiders.note(&stranger, "two", vec![], at(5));
    assert_eq!(offer(&mut log, &two, at(5)), Verdict::Dropped);
    // Signed by a key Ana's chain never authorised, with a dep missing: it
    // is refused outright, not parked.
    let intruder = member(8);
    let missing = coop.note(&ben, "not delivered", vec![], at(6));
    let forged = coop.event_signed(
        did_of(&ana),
        &intruder,
        "note.add",
        icn_kernel::encode_body(&icn_testkit::Note { text: "hi".into() }),
        vec![missing.id()],
        at(6),
    );
    assert!(matches!(
        offer(&mut log, &forged, at(6)),
        Verdict::Rejected(icn_kernel::Rejection::UnauthorisedKey { .. })
    ));
    // An hour later, Mallory's parked flood has expired: her new events
    // park again.
    let later = coop.note(&mallory, "later", vec![], at(200));
    assert!(matches!(
        offer(&mut log, &later, at(200)),
        Verdict::Pending(_)
    ));
    assert_eq!(log.pending_len(), 1);
}

/// Two events by Ana at one seq; Ben builds on one of them.
fn equivocation_scenario() -> (Coop, Vec<Event>, [KeyPair; 2]) {
    let ana = member(1);
    let ben = member(2);
    let mut coop = Coop::found("Bakery", &[&ana, &ben]);
    let ana_did = did_of(&ana);
    let base = coop.note(&ana, "base", vec![], at(1));
    let branch_a = coop.note(&ana, "pay Ben", vec![], at(2));
    coop.rewind(ana_did, 2, Some(base.id()));
    let branch_b = coop.note(&ana, "pay Cleo", vec![], at(2));
    let ben_reply = coop.note(&ben, "thanks", vec![branch_a.id()], at(3));
    let ben_alone = coop.note(&ben, "unrelated", vec![], at(4));
    (
        coop,
        vec![base, branch_a, branch_b, ben_reply, ben_alone],
        [ana, ben],
    )
}

#[test]
fn equivocation_is_detected_kept_as_evidence_and_exactly_one_branch_counts() {
    let (coop, events, [ana, _]) = equivocation_scenario();
    let mut log = new_log(&coop);
    let mut changes = Changes::default();
    for event in &events[..2] {
        assert_eq!(
            log.ingest(verified(event.clone()), at(5), &mut changes),
            Verdict::Accepted
        );
    }
    assert_eq!(
        log.ingest(verified(events[3].clone()), at(5), &mut changes),
        Verdict::Accepted
    );
    assert_eq!(
        log.ingest(verified(events[2].clone()), at(5), &mut changes),
        Verdict::Equivocation
    );
    let evidence: Vec<_> = log.evidence().collect();
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].author, did_of(&ana));
    assert_eq!(evidence[0].seq, 3);
    assert_eq!(evidence[0].events.len(), 2);
    assert_eq!(log.forked_at(&did_of(&ana)), Some(3));
    // Exactly one branch counts: the one another member built on (Ben's
    // reply names branch A), whichever id is smaller.
    let (a, b) = (events[1].id(), events[2].id());
    assert!(log.is_counted(&a) && !log.is_counted(&b));
    assert!(log.is_counted(&events[3].id()));
    assert!(log.uncounted().contains(&b));
    assert!(log.is_counted(&events[0].id()));
    // Both branches are kept for replication as proof.
    assert!(log.get(&a).is_some() && log.get(&b).is_some());
    assert!(changes.rebuilt, "a new fork rebuilds the views");
    assert!(changes.recount.contains(&(events[3].id(), true)));
    assert!(changes.recount.contains(&(b, false)));

    // A node that saw branch B first counts it until Ben's reply arrives:
    // then support moves the fork to branch A, and the views are rebuilt.
    let mut other = new_log(&coop);
    let mut changes = Changes::default();
    for index in [0, 2, 1] {
        other.ingest(verified(events[index].clone()), at(5), &mut changes);
    }
    // Nobody built on either variant yet: the smaller id counts.
    assert!(other.is_counted(&a.min(b)) && !other.is_counted(&a.max(b)));
    let mut changes = Changes::default();
    assert_eq!(
        other.ingest(verified(events[3].clone()), at(5), &mut changes),
        Verdict::Accepted
    );
    assert!(other.is_counted(&a) && !other.is_counted(&b));
    assert_eq!(final_state(&other), final_state(&log));
}

fn final_state(log: &Log) -> (Vec<ViewRow>, Vec<EventId>) {
    let mut counted: Vec<EventId> = log.heads().values().map(|(_, id)| *id).collect();
    counted.sort();
    (log.all_rows(), counted)
}

fn run(coop: &Coop, events: &[Event], order: &[usize]) -> (Vec<ViewRow>, Vec<EventId>) {
    let mut log = new_log(coop);
    let mut changes = Changes::default();
    for &i in order {
        log.ingest(verified(events[i].clone()), at(100), &mut changes);
    }
    assert_positions_agree(&log);
    final_state(&log)
}

/// Every counted chain's events are where `chain_position` says they are in
/// the kept order (sync serves a peer from there), and in seq order.
fn assert_positions_agree(log: &Log) {
    let order = log.kept_order();
    for (author, (head, _)) in log.heads() {
        let mut last = None;
        for seq in 1..=head {
            let position = log.chain_position(&author, seq).expect("a position");
            assert_eq!(
                Some(order[position]),
                log.chain_id(&author, seq),
                "{author} {seq}"
            );
            assert!(last < Some(position), "{author} {seq} is after {last:?}");
            last = Some(position);
        }
        assert_eq!(log.chain_position(&author, head + 1), None);
    }
}

/// A random little co-op history: notes with deps, key changes, and sometimes
/// an equivocation.
fn history(seed: u64, count: usize, equivocate: bool) -> (Coop, Vec<Event>) {
    let keys: Vec<KeyPair> = (1..=3).map(member).collect();
    let refs: Vec<&KeyPair> = keys.iter().collect();
    let mut coop = Coop::found("Sim", &refs);
    let mut events: Vec<Event> = Vec::new();
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..count {
        let who = &keys[(next() % 3) as usize];
        let deps: Vec<EventId> = if !events.is_empty() && next() % 2 == 0 {
            vec![events[(next() as usize) % events.len()].id()]
        } else {
            vec![]
        };
        let event = if next() % 7 == 0 {
            let device = member(50 + i as u8);
            coop.event_signed(
                did_of(who),
                who,
                KIND_KEY_ADD,
                encode_body(&KeyAdd {
                    key: device.public(),
                    label: format!("d{i}"),
                }),
                deps,
                at(i as u64),
            )
        } else {
            coop.note(who, &format!("note {i}"), deps, at(i as u64))
        };
        events.push(event);
    }
    if equivocate {
        let who = &keys[(next() % 3) as usize];
        let (seq, prev) = coop.position(&did_of(who));
        if seq >= 2 {
            let earlier = events
                .iter()
                .find(|e| e.author() == did_of(who) && e.seq() == seq)
                .unwrap();
            coop.rewind(did_of(who), seq - 1, earlier.content().prev);
            events.push(coop.note(who, "the other branch", vec![], at(count as u64)));
            coop.rewind(did_of(who), seq, prev);
        }
    }
    (coop, events)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Every permutation of the same events yields identical views.
    #[test]
    fn every_order_yields_identical_views(seed: u64, count in 1usize..24, equivocate: bool, shuffle_seed: u64) {
        let (coop, events) = history(seed, count, equivocate);
        let in_order: Vec<usize> = (0..events.len()).collect();
        let expected = run(&coop, &events, &in_order);
        let mut order = in_order.clone();
        // Fisher–Yates with a seeded xorshift, so a failure replays from its seed.
        let mut state = shuffle_seed | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let shuffled = run(&coop, &events, &order);
        prop_assert_eq!(&expected, &shuffled, "order {:?}", order);
        let reversed: Vec<usize> = in_order.iter().rev().copied().collect();
        prop_assert_eq!(&expected, &run(&coop, &events, &reversed));
    }
}

#[test]
fn replay_from_storage_matches_the_incremental_log() {
    for seed in 1..20u64 {
        let (coop, events) = history(seed, 20, seed % 2 == 0);
        let mut log = new_log(&coop);
        let mut changes = Changes::default();
        for event in &events {
            log.ingest(verified(event.clone()), at(100), &mut changes);
        }
        let evidence: Vec<_> = log.evidence().collect();
        let (replayed, _) = Log::replay(
            verified(coop.genesis.clone()),
            LogConfig::default(),
            domains(),
            events.iter().rev().cloned().map(verified),
            evidence,
            at(100),
        )
        .unwrap();
        assert_positions_agree(&replayed);
        assert_eq!(final_state(&log), final_state(&replayed), "seed {seed}");
    }
}

/// A restart replays the store: every event given is reported as counting or
/// not (one stored while it counted may now hang off a voided branch), or the
/// stored flags never agree with the log.
#[test]
fn replay_recounts_every_event_it_is_given() {
    let (coop, events, _) = equivocation_scenario();
    let evidence = {
        let mut log = new_log(&coop);
        let mut changes = Changes::default();
        for event in &events {
            log.ingest(verified(event.clone()), at(5), &mut changes);
        }
        log.evidence().collect::<Vec<_>>()
    };
    let (log, replayed) = Log::replay(
        verified(coop.genesis.clone()),
        LogConfig::default(),
        domains(),
        events.iter().cloned().map(verified),
        evidence,
        at(5),
    )
    .unwrap();
    // Branch A, which Ben built on, counts (a second pass confirms it).
    assert!(log.is_counted(&events[1].id()));
    assert!(replayed.recount.contains(&(events[1].id(), true)));
    assert!(replayed.recount.contains(&(events[2].id(), false)));
    assert!(replayed.recount.contains(&(events[3].id(), true)));
    assert_eq!(replayed.recount.len(), events.len() + 1);
}

mod recovery {
    use super::*;
    use icn_kernel::{
        Freeze, Guardians, KIND_FREEZE, KIND_GUARDIANS, KIND_RECOVER, KIND_RECOVERY_APPROVE,
        KIND_RECOVERY_CANCEL, KIND_UNFREEZE, Recover, RecoveryApprove, RecoveryCancel,
    };

    /// Ana, her guardians Ben, Cy and Dee (2 of 3, one hour), and Eve, a
    /// member who is not her guardian. `fresh` is the key of Ana's new device.
    struct Scene {
        coop: Coop,
        log: Log,
        keys: [KeyPair; 5],
        fresh: KeyPair,
        guardians_event: Event,
    }

    fn scene() -> Scene {
        let keys = [member(1), member(2), member(3), member(4), member(5)];
        let refs: Vec<&KeyPair> = keys.iter().collect();
        let mut coop = Coop::found("Bakery", &refs);
        let mut log = new_log(&coop);
        let guardians = Guardians {
            guardians: vec![did_of(&keys[1]), did_of(&keys[2]), did_of(&keys[3])],
            threshold: 2,
            delay_ms: 60 * 60_000,
        };
        let guardians_event = coop.event(&keys[0], KIND_GUARDIANS, encode_body(&guardians), at(1));
        assert_eq!(offer(&mut log, &guardians_event, at(1)), Verdict::Accepted);
        Scene {
            coop,
            log,
            keys,
            fresh: member(20),
            guardians_event,
        }
    }

    impl Scene {
        fn approve(&mut self, guardian: usize, time: u64) -> Event {
            let body = RecoveryApprove {
                member: did_of(&self.keys[0]),
                new_key: self.fresh.public(),
            };
            let guardian = &self.keys[guardian];
            self.coop.event_signed(
                did_of(guardian),
                guardian,
                KIND_RECOVERY_APPROVE,
                encode_body(&body),
                vec![self.guardians_event.id()],
                at(time),
            )
        }

        fn recover(&mut self, approvals: &[&Event], time: u64) -> Event {
            let ana = did_of(&self.keys[0]);
            let body = Recover {
                new_key: self.fresh.public(),
                approvals: approvals.iter().map(|event| event.id()).collect(),
            };
            let fresh = self.fresh.clone();
            let deps = approvals.iter().map(|event| event.id()).collect();
            self.coop.event_signed(
                ana,
                &fresh,
                KIND_RECOVER,
                encode_body(&body),
                deps,
                at(time),
            )
        }

        /// Ben (a guardian) freezes Ana, having seen her chain up to her
        /// guardians event.
        fn ben_freezes_ana(&mut self) -> Event {
            let ben = self.keys[1].clone();
            self.coop.event_signed(
                did_of(&ben),
                &ben,
                KIND_FREEZE,
                encode_body(&Freeze {
                    member: did_of(&self.keys[0]),
                }),
                vec![self.guardians_event.id()],
                at(2),
            )
        }

        /// Forgets the position of an event the log refused.
        fn refused(&mut self, event: &Event) {
            let content = event.content();
            self.coop
                .rewind(content.author, content.seq - 1, content.prev);
        }
    }

    /// "Recover the same day": with the default 72 h wait, two of three
    /// approvals must wait it out, but when all three guardians approve the
    /// new key takes over 4 hours after the last approval.
    #[test]
    fn every_guardian_approving_shortens_the_wait_to_hours() {
        let mut scene = scene();
        let guardians = Guardians {
            guardians: (1..=3).map(|index| did_of(&scene.keys[index])).collect(),
            threshold: 2,
            delay_ms: 72 * 60 * 60_000,
        };
        let ana = scene.keys[0].clone();
        let longer = scene
            .coop
            .event(&ana, KIND_GUARDIANS, encode_body(&guardians), at(2));
        assert_eq!(offer(&mut scene.log, &longer, at(2)), Verdict::Accepted);
        scene.guardians_event = longer;
        let [ben, cy] = [scene.approve(1, 10), scene.approve(2, 20)];
        assert_eq!(offer(&mut scene.log, &ben, at(20)), Verdict::Accepted);
        assert_eq!(offer(&mut scene.log, &cy, at(20)), Verdict::Accepted);
        // Two of three, 4 h later: still waiting (72 h).
        let two = scene.recover(&[&ben, &cy], 20 + 4 * 60 + 1);
        assert!(matches!(
            offer(&mut scene.log, &two, at(20 + 4 * 60 + 1)),
            Verdict::Rejected(Rejection::Rule { reason }) if reason.contains("waiting time")
        ));
        scene.refused(&two);
        // The third approves: 4 h after that, it takes over.
        let dee = scene.approve(3, 30);
        assert_eq!(offer(&mut scene.log, &dee, at(30)), Verdict::Accepted);
        let early = scene.recover(&[&ben, &cy, &dee], 30 + 4 * 60 - 1);
        assert!(matches!(
            offer(&mut scene.log, &early, at(30 + 4 * 60)),
            Verdict::Rejected(Rejection::Rule { reason }) if reason.contains("waiting time")
        ));
        scene.refused(&early);
        let all = scene.recover(&[&ben, &cy, &dee], 30 + 4 * 60);
        assert_eq!(
            offer(&mut scene.log, &all, at(30 + 4 * 60)),
            Verdict::Accepted
        );
    }

    #[test]
    fn guardians_recover_a_member_after_the_delay_and_the_old_key_is_refused() {
        let mut scene = scene();
        let ana = did_of(&scene.keys[0]);
        let note = scene.coop.note(&scene.keys[0], "before", vec![], at(2));
        assert_eq!(offer(&mut scene.log, &note, at(2)), Verdict::Accepted);

        // Eve is not Ana's guardian: her approval is refused on her own node
        // and quarantined on others.
        let eve = scene.approve(4, 3);
        let not_guardian = Verdict::Rejected(Rejection::rule(format!(
            "{} is not one of {ana}'s guardians",
            did_of(&scene.keys[4])
        )));
        assert_eq!(offer_own(&mut scene.log, &eve, at(3)), not_guardian);
        assert!(matches!(
            offer(&mut scene.log, &eve, at(3)),
            Verdict::Quarantined(_)
        ));

        // A stranger's key cannot take Ana's next seq with a bare claim.
        let ben_approval = scene.approve(1, 10);
        assert_eq!(
            offer(&mut scene.log, &ben_approval, at(10)),
            Verdict::Accepted
        );
        let early = scene.recover(&[&ben_approval], 11);
        assert!(matches!(
            offer(&mut scene.log, &early, at(11)),
            Verdict::Rejected(Rejection::Rule { reason }) if reason.contains("needs 2")
        ));
        scene.refused(&early);
        // With the second approval it must still wait out the delay.
        let cy_approval = scene.approve(2, 20);
        assert_eq!(
            offer(&mut scene.log, &cy_approval, at(20)),
            Verdict::Accepted
        );
        assert!(scene.log.recovery_approved(&ana, &scene.fresh.public()));
        let waiting = scene.recover(&[&ben_approval, &cy_approval], 50);
        assert!(matches!(
            offer(&mut scene.log, &waiting, at(50)),
            Verdict::Rejected(Rejection::Rule { reason }) if reason.contains("waiting time")
        ));
        scene.refused(&waiting);
        // The approvals must be in its causal past, not only named.
        let unseen = {
            let body = Recover {
                new_key: scene.fresh.public(),
                approvals: vec![ben_approval.id(), cy_approval.id()],
            };
            let fresh = scene.fresh.clone();
            scene.coop.event_signed(
                ana,
                &fresh,
                KIND_RECOVER,
                encode_body(&body),
                vec![],
                at(81),
            )
        };
        assert!(matches!(
            offer(&mut scene.log, &unseen, at(81)),
            Verdict::Rejected(Rejection::Rule { reason }) if reason.contains("has seen")
        ));
        scene.refused(&unseen);

        let recovery = scene.recover(&[&ben_approval, &cy_approval], 81);
        assert_eq!(offer(&mut scene.log, &recovery, at(81)), Verdict::Accepted);
        let keys = scene.log.key_state(&ana);
        assert!(keys.authorises(&scene.fresh.public()));
        assert_eq!(keys.authorised.len(), 1);
        assert!(keys.revoked.contains(&scene.keys[0].public()));
        assert!(!scene.log.recovery_approved(&ana, &scene.fresh.public()));

        // Anything the old key signs afterwards is refused; the new key signs.
        let old = scene.coop.note(&scene.keys[0], "thief", vec![], at(82));
        assert_eq!(
            offer(&mut scene.log, &old, at(82)),
            Verdict::Rejected(Rejection::UnauthorisedKey { author: ana })
        );
        scene.refused(&old);
        let fresh = scene.fresh.clone();
        let after = scene.coop.event_signed(
            ana,
            &fresh,
            "note.add",
            encode_body(&icn_testkit::Note {
                text: "back".into(),
            }),
            vec![],
            at(83),
        );
        assert_eq!(offer(&mut scene.log, &after, at(83)), Verdict::Accepted);
        // Ana's earlier note still counts: her history is intact.
        assert!(scene.log.is_counted(&note.id()));
    }

    #[test]
    fn a_cancelled_recovery_cannot_be_approved_or_completed() {
        let mut scene = scene();
        let ben_approval = scene.approve(1, 2);
        assert_eq!(
            offer(&mut scene.log, &ben_approval, at(2)),
            Verdict::Accepted
        );
        // Ana still has her laptop: she cancels the recovery to that key.
        let cancel = scene.coop.event(
            &scene.keys[0],
            KIND_RECOVERY_CANCEL,
            encode_body(&RecoveryCancel {
                new_key: scene.fresh.public(),
            }),
            at(3),
        );
        assert_eq!(offer(&mut scene.log, &cancel, at(3)), Verdict::Accepted);
        let ana = did_of(&scene.keys[0]);
        assert!(!scene.log.recovery_approved(&ana, &scene.fresh.public()));
        // Cy, having seen the cancellation, cannot approve that key.
        let cy = &scene.keys[2];
        let late = scene.coop.event_signed(
            did_of(cy),
            cy,
            KIND_RECOVERY_APPROVE,
            encode_body(&RecoveryApprove {
                member: ana,
                new_key: scene.fresh.public(),
            }),
            vec![cancel.id()],
            at(4),
        );
        assert!(matches!(
            offer_own(&mut scene.log, &late, at(4)),
            Verdict::Rejected(Rejection::Rule { reason }) if reason.contains("cancelled")
        ));
        assert!(matches!(
            offer(&mut scene.log, &late, at(4)),
            Verdict::Quarantined(_)
        ));
        // Dee approved without seeing it; the recovery is refused anyway.
        let dee_approval = scene.approve(3, 5);
        assert_eq!(
            offer(&mut scene.log, &dee_approval, at(5)),
            Verdict::Accepted
        );
        let recovery = scene.recover(&[&ben_approval, &dee_approval], 200);
        assert!(matches!(
            offer(&mut scene.log, &recovery, at(200)),
            Verdict::Rejected(Rejection::Rule { reason }) if reason.contains("cancelled")
        ));
    }

    /// The stolen-laptop trial: a guardian freezes Ana; the thief, offline
    /// with her laptop, never sees the freeze and cancels the recovery and
    /// pays. Whatever order the events arrive in, the thief's events count
    /// nowhere (they follow the position the guardian had seen), the
    /// cancellation does not block the recovery, and the new device takes
    /// over and signs freely.
    #[test]
    fn a_freeze_stops_a_stolen_laptop_that_signs_without_seeing_it() {
        let mut scene = scene();
        let ana = did_of(&scene.keys[0]);
        let freeze = scene.ben_freezes_ana();
        let laptop = scene.keys[0].clone();
        let cancel = scene.coop.event_signed(
            ana,
            &laptop,
            KIND_RECOVERY_CANCEL,
            encode_body(&RecoveryCancel {
                new_key: scene.fresh.public(),
            }),
            vec![],
            at(3),
        );
        let theft = scene.coop.note(&laptop, "pay the thief", vec![], at(4));
        let approvals = [scene.approve(1, 5), scene.approve(2, 6)];
        let recover = scene.recover(&[&approvals[0], &approvals[1]], 6 + 61);
        let fresh = scene.fresh.clone();
        let after = scene.coop.event_signed(
            ana,
            &fresh,
            "note.add",
            encode_body(&icn_testkit::Note {
                text: "back".into(),
            }),
            vec![recover.id()],
            at(70),
        );
        let events = [
            freeze.clone(),
            cancel.clone(),
            theft.clone(),
            approvals[0].clone(),
            approvals[1].clone(),
            recover.clone(),
            after.clone(),
        ];
        let orders: [&[usize]; 3] = [
            &[0, 1, 2, 3, 4, 5, 6],
            // The thief's events first: judged before the freeze arrives.
            &[1, 2, 3, 4, 0, 5, 6],
            &[6, 5, 4, 3, 2, 1, 0],
        ];
        let mut states = Vec::new();
        for order in orders {
            let mut log = new_log(&scene.coop);
            offer(&mut log, &scene.guardians_event, at(1));
            for &index in order {
                offer(&mut log, &events[index], at(100));
            }
            for thief in [&cancel, &theft] {
                let reason = log.quarantined(&thief.id()).expect("quarantined");
                assert!(reason.to_string().contains("frozen"), "{reason}");
            }
            assert!(
                log.is_counted(&recover.id()),
                "the recovery completes in order {order:?}: {:?}",
                log.quarantined(&recover.id())
            );
            assert!(log.is_counted(&after.id()) && log.quarantined(&after.id()).is_none());
            assert_eq!(log.frozen(&ana), None, "the recovery lifted the freeze");
            states.push(final_state(&log));
        }
        assert!(states.windows(2).all(|pair| pair[0] == pair[1]));
    }

    /// An unfreeze whose guardian had seen events frozen before it lifts
    /// them in whatever order the events arrive: counted at once, as after
    /// a replay.
    #[test]
    fn an_unfreeze_lifts_what_it_saw_in_any_arrival_order() {
        let mut scene = scene();
        let ana = did_of(&scene.keys[0]);
        let ben = scene.keys[1].clone();
        let freeze = scene.ben_freezes_ana();
        let laptop = scene.keys[0].clone();
        let paid = scene.coop.note(&laptop, "a payment", vec![], at(3));
        let unfreeze = scene.coop.event_signed(
            did_of(&ben),
            &ben,
            KIND_UNFREEZE,
            encode_body(&Freeze { member: ana }),
            vec![freeze.id(), paid.id()],
            at(4),
        );
        let events = [freeze, paid.clone(), unfreeze];
        let mut states = Vec::new();
        for order in [[0, 1, 2], [1, 0, 2], [2, 1, 0], [0, 2, 1]] {
            let mut log = new_log(&scene.coop);
            offer(&mut log, &scene.guardians_event, at(1));
            for index in order {
                offer(&mut log, &events[index], at(100));
            }
            assert_eq!(
                log.quarantined(&paid.id()),
                None,
                "order {order:?}: the payment counts"
            );
            assert_eq!(log.frozen(&ana), None, "order {order:?}");
            states.push(final_state(&log));
        }
        for (i, state) in states.iter().enumerate() {
            assert_eq!(state, &states[0], "order #{i} differs from the first");
        }
    }

    #[test]
    fn a_guardian_freezes_a_member_until_unfrozen() {
        let mut scene = scene();
        let ana = did_of(&scene.keys[0]);
        let ben = scene.keys[1].clone();
        let freeze = scene.ben_freezes_ana();
        let mut changes = Changes::default();
        assert_eq!(
            scene
                .log
                .ingest(verified(freeze.clone()), at(2), &mut changes),
            Verdict::Accepted
        );
        assert_eq!(scene.log.frozen(&ana), Some(did_of(&ben)));
        // The freeze view says so, as the whole fold does: readers answer
        // from it without the log.
        let freeze_rows = |rows: &[icn_kernel::ViewRow]| -> Vec<(String, Option<String>)> {
            rows.iter()
                .filter(|row| row.view == icn_kernel::VIEW_FREEZE)
                .map(|row| (row.key.clone(), row.value.clone()))
                .collect()
        };
        let expected = vec![(
            ana.to_string(),
            Some(format!(r#"{{"guardians":["{}"]}}"#, did_of(&ben))),
        )];
        assert_eq!(freeze_rows(&changes.rows), expected);
        assert_eq!(freeze_rows(&scene.log.all_rows()), expected);
        // Ana's device has seen the freeze: what it signs does not count.
        let frozen = scene
            .coop
            .note(&scene.keys[0], "pay", vec![freeze.id()], at(3));
        assert!(matches!(
            offer_own(&mut scene.log, &frozen, at(3)),
            Verdict::Rejected(Rejection::Rule { reason }) if reason.contains("frozen")
        ));
        assert!(matches!(
            offer(&mut scene.log, &frozen, at(3)),
            Verdict::Quarantined(_)
        ));
        // Eve is no guardian of Ana's: she cannot freeze or unfreeze her.
        let eve = scene.keys[4].clone();
        let stranger = scene.coop.event_signed(
            did_of(&eve),
            &eve,
            KIND_UNFREEZE,
            encode_body(&Freeze { member: ana }),
            vec![freeze.id()],
            at(4),
        );
        assert!(matches!(
            offer(&mut scene.log, &stranger, at(4)),
            Verdict::Quarantined(_)
        ));
        let unfreeze = scene.coop.event_signed(
            did_of(&ben),
            &ben,
            KIND_UNFREEZE,
            encode_body(&Freeze { member: ana }),
            vec![],
            at(5),
        );
        let mut changes = Changes::default();
        assert_eq!(
            scene
                .log
                .ingest(verified(unfreeze.clone()), at(5), &mut changes),
            Verdict::Accepted
        );
        assert_eq!(scene.log.frozen(&ana), None);
        // The lifted freeze leaves the view: a deleted row, or, when the
        // unfreeze rebuilt the log, a full rewrite without it.
        let left = if changes.rebuilt {
            vec![]
        } else {
            vec![(ana.to_string(), None)]
        };
        assert_eq!(freeze_rows(&changes.rows), left);
        assert!(freeze_rows(&scene.log.all_rows()).is_empty());
        let free = scene
            .coop
            .note(&scene.keys[0], "pay", vec![unfreeze.id()], at(6));
        assert_eq!(offer(&mut scene.log, &free, at(6)), Verdict::Accepted);
    }

    #[test]
    fn the_old_key_cannot_undo_a_recovery_by_signing_at_its_seq() {
        let mut scene = scene();
        let ana = did_of(&scene.keys[0]);
        let ben_approval = scene.approve(1, 2);
        let cy_approval = scene.approve(2, 3);
        let (seq, prev) = scene.coop.position(&ana);
        let recovery = scene.recover(&[&ben_approval, &cy_approval], 100);
        scene.coop.rewind(ana, seq, prev);
        let thief = scene
            .coop
            .note(&scene.keys[0], "to the thief", vec![], at(100));
        let before = [
            scene.guardians_event.clone(),
            ben_approval.clone(),
            cy_approval.clone(),
        ];
        for order in [[&recovery, &thief], [&thief, &recovery]] {
            let mut log = new_log(&scene.coop);
            for event in before.iter().chain(order) {
                offer(&mut log, event, at(100));
            }
            assert!(log.is_counted(&recovery.id()), "the recovery counts");
            assert!(!log.is_counted(&thief.id()));
            assert!(log.key_state(&ana).authorises(&scene.fresh.public()));
        }
        // And a replay from storage agrees.
        let mut log = new_log(&scene.coop);
        let mut changes = Changes::default();
        for event in before.iter().chain([&thief, &recovery]) {
            log.ingest(verified(event.clone()), at(100), &mut changes);
        }
        let stored: Vec<_> = changes
            .stored
            .iter()
            .map(|(event, _)| verified(event.clone()))
            .filter(|event| event.id() != scene.coop.genesis.id())
            .collect();
        let (replayed, _) = Log::replay(
            verified(scene.coop.genesis.clone()),
            LogConfig::default(),
            domains(),
            stored,
            log.evidence(),
            at(100),
        )
        .unwrap();
        assert!(replayed.is_counted(&recovery.id()));
        assert!(!replayed.is_counted(&thief.id()));
    }
}

/// A rolling upgrade: a node of the older build keeps a newer peer's event
/// of a kind it does not know (quarantined in its place, not lost), and
/// once upgraded, its replay from storage counts it.
#[test]
fn an_event_of_a_kind_this_build_lacks_counts_after_the_upgrade() {
    let ana = member(1);
    let mut coop = Coop::found("Bakery", &[&ana]);
    let note = coop.note(&ana, "from a newer build", vec![], at(1));
    let next = coop.note(&ana, "and after it", vec![], at(2));
    let (mut old, _) =
        Log::new(verified(coop.genesis.clone()), LogConfig::default(), vec![]).unwrap();
    let mut changes = Changes::default();
    assert!(matches!(
        old.ingest(verified(note.clone()), at(1), &mut changes),
        Verdict::Quarantined(Rejection::UnknownKind { .. })
    ));
    // The author's later events still count on the old build.
    assert!(matches!(
        old.ingest(verified(next.clone()), at(2), &mut changes),
        Verdict::Quarantined(_)
    ));
    assert!(old.is_counted(&next.id()));
    let stored: Vec<_> = changes
        .stored
        .iter()
        .map(|(event, _)| verified(event.clone()))
        .filter(|event| event.id() != coop.genesis.id())
        .collect();
    let (upgraded, replayed) = Log::replay(
        verified(coop.genesis.clone()),
        LogConfig::default(),
        domains(),
        stored,
        old.evidence(),
        at(3),
    )
    .unwrap();
    assert!(upgraded.quarantined(&note.id()).is_none());
    assert!(
        replayed
            .rows
            .iter()
            .any(|row| row.view == "note" && row.key == note.id().to_string())
    );
}
