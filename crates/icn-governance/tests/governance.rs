//! Membership and governance on a real kernel log with the ledger beside
//! them: admission by vouches, proposals, the deterministic close, effects
//! applied once, bad input, and order independence.

use std::collections::BTreeMap;

use icn_governance::*;
use icn_identity::{Did, KeyPair};
use icn_kernel::{
    Changes, Event, EventId, Log, LogConfig, Status, Tier, Verdict, ViewRow, encode_body,
};
use icn_ledger::{KIND_TRANSFER, LedgerDomain, Leg, Transfer, VIEW_BALANCE};
use icn_testkit::{Coop, at, did_of, member, verified};
use proptest::prelude::*;

fn domains() -> Vec<Box<dyn icn_kernel::Domain>> {
    vec![
        Box::new(LedgerDomain::default()),
        Box::new(MemberDomain::default()),
        Box::new(GovDomain::default()),
        Box::new(icn_governance::trust::TrustDomain::default()),
    ]
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

/// Ingests as a peer's event, at a time after every test event.
fn offer(log: &mut Log, event: &Event) -> Verdict {
    log.ingest(
        verified(event.clone()),
        at(10_000_000),
        &mut Changes::default(),
    )
}

fn accept(log: &mut Log, events: &[&Event]) {
    for event in events {
        assert_eq!(offer(log, event), Verdict::Accepted, "{}", event.kind());
    }
}

fn refused(verdict: Verdict, words: &str) {
    match verdict {
        Verdict::Quarantined(rejection) | Verdict::Rejected(rejection) => {
            assert!(rejection.to_string().contains(words), "{rejection}")
        }
        other => panic!("expected a refusal mentioning {words:?}, got {other:?}"),
    }
}

fn rows_of(log: &Log, view: &str) -> BTreeMap<String, serde_json::Value> {
    log.all_rows()
        .into_iter()
        .filter(|row: &ViewRow| row.view == view)
        .map(|row| {
            (
                row.key,
                serde_json::from_str(row.value.as_deref().unwrap()).unwrap(),
            )
        })
        .collect()
}

fn proposal_row(log: &Log, id: EventId) -> serde_json::Value {
    rows_of(log, VIEW_PROPOSAL)[&id.to_string()].clone()
}

fn balance(log: &Log, account: &str) -> i64 {
    rows_of(log, VIEW_BALANCE)
        .get(&format!("{account}/hours"))
        .map_or(0, |row| row["balance"].as_i64().unwrap())
}

fn event(
    coop: &mut Coop,
    key: &KeyPair,
    kind: &str,
    body: Vec<u8>,
    deps: &[&Event],
    minute: u64,
) -> Event {
    coop.event_signed(
        did_of(key),
        key,
        kind,
        body,
        deps.iter().map(|event| event.id()).collect(),
        at(minute),
    )
}

fn rules(method: Method, quorum: Fraction) -> Rules {
    Rules {
        method,
        quorum,
        duration_ms: 60 * MINUTE_MS,
        early_close: false,
        hidden: false,
    }
}

fn propose(
    coop: &mut Coop,
    key: &KeyPair,
    action: Action,
    rules: Rules,
    electorate: &[&KeyPair],
    deps: &[&Event],
    minute: u64,
) -> Event {
    let mut electorate: Vec<Did> = electorate.iter().map(|key| did_of(key)).collect();
    electorate.sort();
    let body = Propose {
        title: format!("A {}", action.label()),
        text: String::new(),
        circle: None,
        action,
        template: "test".into(),
        rules,
        electorate,
        review_at_ms: None,
        draft: false,
    };
    event(coop, key, KIND_PROPOSE, encode_body(&body), deps, minute)
}

fn vote(
    coop: &mut Coop,
    key: &KeyPair,
    proposal: &Event,
    choice: Choice,
    deps: &[&Event],
    minute: u64,
) -> Event {
    let body = Vote {
        proposal: proposal.id(),
        choice,
        reason: if choice == Choice::Block {
            "not yet".into()
        } else {
            String::new()
        },
        strength: 1,
    };
    let mut all = vec![proposal];
    all.extend_from_slice(deps);
    event(coop, key, KIND_VOTE, encode_body(&body), &all, minute)
}

fn close(
    coop: &mut Coop,
    closer: &KeyPair,
    proposal: &Event,
    deps: &[&Event],
    minute: u64,
) -> Event {
    let mut all = vec![proposal];
    all.extend_from_slice(deps);
    event(
        coop,
        closer,
        KIND_CLOSE,
        encode_body(&Close {
            proposal: proposal.id(),
        }),
        &all,
        minute,
    )
}

fn pay(
    coop: &mut Coop,
    payer: &KeyPair,
    to: &KeyPair,
    minutes: u64,
    deps: &[&Event],
    minute: u64,
) -> Event {
    let body = Transfer {
        currency: "hours".into(),
        legs: vec![Leg {
            to: did_of(to),
            amount: minutes,
        }],
        memo: "work".into(),
        request: None,
    };
    event(coop, payer, KIND_TRANSFER, encode_body(&body), deps, minute)
}

#[test]
fn an_applicant_vouched_for_twice_is_admitted_and_can_trade() {
    let [ana, ben, cas, dee] = [member(1), member(2), member(3), member(4)];
    let mut coop = Coop::found("Vouching", &[&ana, &ben, &cas]);
    let mut log = new_log(&coop);

    let apply = event(
        &mut coop,
        &dee,
        KIND_APPLY,
        encode_body(&Apply {
            name: "Dee".into(),
            note: "I fix bikes".into(),
        }),
        &[],
        1,
    );
    accept(&mut log, &[&apply]);
    // Not a member yet: cannot be paid.
    let early = pay(&mut coop, &ana, &dee, 60, &[&apply], 2);
    refused(offer(&mut log, &early), "not a member");

    let vouch = |coop: &mut Coop, key: &KeyPair, minute| {
        event(
            coop,
            key,
            KIND_VOUCH,
            encode_body(&Vouch {
                applicant: did_of(&dee),
                note: String::new(),
            }),
            &[&apply],
            minute,
        )
    };
    let self_vouch = event(
        &mut coop,
        &dee,
        KIND_VOUCH,
        encode_body(&Vouch {
            applicant: did_of(&dee),
            note: String::new(),
        }),
        &[],
        3,
    );
    refused(offer(&mut log, &self_vouch), "cannot vouch for themselves");

    let by_ben = vouch(&mut coop, &ben, 4);
    accept(&mut log, &[&by_ben]);
    let twice = vouch(&mut coop, &ben, 5);
    refused(offer(&mut log, &twice), "already vouched");
    // One vouch is not enough.
    let admit_early = event(
        &mut coop,
        &ana,
        KIND_ADMIT,
        encode_body(&Admit {
            applicant: did_of(&dee),
        }),
        &[&by_ben],
        6,
    );
    refused(offer(&mut log, &admit_early), "1 of the 2 vouches");

    let by_cas = vouch(&mut coop, &cas, 7);
    accept(&mut log, &[&by_cas]);
    let admit = event(
        &mut coop,
        &ana,
        KIND_ADMIT,
        encode_body(&Admit {
            applicant: did_of(&dee),
        }),
        &[&by_ben, &by_cas],
        8,
    );
    accept(&mut log, &[&admit]);
    let membership = log.coop_state().member(&did_of(&dee), None).unwrap();
    assert_eq!(
        (membership.status, membership.tier),
        (Status::Active, Tier::Provisional)
    );
    let row = &rows_of(&log, VIEW_MEMBER)[&did_of(&dee).to_string()];
    assert_eq!(row["name"], "Dee");
    assert_eq!(row["status"], "active");
    assert_eq!(row["vouched_by"].as_array().unwrap().len(), 2);

    // A payment that has seen the admission counts; one that has not is refused.
    let blind = pay(&mut coop, &ben, &dee, 30, &[&apply], 9);
    refused(offer(&mut log, &blind), "not a member");
    let paid = pay(&mut coop, &cas, &dee, 90, &[&admit], 10);
    accept(&mut log, &[&paid]);
    assert_eq!(balance(&log, &did_of(&dee).to_string()), 90);
    // The floor shown is the floor enforced: a new member starts at the
    // ramp's start (10 h), not at the full floor, and the view read at a
    // time says so.
    let row: icn_ledger::BalanceRow = serde_json::from_value(
        rows_of(&log, VIEW_BALANCE)[&format!("{}/hours", did_of(&dee))].clone(),
    )
    .unwrap();
    assert_eq!(row.clone().at(at(10).as_millis()).floor, -600);
    let over = pay(&mut coop, &dee, &ana, 90 + 601, &[&paid], 10);
    refused(offer(&mut log, &over), "floor");
    let within = pay(&mut coop, &dee, &ana, 90 + 600, &[&paid], 10);
    accept(&mut log, &[&within]);

    // Probation (90 days by default) ends by the member's own event.
    let early = event(&mut coop, &dee, KIND_CONFIRM, Vec::new(), &[&admit], 11);
    refused(
        offer(&mut log, &early),
        "probation of 90 days has not ended",
    );
    let confirmed = event(
        &mut coop,
        &dee,
        KIND_CONFIRM,
        Vec::new(),
        &[&admit],
        8 + 90 * 24 * 60,
    );
    accept(&mut log, &[&confirmed]);
    let membership = log.coop_state().member(&did_of(&dee), None).unwrap();
    assert_eq!(membership.tier, Tier::Full);
}

#[test]
fn a_vote_counts_if_the_close_has_seen_it_and_changed_votes_count_once() {
    let [ana, ben, cas] = [member(1), member(2), member(3)];
    let mut coop = Coop::found("Votes", &[&ana, &ben, &cas]);
    let mut log = new_log(&coop);
    let everyone = [&ana, &ben, &cas];

    let proposal = propose(
        &mut coop,
        &ben,
        Action::Decision,
        rules(Method::Majority, Fraction::new(1, 3)),
        &everyone,
        &[],
        1,
    );
    accept(&mut log, &[&proposal]);
    // Ben votes no, then changes his mind: the latest counts.
    let ben_no = vote(&mut coop, &ben, &proposal, Choice::No, &[], 2);
    let ben_yes = vote(&mut coop, &ben, &proposal, Choice::Yes, &[], 3);
    // Cas votes no offline: the closer has not seen it when it closes.
    let cas_no = vote(&mut coop, &cas, &proposal, Choice::No, &[], 4);
    accept(&mut log, &[&ben_no, &ben_yes]);

    // Too early: the deadline is 60 minutes after the proposal.
    let early = close(&mut coop, &ana, &proposal, &[&ben_yes], 30);
    refused(offer(&mut log, &early), "open until its deadline");
    // Only the closer (the first founder) closes.
    let not_closer = close(&mut coop, &ben, &proposal, &[&ben_yes], 62);
    refused(offer(&mut log, &not_closer), "only the co-op's closer");

    let closed = close(&mut coop, &ana, &proposal, &[&ben_yes], 62);
    accept(&mut log, &[&closed]);
    // Cas's vote arrives after the close: kept, but not counted.
    accept(&mut log, &[&cas_no]);
    let row = proposal_row(&log, proposal.id());
    assert_eq!(row["status"], "accepted", "{row}");
    assert_eq!(row["tally"]["yes"], 1);
    assert_eq!(row["tally"]["no"], 0);
    assert_eq!(row["tally"]["voted"], 1);
    let late: Vec<&serde_json::Value> = row["votes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|vote| vote["late"] == true)
        .collect();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0]["voter"], did_of(&cas).to_string());

    // A vote stamped after the deadline is refused, whether or not it has
    // seen the close.
    let stamped_late = vote(&mut coop, &cas, &proposal, Choice::Yes, &[], 62);
    refused(offer(&mut log, &stamped_late), "voting on proposal");
    // A vote that has seen the close is refused; so is a second close.
    let after = vote(&mut coop, &cas, &proposal, Choice::Yes, &[&closed], 63);
    refused(offer(&mut log, &after), "is closed");
    let again = close(&mut coop, &ana, &proposal, &[], 64);
    refused(offer(&mut log, &again), "is closed");
    // A stranger's vote is refused.
    let stranger = member(9);
    let strange = vote(&mut coop, &stranger, &proposal, Choice::Yes, &[], 5);
    refused(offer(&mut log, &strange), "electorate");
}

#[test]
fn quorum_and_thresholds_at_their_edges() {
    let ballots = |yes: usize, no: usize, abstain: usize, block: usize| {
        let mut all = Vec::new();
        for (choice, count) in [
            (Choice::Yes, yes),
            (Choice::No, no),
            (Choice::Abstain, abstain),
            (Choice::Block, block),
        ] {
            all.extend(std::iter::repeat_n(
                Ballot {
                    choice,
                    strength: 1,
                },
                count,
            ));
        }
        all
    };
    let outcome = |method, quorum, electorate, votes: Vec<Ballot>| {
        let rules = rules(method, quorum);
        decide(&rules, &tally(&rules, electorate, &votes))
    };
    let half = Fraction::new(1, 2);
    let two_thirds = Fraction::new(2, 3);
    // Quorum 1/2 of 10: 5 voters is enough, 4 is not.
    assert_eq!(
        outcome(Method::Majority, half, 10, ballots(3, 1, 1, 0)),
        Outcome::Accepted
    );
    assert_eq!(
        outcome(Method::Majority, half, 10, ballots(3, 1, 0, 0)),
        Outcome::NoQuorum
    );
    // A tie is not a majority.
    assert_eq!(
        outcome(Method::Majority, half, 4, ballots(2, 2, 0, 0)),
        Outcome::Rejected
    );
    // 2/3 exactly passes; just under does not.
    let supermajority = Method::Supermajority {
        threshold: two_thirds,
    };
    assert_eq!(
        outcome(supermajority, half, 3, ballots(2, 1, 0, 0)),
        Outcome::Accepted
    );
    assert_eq!(
        outcome(supermajority, half, 10, ballots(5, 3, 0, 0)),
        Outcome::Rejected
    );
    // Unanimity: one no sinks it; abstentions do not.
    assert_eq!(
        outcome(
            Method::Unanimous,
            Fraction::new(1, 1),
            3,
            ballots(2, 0, 1, 0)
        ),
        Outcome::Accepted
    );
    assert_eq!(
        outcome(
            Method::Unanimous,
            Fraction::new(1, 1),
            3,
            ballots(2, 1, 0, 0)
        ),
        Outcome::Rejected
    );
    assert_eq!(
        outcome(
            Method::Unanimous,
            Fraction::new(1, 1),
            3,
            ballots(2, 0, 0, 0)
        ),
        Outcome::NoQuorum
    );
    // Consent: no votes are concerns; one block stops it.
    assert_eq!(
        outcome(
            Method::Consent { max_blocks: 0 },
            Fraction::new(0, 1),
            5,
            ballots(1, 3, 0, 0)
        ),
        Outcome::Accepted
    );
    assert_eq!(
        outcome(
            Method::Consent { max_blocks: 0 },
            Fraction::new(0, 1),
            5,
            ballots(4, 0, 0, 1)
        ),
        Outcome::Rejected
    );
    // Consensus with fallback: a block moves the bar to 2/3 of all votes.
    let fallback = Method::ConsensusFallback {
        threshold: two_thirds,
    };
    assert_eq!(
        outcome(fallback, half, 6, ballots(4, 1, 0, 1)),
        Outcome::Accepted
    );
    assert_eq!(
        outcome(fallback, half, 6, ballots(3, 1, 0, 1)),
        Outcome::Rejected
    );
    // Quadratic: strengths are summed.
    let quadratic = rules(Method::Quadratic { credits: 9 }, half);
    let strong = [
        Ballot {
            choice: Choice::Yes,
            strength: 3,
        },
        Ballot {
            choice: Choice::No,
            strength: 1,
        },
        Ballot {
            choice: Choice::No,
            strength: 1,
        },
    ];
    assert_eq!(
        decide(&quadratic, &tally(&quadratic, 3, &strong)),
        Outcome::Accepted
    );
}

#[test]
fn bad_proposals_are_refused_with_a_reason() {
    let [ana, ben] = [member(1), member(2)];
    let mut coop = Coop::found("Bad", &[&ana, &ben]);
    let mut log = new_log(&coop);
    let both = [&ana, &ben];
    let params = |pairs: &[(&str, &str)]| Action::SetParams {
        params: pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    let majority = rules(Method::Majority, Fraction::new(1, 2));

    let unknown = propose(
        &mut coop,
        &ana,
        params(&[("gov.colour", "red")]),
        majority,
        &both,
        &[],
        1,
    );
    refused(offer(&mut log, &unknown), "unknown parameter gov.colour");
    let bad_value = propose(
        &mut coop,
        &ana,
        params(&[("member.vouches", "many")]),
        majority,
        &both,
        &[],
        2,
    );
    refused(
        offer(&mut log, &bad_value),
        "member.vouches is a whole number",
    );
    let bad_floor = propose(
        &mut coop,
        &ana,
        params(&[("ledger.floor", "-x")]),
        majority,
        &both,
        &[],
        3,
    );
    refused(offer(&mut log, &bad_floor), "ledger.floor");
    let charter = Action::Charter {
        section: "purpose".into(),
        text: "Bikes for all.".into(),
    };
    let weak = propose(&mut coop, &ana, charter.clone(), majority, &both, &[], 4);
    refused(
        offer(&mut log, &weak),
        "charter amendment needs at least 2/3",
    );
    let strong = propose(
        &mut coop,
        &ana,
        charter,
        rules(Method::Unanimous, Fraction::new(1, 1)),
        &both,
        &[],
        5,
    );
    accept(&mut log, &[&strong]);
    let short_electorate = propose(&mut coop, &ana, Action::Decision, majority, &[&ana], &[], 6);
    refused(
        offer(&mut log, &short_electorate),
        "electorate must be exactly the 2",
    );
    let too_long = propose(
        &mut coop,
        &ana,
        Action::Decision,
        Rules {
            duration_ms: 91 * DAY_MS,
            ..majority
        },
        &both,
        &[],
        7,
    );
    refused(offer(&mut log, &too_long), "90 days");
    let stranger = member(9);
    let from_stranger = propose(
        &mut coop,
        &stranger,
        Action::Decision,
        majority,
        &both,
        &[],
        8,
    );
    refused(offer(&mut log, &from_stranger), "not a member");
    let block_without_reason = event(
        &mut coop,
        &ben,
        KIND_VOTE,
        encode_body(&Vote {
            proposal: strong.id(),
            choice: Choice::Block,
            reason: " ".into(),
            strength: 1,
        }),
        &[&strong],
        9,
    );
    refused(
        offer(&mut log, &block_without_reason),
        "a block needs a reason",
    );
}

#[test]
fn a_passed_policy_change_takes_effect_for_what_has_seen_it() {
    let [ana, ben] = [member(1), member(2)];
    let mut coop = Coop::found_with("Policy", &[&ana, &ben], &[("ledger.floor", "2")]);
    let mut log = new_log(&coop);
    let both = [&ana, &ben];
    let change = Action::SetParams {
        params: BTreeMap::from([("ledger.floor".to_owned(), "5".to_owned())]),
    };
    let proposal = propose(
        &mut coop,
        &ana,
        change,
        rules(Method::Majority, Fraction::new(1, 2)),
        &both,
        &[],
        1,
    );
    let yes_a = vote(&mut coop, &ana, &proposal, Choice::Yes, &[], 2);
    let yes_b = vote(&mut coop, &ben, &proposal, Choice::Yes, &[], 3);
    let closed = close(&mut coop, &ana, &proposal, &[&yes_b], 61);
    accept(&mut log, &[&proposal, &yes_a, &yes_b, &closed]);
    assert_eq!(proposal_row(&log, proposal.id())["status"], "accepted");
    // Ben pays 4 h: beyond the old floor of 2 h, within the new 5 h, so
    // it counts only if it has seen the close.
    let blind = pay(&mut coop, &ben, &ana, 4 * 60, &[], 62);
    refused(offer(&mut log, &blind), "below the floor");
    let informed = pay(&mut coop, &ben, &ana, 4 * 60, &[&closed], 63);
    accept(&mut log, &[&informed]);
}

/// A budget proposal voted on during a split: the closer's side closes it,
/// the other side keeps voting and trading, and after the heal both sides
/// hold the same views with the budget paid exactly once.
#[test]
fn a_budget_passed_during_a_split_is_paid_once_everywhere() {
    let [ana, ben, cas, dee] = [member(1), member(2), member(3), member(4)];
    let mut coop = Coop::found("Split", &[&ana, &ben, &cas, &dee]);
    let everyone = [&ana, &ben, &cas, &dee];
    let budget = Action::Budget {
        to: did_of(&dee),
        amount: 10 * 60,
        currency: "hours".into(),
        memo: "new tools".into(),
    };
    let proposal = propose(
        &mut coop,
        &ben,
        budget,
        rules(
            Method::Supermajority {
                threshold: Fraction::new(2, 3),
            },
            Fraction::new(1, 2),
        ),
        &everyone,
        &[],
        1,
    );
    // Side A: ana (the closer) and ben. Side B: cas and dee.
    let a1 = vote(&mut coop, &ana, &proposal, Choice::Yes, &[], 2);
    let a2 = vote(&mut coop, &ben, &proposal, Choice::Yes, &[], 3);
    let b1 = vote(&mut coop, &cas, &proposal, Choice::Yes, &[], 4);
    let b2 = vote(&mut coop, &dee, &proposal, Choice::No, &[], 5);
    let closed = close(&mut coop, &ana, &proposal, &[&a2], 61);
    let b_trade = pay(&mut coop, &cas, &dee, 30, &[&b2], 62);
    let side_a = vec![proposal.clone(), a1, a2, closed.clone()];
    let side_b = vec![proposal.clone(), b1, b2, b_trade];

    let mut first = new_log(&coop);
    let mut second = new_log(&coop);
    for event in &side_a {
        offer(&mut first, event);
    }
    for event in &side_b {
        offer(&mut second, event);
    }
    assert_eq!(proposal_row(&first, proposal.id())["status"], "accepted");
    assert_eq!(proposal_row(&second, proposal.id())["status"], "open");
    // Heal, each in the other's order, and deliver everything twice.
    for event in side_b.iter().chain(&side_b) {
        offer(&mut first, event);
    }
    for event in side_a.iter().rev().chain(&side_a) {
        offer(&mut second, event);
    }
    assert_eq!(first.all_rows(), second.all_rows());
    let dee_id = did_of(&dee).to_string();
    assert_eq!(balance(&first, &dee_id), 10 * 60 + 30);
    assert_eq!(balance(&first, "commons"), -10 * 60);
    let row = proposal_row(&second, proposal.id());
    assert_eq!(row["status"], "accepted");
    assert_eq!(
        row["tally"]["voted"], 2,
        "side B's votes reached the closer too late"
    );
}

fn shuffled(events: &[Event], order: &[usize]) -> Vec<Event> {
    let mut indexed: Vec<(usize, &Event)> = order.iter().copied().zip(events).collect();
    indexed.sort_by_key(|(key, _)| *key);
    indexed
        .into_iter()
        .map(|(_, event)| event.clone())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever order the votes, changes of vote, admissions and the close
    /// arrive in, every node ends with the same views.
    #[test]
    fn any_arrival_order_gives_the_same_views(order in proptest::collection::vec(0usize..1000, 16)) {
        let [ana, ben, cas, dee, eve] = [member(1), member(2), member(3), member(4), member(5)];
        let mut coop = Coop::found("Orders", &[&ana, &ben, &cas, &dee]);
        let everyone = [&ana, &ben, &cas, &dee];
        let apply = event(&mut coop, &eve, KIND_APPLY, encode_body(&Apply { name: "Eve".into(), note: String::new() }), &[], 1);
        let v1 = event(&mut coop, &ben, KIND_VOUCH, encode_body(&Vouch { applicant: did_of(&eve), note: String::new() }), &[&apply], 2);
        let v2 = event(&mut coop, &cas, KIND_VOUCH, encode_body(&Vouch { applicant: did_of(&eve), note: String::new() }), &[&apply], 3);
        let admit = event(&mut coop, &dee, KIND_ADMIT, encode_body(&Admit { applicant: did_of(&eve) }), &[&v1, &v2], 4);
        let proposal = propose(&mut coop, &ana, Action::Decision, rules(Method::Majority, Fraction::new(1, 2)), &everyone, &[], 5);
        let votes = [
            vote(&mut coop, &ana, &proposal, Choice::Yes, &[], 6),
            vote(&mut coop, &ben, &proposal, Choice::No, &[], 7),
            vote(&mut coop, &ben, &proposal, Choice::Yes, &[], 8),
            vote(&mut coop, &cas, &proposal, Choice::No, &[], 9),
            vote(&mut coop, &dee, &proposal, Choice::Abstain, &[], 10),
        ];
        let closed = close(&mut coop, &ana, &proposal, &[&votes[2], &votes[3]], 70);
        let late = vote(&mut coop, &dee, &proposal, Choice::No, &[], 11);
        let paid = pay(&mut coop, &ana, &eve, 60, &[&admit], 12);
        let trusted = event(
            &mut coop,
            &ben,
            icn_governance::trust::KIND_EDGE,
            encode_body(&icn_governance::trust::Edge {
                to: did_of(&eve),
                permille: 700,
                class: icn_governance::trust::Class::Known,
                context: icn_governance::trust::TrustContext::Ledger,
                note: String::new(),
            }),
            &[&admit],
            13,
        );
        let paid_back = pay(&mut coop, &eve, &ben, 30, &[&trusted, &paid], 14);
        let mut events = vec![apply, v1, v2, admit, proposal.clone(), closed, late, paid, trusted, paid_back];
        events.extend(votes);

        let mut reference = new_log(&coop);
        for event in &events {
            offer(&mut reference, event);
        }
        // The rows written as events arrive (what the store holds) must
        // end equal to the fold of everything (what a restart computes).
        let (mut other, founded) = Log::new(
            verified(coop.genesis.clone()),
            LogConfig::default(),
            domains(),
        )
        .unwrap();
        let mut written: BTreeMap<(&str, String), Option<String>> = BTreeMap::new();
        let mut write = |rows: Vec<ViewRow>| {
            for row in rows {
                written.insert((row.view, row.key), row.value);
            }
        };
        write(founded.rows);
        for event in shuffled(&events, &order) {
            let mut changes = Changes::default();
            other.ingest(verified(event), at(10_000_000), &mut changes);
            prop_assert!(!changes.rebuilt);
            write(changes.rows);
        }
        let folded: BTreeMap<(&str, String), Option<String>> = other
            .all_rows()
            .into_iter()
            .map(|row| ((row.view, row.key), row.value))
            .collect();
        written.retain(|_, value| value.is_some());
        prop_assert_eq!(&written, &folded);
        prop_assert_eq!(reference.all_rows(), other.all_rows());
        let row = proposal_row(&other, proposal.id());
        prop_assert_eq!(&row["status"], "accepted");
        prop_assert_eq!(&row["tally"]["yes"], 2);
        prop_assert_eq!(&row["tally"]["no"], 1);
    }
}

mod trust {
    use super::*;
    use icn_governance::trust::*;

    fn edge(
        coop: &mut Coop,
        from: &KeyPair,
        to: &KeyPair,
        permille: u16,
        context: TrustContext,
        minute: u64,
    ) -> Event {
        let body = Edge {
            to: did_of(to),
            permille,
            class: Class::Colleague,
            context,
            note: String::new(),
        };
        event(coop, from, KIND_EDGE, encode_body(&body), &[], minute)
    }

    fn graph(log: &Log) -> TrustGraph {
        let pairs = log
            .all_rows()
            .into_iter()
            .filter(|row| row.view == VIEW_TRUST)
            .filter_map(|row| parse_pair(row.value.as_deref().unwrap()));
        TrustGraph::new(TrustParams::default(), pairs)
    }

    const MONTH: u64 = 30 * 24 * 60;

    #[test]
    fn scores_outside_0_to_1_self_trust_and_strangers_are_refused() {
        let [ana, ben] = [member(1), member(2)];
        let mut coop = Coop::found("Trust", &[&ana, &ben]);
        let mut log = new_log(&coop);
        let over = edge(&mut coop, &ana, &ben, 1001, TrustContext::General, 1);
        refused(offer(&mut log, &over), "from 0 to 1");
        let own = edge(&mut coop, &ana, &ana, 500, TrustContext::General, 2);
        refused(offer(&mut log, &own), "oneself");
        let stranger = member(9);
        let strange = edge(&mut coop, &stranger, &ana, 500, TrustContext::General, 3);
        refused(offer(&mut log, &strange), "not a member");
        let to_stranger = edge(&mut coop, &ana, &stranger, 500, TrustContext::General, 4);
        refused(offer(&mut log, &to_stranger), "not a member");
    }

    #[test]
    fn trust_decays_with_inactive_months_and_grows_with_transfers_up_to_the_cap() {
        let [ana, ben, cas] = [member(1), member(2), member(3)];
        let mut coop = Coop::found("Trust", &[&ana, &ben, &cas]);
        let mut log = new_log(&coop);
        let stated = edge(&mut coop, &ana, &ben, 600, TrustContext::General, 0);
        accept(&mut log, &[&stated]);
        let (a, b) = (did_of(&ana), did_of(&ben));
        let score = |log: &Log, minute: u64| {
            graph(log).score(&a, &b, TrustContext::General, at(minute).as_millis())
        };
        assert!((score(&log, 10) - 0.6).abs() < 1e-9);
        // 5 % a month of inactivity, by whole months.
        assert!((score(&log, MONTH - 1) - 0.6).abs() < 1e-9);
        assert!((score(&log, MONTH) - 0.57).abs() < 1e-9);
        assert!((score(&log, 12 * MONTH) - 0.6 * 0.95f64.powi(12)).abs() < 1e-9);
        // Each transfer between them adds 0.05, up to 0.8 and no further,
        // and counts as activity.
        let mut minute = 13 * MONTH;
        for n in 1..=6u64 {
            minute += 1;
            let paid = pay(&mut coop, &ben, &ana, 10, &[], minute);
            accept(&mut log, &[&paid]);
            let expected = (0.6 + 0.05 * n as f64).min(0.8);
            assert!(
                (score(&log, minute) - expected).abs() < 1e-9,
                "after {n}: {}",
                score(&log, minute)
            );
        }
        // Growth does not reach contexts that trading says nothing about.
        assert!(
            (graph(&log).score(&a, &b, TrustContext::Compute, at(minute).as_millis()) - 0.6).abs()
                < 1e-9
        );
        // A stated score above the cap stays.
        let high = edge(
            &mut coop,
            &ana,
            &ben,
            950,
            TrustContext::General,
            minute + 1,
        );
        accept(&mut log, &[&high]);
        assert!((score(&log, minute + 2) - 0.95).abs() < 1e-9);
    }

    #[test]
    fn trust_through_others_is_the_best_product_within_the_depth_and_explains_itself() {
        let keys: Vec<KeyPair> = (1..=6).map(member).collect();
        let refs: Vec<&KeyPair> = keys.iter().collect();
        let mut coop = Coop::found("Chain", &refs);
        let mut log = new_log(&coop);
        // 0 → 1 → 2 → 3 → 4, and a weaker shortcut 0 → 5 → 2.
        let mut events = Vec::new();
        for (from, to, permille) in [
            (0, 1, 900),
            (1, 2, 800),
            (2, 3, 500),
            (3, 4, 900),
            (0, 5, 300),
            (5, 2, 900),
        ] {
            events.push(edge(
                &mut coop,
                &keys[from],
                &keys[to],
                permille,
                TrustContext::General,
                1,
            ));
        }
        for event in &events {
            accept(&mut log, &[event]);
        }
        let graph = graph(&log);
        let now = at(2).as_millis();
        let did = |n: usize| did_of(&keys[n]);
        assert!((graph.score(&did(0), &did(2), TrustContext::General, now) - 0.72).abs() < 1e-9);
        assert!((graph.score(&did(0), &did(3), TrustContext::General, now) - 0.36).abs() < 1e-9);
        // Four hops: beyond the default depth of three.
        assert_eq!(
            graph.score(&did(0), &did(4), TrustContext::General, now),
            0.0
        );
        assert_eq!(
            graph.score(&did(4), &did(0), TrustContext::General, now),
            0.0
        );
        let why = graph.explain(&did(0), &did(3), TrustContext::General, now);
        assert_eq!(why.path, [0, 1, 2, 3].map(|n| did(n).to_string()));
        assert_eq!(why.hops.len(), 3);
        assert_eq!(why.hops[2].stated, Some(0.5));
    }

    #[test]
    fn trust_in_a_member_deepens_their_floor_for_payments_that_have_seen_it() {
        let [ana, ben, cas] = [member(1), member(2), member(3)];
        // Floor 10 h; full trust adds 50 %.
        let mut coop = Coop::found_with(
            "Credit",
            &[&ana, &ben, &cas],
            &[("ledger.floor", "10"), ("ledger.trust_bonus_percent", "50")],
        );
        let mut log = new_log(&coop);
        let by_ana = edge(&mut coop, &ana, &ben, 1000, TrustContext::Ledger, 1);
        let by_cas = edge(&mut coop, &cas, &ben, 1000, TrustContext::General, 2);
        accept(&mut log, &[&by_ana, &by_cas]);
        // 12 h is beyond the plain floor of 10 h, within 15 h.
        let blind = pay(&mut coop, &ben, &ana, 12 * 60, &[], 3);
        refused(offer(&mut log, &blind), "below the floor");
        let informed = pay(&mut coop, &ben, &ana, 12 * 60, &[&by_ana, &by_cas], 4);
        accept(&mut log, &[&informed]);
        let floor = rows_of(&log, VIEW_BALANCE)[&format!("{}/hours", did_of(&ben))]["floor"]
            .as_i64()
            .unwrap();
        assert_eq!(floor, -15 * 60);
    }
}

#[test]
fn a_passed_reversal_compensates_a_payment_once() {
    let [ana, ben, cas] = [member(1), member(2), member(3)];
    let mut coop = Coop::found("Reversal", &[&ana, &ben, &cas]);
    let mut log = new_log(&coop);
    let everyone = [&ana, &ben, &cas];
    let paid = pay(&mut coop, &ben, &cas, 5 * 60, &[], 1);
    accept(&mut log, &[&paid]);
    let majority = rules(Method::Majority, Fraction::new(1, 2));
    let blind = propose(
        &mut coop,
        &ana,
        Action::Reverse { entry: paid.id() },
        majority,
        &everyone,
        &[],
        2,
    );
    refused(offer(&mut log, &blind), "has seen");
    let reverse = |coop: &mut Coop, minute| {
        propose(
            coop,
            &ana,
            Action::Reverse { entry: paid.id() },
            majority,
            &everyone,
            &[&paid],
            minute,
        )
    };
    let (first, second) = (reverse(&mut coop, 3), reverse(&mut coop, 4));
    let mut votes = Vec::new();
    for proposal in [&first, &second] {
        for key in everyone {
            votes.push(vote(&mut coop, key, proposal, Choice::Yes, &[], 5));
        }
    }
    let all: Vec<&Event> = votes.iter().collect();
    let close_first = close(&mut coop, &ana, &first, &all, 70);
    let close_second = close(&mut coop, &ana, &second, &all, 71);
    accept(&mut log, &[&first, &second]);
    accept(&mut log, &all);
    accept(&mut log, &[&close_first, &close_second]);
    assert_eq!(proposal_row(&log, second.id())["status"], "accepted");
    // Reversed once, although two proposals passed.
    assert_eq!(balance(&log, &did_of(&cas).to_string()), 0);
    assert_eq!(balance(&log, &did_of(&ben).to_string()), 0);
}

#[test]
fn a_draft_takes_no_votes_until_its_proposer_opens_it() {
    let [ana, ben] = [member(1), member(2)];
    let mut coop = Coop::found("Drafts", &[&ana, &ben]);
    let mut log = new_log(&coop);
    let mut electorate = vec![did_of(&ana), did_of(&ben)];
    electorate.sort();
    let draft = Propose {
        title: "Paint the door".into(),
        text: String::new(),
        circle: None,
        action: Action::Decision,
        template: "simple-majority".into(),
        rules: rules(Method::Majority, Fraction::new(1, 2)),
        electorate: Vec::new(),
        review_at_ms: None,
        draft: true,
    };
    let named = Propose {
        electorate: electorate.clone(),
        ..draft.clone()
    };
    let bad = event(&mut coop, &ben, KIND_PROPOSE, encode_body(&named), &[], 1);
    refused(offer(&mut log, &bad), "names its electorate when it opens");
    let proposal = event(&mut coop, &ben, KIND_PROPOSE, encode_body(&draft), &[], 2);
    accept(&mut log, &[&proposal]);
    assert_eq!(proposal_row(&log, proposal.id())["status"], "draft");
    let early = vote(&mut coop, &ana, &proposal, Choice::Yes, &[], 3);
    refused(offer(&mut log, &early), "is a draft");
    let not_yours = event(
        &mut coop,
        &ana,
        KIND_OPEN,
        encode_body(&Open {
            proposal: proposal.id(),
            electorate: electorate.clone(),
        }),
        &[&proposal],
        4,
    );
    refused(offer(&mut log, &not_yours), "only the proposer");
    let open = event(
        &mut coop,
        &ben,
        KIND_OPEN,
        encode_body(&Open {
            proposal: proposal.id(),
            electorate,
        }),
        &[],
        10,
    );
    accept(&mut log, &[&open]);
    let yes = vote(&mut coop, &ana, &proposal, Choice::Yes, &[&open], 11);
    accept(&mut log, &[&yes]);
    // The deadline runs from the opening: 60 minutes after minute 10.
    let early_close = close(&mut coop, &ana, &proposal, &[&yes], 65);
    refused(offer(&mut log, &early_close), "open until its deadline");
    let closed = close(&mut coop, &ana, &proposal, &[&yes], 71);
    accept(&mut log, &[&closed]);
    assert_eq!(proposal_row(&log, proposal.id())["status"], "accepted");
}

#[test]
fn roles_come_from_passed_proposals_and_the_latest_holds() {
    let [ana, ben] = [member(1), member(2)];
    let mut coop = Coop::found("Roles", &[&ana, &ben]);
    let mut log = new_log(&coop);
    let both = [&ana, &ben];
    let majority = rules(Method::Majority, Fraction::new(1, 2));
    let roles = |list: &[&str]| Action::SetRoles {
        did: did_of(&ben),
        roles: list.iter().map(|role| role.to_string()).collect(),
    };
    let bad = propose(
        &mut coop,
        &ana,
        roles(&["Treasurer!"]),
        majority,
        &both,
        &[],
        1,
    );
    refused(offer(&mut log, &bad), "a-z, 0-9");
    let mut minute = 2;
    for list in [&["treasurer", "secretary"][..], &["treasurer"][..]] {
        let proposal = propose(&mut coop, &ana, roles(list), majority, &both, &[], minute);
        let yes = vote(&mut coop, &ben, &proposal, Choice::Yes, &[], minute + 1);
        let closed = close(&mut coop, &ana, &proposal, &[&yes], minute + 61);
        accept(&mut log, &[&proposal, &yes, &closed]);
        minute += 100;
    }
    let row = &rows_of(&log, VIEW_MEMBER)[&did_of(&ben).to_string()];
    assert_eq!(row["roles"], serde_json::json!(["treasurer"]));
}

#[test]
fn hidden_results_show_who_voted_but_not_how_until_the_close() {
    let [ana, ben] = [member(1), member(2)];
    let mut coop = Coop::found("Secret", &[&ana, &ben]);
    let mut log = new_log(&coop);
    let hidden = Rules {
        hidden: true,
        ..rules(Method::Majority, Fraction::new(1, 2))
    };
    let proposal = propose(
        &mut coop,
        &ana,
        Action::Decision,
        hidden,
        &[&ana, &ben],
        &[],
        1,
    );
    let yes = vote(&mut coop, &ben, &proposal, Choice::Yes, &[], 2);
    accept(&mut log, &[&proposal, &yes]);
    let row = proposal_row(&log, proposal.id());
    assert_eq!(row["voted"], serde_json::json!([did_of(&ben).to_string()]));
    assert!(row["votes"].is_null() && row["tally"].is_null(), "{row}");
    let closed = close(&mut coop, &ana, &proposal, &[&yes], 61);
    accept(&mut log, &[&closed]);
    let row = proposal_row(&log, proposal.id());
    assert_eq!(row["tally"]["yes"], 1);
    assert_eq!(row["votes"][0]["choice"], "yes");
}

/// Passes `action` with everyone voting yes; returns the close.
fn pass(
    coop: &mut Coop,
    log: &mut Log,
    action: Action,
    electorate: &[&KeyPair],
    minute: u64,
) -> Event {
    let closer = electorate[0];
    let proposal = propose(
        coop,
        closer,
        action,
        rules(Method::Majority, Fraction::new(1, 2)),
        electorate,
        &[],
        minute,
    );
    let votes: Vec<Event> = electorate
        .iter()
        .map(|key| vote(coop, key, &proposal, Choice::Yes, &[], minute + 1))
        .collect();
    let all: Vec<&Event> = votes.iter().collect();
    let closed = close(coop, closer, &proposal, &all, minute + 61);
    accept(log, &[&proposal]);
    accept(log, &all);
    accept(log, &[&closed]);
    assert_eq!(proposal_row(log, proposal.id())["status"], "accepted");
    closed
}

#[test]
fn members_are_added_frozen_unfrozen_and_removed_by_decision() {
    let [ana, ben, cas] = [member(1), member(2), member(3)];
    let mut coop = Coop::found_with(
        "Decisions",
        &[&ana, &ben],
        &[("member.admission", "proposal")],
    );
    let mut log = new_log(&coop);
    let both = [&ana, &ben];
    // Admission by proposal only: vouches do not admit.
    let apply = event(
        &mut coop,
        &cas,
        KIND_APPLY,
        encode_body(&Apply {
            name: "Cas".into(),
            note: String::new(),
        }),
        &[],
        1,
    );
    let vouch = event(
        &mut coop,
        &ben,
        KIND_VOUCH,
        encode_body(&Vouch {
            applicant: did_of(&cas),
            note: String::new(),
        }),
        &[&apply],
        2,
    );
    accept(&mut log, &[&apply, &vouch]);
    let admit = event(
        &mut coop,
        &ana,
        KIND_ADMIT,
        encode_body(&Admit {
            applicant: did_of(&cas),
        }),
        &[&vouch],
        3,
    );
    refused(offer(&mut log, &admit), "by proposal");
    let added = pass(
        &mut coop,
        &mut log,
        Action::AddMember {
            did: did_of(&cas),
            name: "Cas".into(),
            tier: Tier::Full,
        },
        &both,
        10,
    );
    let cas_status = |log: &Log| log.coop_state().member(&did_of(&cas), None).unwrap().status;
    assert_eq!(cas_status(&log), Status::Active);
    // Frozen: cannot pay or vote; unfrozen: can again.
    let everyone = [&ana, &ben, &cas];
    let frozen = pass(
        &mut coop,
        &mut log,
        Action::Freeze { did: did_of(&cas) },
        &everyone,
        100,
    );
    assert_eq!(cas_status(&log), Status::Suspended);
    let frozen_pay = pay(&mut coop, &cas, &ana, 30, &[&frozen, &added], 200);
    refused(offer(&mut log, &frozen_pay), "not an active member");
    // The electorate is the voting members: a suspended member is not in it.
    let unfrozen = pass(
        &mut coop,
        &mut log,
        Action::Unfreeze { did: did_of(&cas) },
        &both,
        300,
    );
    let paid = pay(&mut coop, &cas, &ana, 30, &[&unfrozen], 400);
    accept(&mut log, &[&paid]);
    pass(
        &mut coop,
        &mut log,
        Action::RemoveMember { did: did_of(&cas) },
        &everyone,
        500,
    );
    assert_eq!(cas_status(&log), Status::Exited);
    let gone = pay(&mut coop, &ana, &cas, 30, &[], 700);
    refused(offer(&mut log, &gone), "has left the co-op");
}

#[test]
fn a_circle_decides_its_own_proposals() {
    let [ana, ben, cas] = [member(1), member(2), member(3)];
    let mut coop = Coop::found("Circles", &[&ana, &ben, &cas]);
    let mut log = new_log(&coop);
    let everyone = [&ana, &ben, &cas];
    let created = pass(
        &mut coop,
        &mut log,
        Action::CreateCircle {
            name: "kitchen".into(),
            members: vec![did_of(&ana), did_of(&ben)],
        },
        &everyone,
        1,
    );
    let mut electorate = vec![did_of(&ana), did_of(&ben)];
    electorate.sort();
    let body = Propose {
        title: "New oven".into(),
        text: String::new(),
        circle: Some("kitchen".into()),
        action: Action::Decision,
        template: "simple-majority".into(),
        rules: rules(Method::Majority, Fraction::new(1, 2)),
        electorate: electorate.clone(),
        review_at_ms: None,
        draft: false,
    };
    let outsider = event(
        &mut coop,
        &cas,
        KIND_PROPOSE,
        encode_body(&body),
        &[&created],
        100,
    );
    refused(offer(&mut log, &outsider), "only those who may vote");
    let unknown = Propose {
        circle: Some("garden".into()),
        ..body.clone()
    };
    let nowhere = event(
        &mut coop,
        &ana,
        KIND_PROPOSE,
        encode_body(&unknown),
        &[&created],
        101,
    );
    refused(offer(&mut log, &nowhere), "no circle `garden`");
    let proposal = event(
        &mut coop,
        &ana,
        KIND_PROPOSE,
        encode_body(&body),
        &[&created],
        102,
    );
    accept(&mut log, &[&proposal]);
    let cas_vote = vote(&mut coop, &cas, &proposal, Choice::No, &[], 103);
    refused(offer(&mut log, &cas_vote), "electorate");
    let circles = rows_of(&log, VIEW_CIRCLE);
    assert_eq!(circles["kitchen"]["members"].as_array().unwrap().len(), 2);
}

/// One freeze: a member whose fork a proposal has seen the proof of cannot
/// pay or vote; the co-op's unfreeze lifts it, and the ledger says so.
#[test]
fn a_fork_freeze_stops_paying_and_voting_until_the_coop_lifts_it() {
    let [ana, ben, cas] = [member(1), member(2), member(3)];
    let mut coop = Coop::found("Forks", &[&ana, &ben, &cas]);
    let mut log = new_log(&coop);
    let cas_did = did_of(&cas);
    let (seq, prev) = coop.position(&cas_did);
    // Cas's laptop pays Ana and Ana builds on it; a copy of Cas's data
    // directory pays Ben at the same position, and nobody builds on that.
    let laptop = pay(&mut coop, &cas, &ana, 30, &[], 1);
    let ana_on_it = pay(&mut coop, &ana, &ben, 10, &[&laptop], 2);
    let head = coop.position(&cas_did);
    coop.rewind(cas_did, seq, prev);
    let copy = pay(&mut coop, &cas, &ben, 30, &[], 1);
    coop.rewind(cas_did, head.0, head.1);
    accept(&mut log, &[&laptop, &ana_on_it]);
    assert_eq!(offer(&mut log, &copy), Verdict::Equivocation);
    assert!(log.is_counted(&laptop.id()) && !log.is_counted(&copy.id()));
    let frozen_flag = |log: &Log| {
        rows_of(log, VIEW_BALANCE)[&format!("{cas_did}/hours")]["frozen"]
            .as_bool()
            .unwrap()
    };
    assert!(frozen_flag(&log));

    // A proposal that has not seen the fork cannot unfreeze Cas: she is
    // not frozen as far as it knows.
    let everyone = [&ana, &ben, &cas];
    let blind = propose(
        &mut coop,
        &ben,
        Action::Unfreeze { did: cas_did },
        rules(Method::Majority, Fraction::new(1, 2)),
        &everyone,
        &[],
        3,
    );
    refused(offer(&mut log, &blind), "not frozen");

    // Ana's proposal carries the proof (the copy's entry) among its deps.
    let proposal = propose(
        &mut coop,
        &ana,
        Action::Unfreeze { did: cas_did },
        rules(Method::Majority, Fraction::new(1, 2)),
        &everyone,
        &[&copy],
        4,
    );
    accept(&mut log, &[&proposal]);
    // Cas, having seen it, can neither pay nor vote.
    let frozen_pay = pay(&mut coop, &cas, &ana, 5, &[&proposal], 5);
    refused(offer(&mut log, &frozen_pay), "frozen");
    let frozen_vote = vote(&mut coop, &cas, &proposal, Choice::Yes, &[], 6);
    refused(offer(&mut log, &frozen_vote), "frozen");
    let yes: Vec<Event> = [&ana, &ben]
        .iter()
        .map(|key| vote(&mut coop, key, &proposal, Choice::Yes, &[], 6))
        .collect();
    let refs: Vec<&Event> = yes.iter().collect();
    accept(&mut log, &refs);
    let closed = close(&mut coop, &ana, &proposal, &refs, 70);
    accept(&mut log, &[&closed]);
    assert_eq!(proposal_row(&log, proposal.id())["status"], "accepted");
    assert!(!frozen_flag(&log), "the ledger shows the freeze lifted");
    // Once the lift is in her causal past, Cas pays again, and every node
    // (a replay) agrees.
    let paid = pay(&mut coop, &cas, &ana, 5, &[&closed], 80);
    accept(&mut log, &[&paid]);
    let events = [
        &laptop,
        &ana_on_it,
        &copy,
        &blind,
        &proposal,
        &frozen_pay,
        &frozen_vote,
        &yes[0],
        &yes[1],
        &closed,
        &paid,
    ];
    let mut replayed = new_log(&coop);
    for event in events.iter().rev() {
        offer(&mut replayed, event);
    }
    for event in events {
        offer(&mut replayed, event);
    }
    assert!(
        replayed.is_counted(&paid.id()),
        "{:?}",
        replayed.quarantined(&paid.id())
    );
    assert!(
        replayed.quarantined(&paid.id()).is_none(),
        "{:?}",
        replayed.quarantined(&paid.id())
    );
    assert_eq!(
        rows_of(&replayed, VIEW_BALANCE),
        rows_of(&log, VIEW_BALANCE)
    );
}

/// A co-op founded by one person admits its first applicant with the
/// founder's vouch alone: the vouches needed never exceed the members able
/// to vouch. With two voting members, two are needed again.
#[test]
fn a_coop_of_one_admits_its_first_applicant() {
    let [ana, ben, cas] = [member(1), member(2), member(3)];
    let mut coop = Coop::found("Solo", &[&ana]);
    let mut log = new_log(&coop);
    let apply = |coop: &mut Coop, key: &KeyPair, name: &str, minute| {
        event(
            coop,
            key,
            KIND_APPLY,
            encode_body(&Apply {
                name: name.into(),
                note: String::new(),
            }),
            &[],
            minute,
        )
    };
    let vouch = |coop: &mut Coop, key: &KeyPair, applicant: &Event, minute| {
        event(
            coop,
            key,
            KIND_VOUCH,
            encode_body(&Vouch {
                applicant: applicant.author(),
                note: String::new(),
            }),
            &[applicant],
            minute,
        )
    };
    let admit = |coop: &mut Coop, key: &KeyPair, applicant: &KeyPair, deps: &[&Event], minute| {
        event(
            coop,
            key,
            KIND_ADMIT,
            encode_body(&Admit {
                applicant: did_of(applicant),
            }),
            deps,
            minute,
        )
    };
    let ben_applies = apply(&mut coop, &ben, "Ben", 1);
    let ana_vouches = vouch(&mut coop, &ana, &ben_applies, 2);
    accept(&mut log, &[&ben_applies, &ana_vouches]);
    let ben_admitted = admit(&mut coop, &ana, &ben, &[&ana_vouches], 3);
    accept(&mut log, &[&ben_admitted]);
    assert_eq!(
        log.coop_state().member(&did_of(&ben), None).unwrap().status,
        Status::Active
    );
    // Now two members can vouch, and two vouches are asked for again.
    let cas_applies = apply(&mut coop, &cas, "Cas", 4);
    let one = vouch(&mut coop, &ana, &cas_applies, 5);
    accept(&mut log, &[&cas_applies, &one]);
    let early = admit(&mut coop, &ana, &cas, &[&one, &ben_admitted], 6);
    refused(offer(&mut log, &early), "1 of the 2 vouches");
    // Ben vouches once he knows he was admitted.
    let two = event(
        &mut coop,
        &ben,
        KIND_VOUCH,
        encode_body(&Vouch {
            applicant: did_of(&cas),
            note: String::new(),
        }),
        &[&cas_applies, &ben_admitted],
        7,
    );
    accept(&mut log, &[&two]);
    let cas_admitted = admit(&mut coop, &ben, &cas, &[&one, &two], 8);
    accept(&mut log, &[&cas_admitted]);
}

/// Names that display as another name are refused: direction overrides,
/// zero-width characters and the like.
#[test]
fn a_name_with_invisible_characters_is_refused() {
    let [ana, ben] = [member(1), member(2)];
    let mut coop = Coop::found("Names", &[&ana, &ben]);
    let mut log = new_log(&coop);
    let profile = |coop: &mut Coop, name: &str, minute| {
        event(
            coop,
            &ana,
            KIND_PROFILE,
            encode_body(&Profile {
                name: name.into(),
                skills: vec![],
            }),
            &[],
            minute,
        )
    };
    for (minute, name) in [
        "Ben\u{202E}",
        "B\u{200B}en",
        "\u{2066}Ben\u{2069}",
        "Be\u{00AD}n",
    ]
    .into_iter()
    .enumerate()
    {
        let named = profile(&mut coop, name, minute as u64 + 1);
        refused(offer(&mut log, &named), "invisible characters");
    }
    let fine = profile(&mut coop, "Ana Lopez", 10);
    accept(&mut log, &[&fine]);
}
