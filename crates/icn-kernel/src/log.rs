//! The log: which events count, and the views folded from them.
//!
//! An event *counts* when its signature verifies, its signer was authorised by
//! the author's own chain before it, its prev and deps count, and its domain's
//! rules accept it. Events that cannot be judged yet wait in a bounded pending
//! buffer (a missing prev or dep, or a timestamp too far in the future).
//!
//! Equivocation rule: when two validly signed events share an author and seq
//! (a *fork*), every variant is kept as evidence and exactly one branch
//! counts: **the branch the co-op built on**. A variant's *support* is the
//! set of other authors with a kept event whose causal past holds that
//! variant and no other variant of the fork (they built on it before they
//! could know of the fork). The variant with the most support counts; ties
//! go to the smallest id, and a kept recovery beats them all (whoever holds
//! a lost device cannot undo a recovery by signing at its seq). So a
//! restored stale backup or a copied data directory that signs at a used
//! seq loses to the entry the other members already depend on. The others,
//! and the rest of their branch, are kept (*uncounted*) but never count.
//! Other authors' events that named an uncounted event as a dep still count:
//! the dep only says what their author had seen, and they are judged without
//! it. (Were they voided too, one equivocator would take down every member
//! who had traded with them, and those members' nodes would then re-sign the
//! seqs they lost: more forks.) Domains learn of the fork (the ledger tells
//! the payees of voided entries, and refuses the author's spending once its
//! causal past holds the proof of the fork: a variant that lost).
//!
//! Support depends only on which events are kept, not on which variant
//! counts, so it is a function of the event set: [`Log::replay`] runs a pass
//! with the provisional winners (recovery, else smallest id), computes
//! support, and runs again with the winners it gives until they hold. A new
//! fork, or support that changes a winner, rebuilds the views.
//! Whatever order events arrive in, the same set of events yields the same
//! counted set and views.
//!
//! Every counted event has a causal clock: for each other author, the highest
//! seq in its causal past. Domains validate against it, so a verdict depends
//! only on the event's causal past and every node reaches the same one.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque},
    sync::Arc,
};

use icn_identity::Did;
use serde::{Deserialize, Serialize};

use crate::{
    CoopId, CoopState, Effect, Event, EventId, Genesis, KeyState, Rejection, Source, Timestamp,
    VerifiedEvent, ViewRow,
    domain::{Context, Domain, Fork, key_state_row},
    rules::{
        Freeze, GUARDIANS_MAX, KIND_FREEZE, KIND_GENESIS, KIND_RECOVER, KIND_RECOVERY_APPROVE,
        Recover, RecoveryApprove, decode_body, is_guardian_kind, is_identity_kind,
    },
};

#[derive(Clone, Debug)]
pub struct LogConfig {
    /// An event stamped later than `now + future_skew_max_ms` waits until then.
    pub future_skew_max_ms: u64,
    /// Events waiting for a prev, a dep or their time, at most.
    pub pending_max: usize,
    /// Their encoded bytes, at most.
    pub pending_bytes_max: usize,
    /// Events of one author waiting, at most: one member's flood cannot
    /// fill the buffer for everyone else.
    pub pending_per_author_max: usize,
    /// An event that waited this long for a prev or dep is dropped (sync
    /// offers it again with what it needs).
    pub pending_age_max_ms: u64,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            future_skew_max_ms: 5 * 60 * 1000,
            pending_max: 10_000,
            pending_bytes_max: 32 << 20,
            pending_per_author_max: 1_000,
            pending_age_max_ms: 60 * 60 * 1000,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The event counts; its views are updated.
    Accepted,
    /// Already known (counted, kept as evidence, or pending).
    Duplicate,
    /// Waits for the listed events or for its timestamp to come within reach.
    Pending(PendingReason),
    /// The pending buffer is full; the sender should offer it again later.
    Dropped,
    /// Proves its author signed two events at one seq; kept as evidence.
    Equivocation,
    /// Built on a variant that lost a fork: kept (others may have built on
    /// it) but never counted.
    Voided,
    /// Validly signed and in place in its author's chain, but a rule refuses
    /// it: it keeps its position (so the author's later events can count)
    /// and changes no view. Every node quarantines the same events, because
    /// the verdict depends only on the event's causal past.
    Quarantined(Rejection),
    Rejected(Rejection),
}

/// Whether an event that takes its chain position folds into the views:
/// `Yes` with the author's next key state for an identity event.
enum Applies {
    Yes(Option<KeyState>),
    /// Quarantined.
    No,
}

/// What to do with an event a domain rule refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// A peer's event: keep it in its chain, quarantined.
    Quarantine,
    /// This node's own new event: refuse it, store nothing.
    Refuse,
}

impl Verdict {
    /// Whether the event now holds its place in its author's chain (so
    /// events built on it can be judged).
    pub fn holds_place(&self) -> bool {
        matches!(self, Verdict::Accepted | Verdict::Quarantined(_))
    }

    /// Whether the log now keeps the event (it holds its place, or is kept
    /// as evidence or voided), so events that name it as a dep can be judged.
    pub fn kept(&self) -> bool {
        self.holds_place() || matches!(self, Verdict::Equivocation | Verdict::Voided)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PendingReason {
    Missing(Vec<EventId>),
    Future(Timestamp),
}

/// Two or more events by one author at one seq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub author: Did,
    pub seq: u64,
    pub events: BTreeSet<EventId>,
}

/// What one or more ingests changed, for the store to write in one transaction.
#[derive(Debug, Default)]
pub struct Changes {
    /// New events to store, with whether they count.
    pub stored: Vec<(Event, bool)>,
    /// View rows to upsert (or delete).
    pub rows: Vec<ViewRow>,
    /// Set when the views were rebuilt: the store replaces every view row with
    /// `rows` and sets each event's counted flag from `recount`.
    pub rebuilt: bool,
    pub recount: Vec<(EventId, bool)>,
    pub evidence: Vec<Evidence>,
    /// Every verdict, the released pending events' included, in order.
    pub verdicts: Vec<(EventId, Verdict)>,
}

#[derive(Clone, Debug, Default)]
struct Chain {
    ids: Vec<EventId>,
    /// Where each of `ids` stands in [`Log::kept_order`], so that a peer
    /// behind on this chain is served from there, not from the start.
    positions: Vec<u32>,
    keys: Option<KeyState>,
    /// The seq and causal clock of the author's latest counted
    /// `identity.recover`: guardians' freezes it had seen no longer hold
    /// over the events after it.
    recovered: Option<(u64, Arc<Clock>)>,
}

/// A guardian's counted approval of a recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    pub guardian: Did,
    pub new_key: icn_identity::PublicKey,
    pub id: EventId,
    pub seq: u64,
    pub at: Timestamp,
}

/// A guardian's counted freeze or unfreeze of a member.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct FreezeMark {
    guardian: Did,
    seq: u64,
    frozen: bool,
    /// The last position of the member's chain the guardian had seen.
    seen: u64,
}

/// For each author, the highest seq of theirs in an event's causal past.
pub type Clock = BTreeMap<Did, u64>;

#[derive(Default)]
struct Pending {
    events: BTreeMap<EventId, VerifiedEvent>,
    waiting_on: HashMap<EventId, BTreeSet<EventId>>,
    future: BTreeSet<(Timestamp, EventId)>,
    /// When each event waiting for a prev or dep was parked (the `now` of
    /// its offer), oldest first.
    parked: BTreeSet<(Timestamp, EventId)>,
    parked_at: HashMap<EventId, Timestamp>,
    bytes: usize,
    by_author: HashMap<Did, usize>,
}

impl Pending {
    fn remove(&mut self, id: &EventId) -> Option<VerifiedEvent> {
        let event = self.events.remove(id)?;
        self.future.remove(&(event.timestamp(), *id));
        if let Some(at) = self.parked_at.remove(id) {
            self.parked.remove(&(at, *id));
        }
        self.bytes = self.bytes.saturating_sub(event.event().bytes().len());
        if let Some(count) = self.by_author.get_mut(&event.author()) {
            *count -= 1;
            if *count == 0 {
                self.by_author.remove(&event.author());
            }
        }
        let content = event.content();
        for waited in content.prev.iter().chain(&content.deps) {
            if let Some(waiters) = self.waiting_on.get_mut(waited) {
                waiters.remove(id);
                if waiters.is_empty() {
                    self.waiting_on.remove(waited);
                }
            }
        }
        Some(event)
    }

    /// Drops events that waited longer than `age_max_ms` before `now`.
    fn expire(&mut self, now: Timestamp, age_max_ms: u64) {
        let horizon = Timestamp(now.as_millis().saturating_sub(age_max_ms));
        while let Some(&(at, id)) = self.parked.first() {
            if at >= horizon {
                break;
            }
            self.parked.pop_first();
            self.remove(&id);
        }
    }
}

pub struct Log {
    config: LogConfig,
    genesis: Event,
    genesis_body: Genesis,
    coop: CoopId,
    /// Every event kept: those that count and those kept as evidence.
    events: HashMap<EventId, Event>,
    counted: HashSet<EventId>,
    chains: BTreeMap<Did, Chain>,
    pending: Pending,
    /// Forks: every variant kept at one (author, seq). The smallest id counts.
    evidence: BTreeMap<(Did, u64), BTreeSet<EventId>>,
    /// Each counted event's causal past, other authors only (shared with its
    /// prev's when it has no deps, so memory grows only where deps add news).
    clocks: HashMap<EventId, Arc<Clock>>,
    /// Events in their chain that a rule refused, with the reason.
    quarantined: BTreeMap<EventId, Rejection>,
    /// Every kept event in the order it was kept: each after its prev and
    /// deps. Replication serves peers from it.
    order: Vec<EventId>,
    /// Counts rebuilds, which renumber `order`.
    generation: u64,
    /// Kept events that do not count: fork variants that lost, and events
    /// built on them.
    uncounted: BTreeSet<EventId>,
    /// Set for a log that [`Log::replay`] is building: a new fork then marks
    /// it `stale` (the replay starts over knowing it) instead of rebuilding.
    in_replay: bool,
    stale: bool,
    domains: Vec<Box<dyn Domain>>,
    /// Membership and parameters, from the genesis and domains' effects.
    coop_state: CoopState,
    /// Guardians' counted approvals, by the member they would recover.
    approvals: BTreeMap<Did, Vec<Approval>>,
    /// Guardians' counted freezes and unfreezes, by member.
    freezes: BTreeMap<Did, Vec<FreezeMark>>,
    /// Kept `identity.recover` events (each was checked against its
    /// approvals before it was kept): at a fork, one of them counts rather
    /// than a variant signed by a key it takes over from, so whoever holds
    /// a lost device cannot undo a recovery by signing at its seq.
    preferred: HashSet<EventId>,
    /// Every fork variant, with its slot (author, seq).
    variant_slots: HashMap<EventId, (Did, u64)>,
    /// For each kept event whose causal past (itself included) holds fork
    /// variants, those variants; shared with its prev's when it adds none.
    reach: HashMap<EventId, Arc<BTreeSet<EventId>>>,
    /// For each fork and variant, the other authors who built on that
    /// variant alone.
    support: BTreeMap<(Did, u64), BTreeMap<EventId, BTreeSet<Did>>>,
    /// The variant that counts at each fork in this pass (see the module
    /// docs); a fork missing here uses [`provisional_winner`].
    winners: BTreeMap<(Did, u64), EventId>,
    /// Set when what is known now could change verdicts already given
    /// (support moved a fork's winner, or a guardian's freeze or unfreeze
    /// covers events already judged): the log rebuilds.
    rejudge: bool,
    /// While [`Log::replay`] runs a pass: the freezes the previous pass
    /// counted, which every event of the pass is judged against (a freeze
    /// may arrive after the events it covers; passes repeat until the
    /// freezes counted are the ones assumed).
    freeze_hints: Option<BTreeMap<Did, Vec<FreezeMark>>>,
    /// The guardians' freezes the freeze view holds now, by member (only
    /// members with a freeze holding).
    frozen_rows: BTreeMap<Did, Vec<Did>>,
    /// The co-op's lifts of fork freezes, by member: where each was decided
    /// and the highest fork position it covers.
    lifts: BTreeMap<Did, Vec<(Source, u64)>>,
}

/// The variant of a fork that counts before support is known: a recovery if
/// there is one, else the smallest id.
fn provisional_winner(
    variants: &BTreeSet<EventId>,
    preferred: &HashSet<EventId>,
) -> Option<EventId> {
    variants
        .iter()
        .find(|id| preferred.contains(id))
        .or(variants.first())
        .copied()
}

/// Replay passes at most, to settle which variant of each fork counts. One
/// pass learns the support and a second confirms it; more are needed only if
/// the winners change which events are kept (a key rotated on one branch).
const WINNER_PASSES_MAX: usize = 4;

/// Variants of one event kept as evidence, at most.
pub const EVIDENCE_PER_SLOT_MAX: usize = 4;

#[derive(Serialize)]
struct ChainRow {
    seq: u64,
    head: String,
    forked_at: Option<u64>,
}

fn evidence_row(evidence: &Evidence) -> ViewRow {
    let events: Vec<String> = evidence.events.iter().map(EventId::to_string).collect();
    let value = serde_json::json!({
        "author": evidence.author.to_string(),
        "seq": evidence.seq,
        "events": events,
    });
    ViewRow {
        view: "equivocation",
        key: format!("{}/{}", evidence.author, evidence.seq),
        value: Some(value.to_string()),
    }
}

/// Quarantined events, by author and seq, with the rule's reason.
fn quarantine_row(event: &Event, rejection: &Rejection) -> ViewRow {
    let value = serde_json::json!({
        "id": event.id().to_string(),
        "kind": event.kind().as_str(),
        "time_ms": event.timestamp().as_millis(),
        "reason": rejection.to_string(),
    });
    ViewRow {
        view: VIEW_QUARANTINE,
        key: format!("{}/{:010}", event.author(), event.seq()),
        value: Some(value.to_string()),
    }
}

pub const VIEW_QUARANTINE: &str = "quarantine";

/// Members over whose next event a guardian's freeze holds, by DID: the
/// guardians, as [`FreezeRow`]. Readers answer from it without the log.
pub const VIEW_FREEZE: &str = "freeze";

/// A row of [`VIEW_FREEZE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeRow {
    /// Each guardian whose freeze holds (each lifts only their own).
    pub guardians: Vec<String>,
}

fn freeze_row(member: &Did, guardians: &[Did]) -> ViewRow {
    let value = (!guardians.is_empty()).then(|| {
        let row = FreezeRow {
            guardians: guardians.iter().map(Did::to_string).collect(),
        };
        serde_json::to_string(&row).expect("plain data serialises")
    });
    ViewRow {
        view: VIEW_FREEZE,
        key: member.to_string(),
        value,
    }
}

#[derive(Serialize)]
struct CoopRow<'a> {
    id: String,
    name: &'a str,
    founders: Vec<String>,
    charter: &'a str,
    currencies: &'a [crate::CurrencySpec],
    founded_at_ms: u64,
}

impl Log {
    /// Starts a co-op's log from its genesis event.
    pub fn new(
        genesis: VerifiedEvent,
        config: LogConfig,
        domains: Vec<Box<dyn Domain>>,
    ) -> Result<(Log, Changes), Rejection> {
        let genesis = genesis.into_event();
        let content = genesis.content();
        if content.kind.as_str() != KIND_GENESIS {
            return Err(Rejection::rule("the first event of a co-op is its genesis"));
        }
        if content.scope != CoopId::GENESIS || content.seq != 1 || !content.deps.is_empty() {
            return Err(Rejection::rule(
                "a genesis is its author's first event, with no scope and no deps",
            ));
        }
        if content.signer != content.author.inception_key() {
            return Err(Rejection::UnauthorisedKey {
                author: content.author,
            });
        }
        let genesis_body: Genesis = decode_body(&genesis)?;
        genesis_body.check(content.author)?;
        let mut domains = domains;
        for domain in &mut domains {
            domain.begin(&genesis_body, content.timestamp)?;
        }
        let coop = CoopId::from(genesis.id());
        let coop_state = CoopState::new(
            &genesis_body,
            Source {
                time: content.timestamp,
                author: content.author,
                seq: 0,
            },
        );
        let mut log = Log {
            coop_state,
            config,
            genesis_body,
            coop,
            events: HashMap::new(),
            counted: HashSet::new(),
            chains: BTreeMap::new(),
            pending: Pending::default(),
            evidence: BTreeMap::new(),
            clocks: HashMap::new(),
            quarantined: BTreeMap::new(),
            order: vec![genesis.id()],
            generation: 0,
            uncounted: BTreeSet::new(),
            in_replay: false,
            stale: false,
            domains,
            genesis: genesis.clone(),
            approvals: BTreeMap::new(),
            freezes: BTreeMap::new(),
            preferred: HashSet::new(),
            variant_slots: HashMap::new(),
            reach: HashMap::new(),
            support: BTreeMap::new(),
            winners: BTreeMap::new(),
            rejudge: false,
            freeze_hints: None,
            frozen_rows: BTreeMap::new(),
            lifts: BTreeMap::new(),
        };
        log.clocks.insert(genesis.id(), Arc::default());
        log.counted.insert(genesis.id());
        log.events.insert(genesis.id(), genesis.clone());
        let chain = log.chains.entry(content.author).or_default();
        chain.ids.push(genesis.id());
        chain.positions.push(0);
        let mut changes = Changes::default();
        changes.stored.push((genesis.clone(), true));
        changes.rows = log.all_rows();
        Ok((log, changes))
    }

    /// Rebuilds a log from stored events and the forks known (at start-up, or
    /// after a fork changed what counts). Order does not matter.
    pub fn replay(
        genesis: VerifiedEvent,
        config: LogConfig,
        domains: Vec<Box<dyn Domain>>,
        events: impl IntoIterator<Item = VerifiedEvent>,
        evidence: impl IntoIterator<Item = Evidence>,
        now: Timestamp,
    ) -> Result<(Log, Changes), Rejection> {
        let mut events: Vec<VerifiedEvent> = events.into_iter().collect();
        // Sorting by seq makes most prevs arrive first; it is not needed for correctness.
        events.sort_by_key(|event| (event.seq(), event.id()));
        let mut forks: BTreeMap<(Did, u64), BTreeSet<EventId>> = BTreeMap::new();
        for evidence in evidence {
            forks
                .entry((evidence.author, evidence.seq))
                .or_default()
                .extend(evidence.events);
        }
        // Every recovery given was checked when it was first kept.
        let preferred: HashSet<EventId> = events
            .iter()
            .filter(|event| event.kind().as_str() == KIND_RECOVER)
            .map(|event| event.id())
            .collect();
        let fresh_domains: Vec<Box<dyn Domain>> =
            domains.iter().map(|domain| domain.fresh()).collect();
        let mut domains = Some(domains);
        let mut winners: BTreeMap<(Did, u64), EventId> = BTreeMap::new();
        let mut freezes: BTreeMap<Did, Vec<FreezeMark>> = BTreeMap::new();
        let mut passes = 0;
        loop {
            let domains = domains
                .take()
                .unwrap_or_else(|| fresh_domains.iter().map(|domain| domain.fresh()).collect());
            let (mut log, _) = Log::new(genesis.clone(), config.clone(), domains)?;
            log.set_evidence(forks.clone());
            log.preferred = preferred.clone();
            log.winners = winners.clone();
            log.freeze_hints = Some(freezes.clone());
            log.in_replay = true;
            let mut changes = Changes::default();
            for event in &events {
                log.ingest(event.clone(), now, &mut changes);
                // The result is a full rewrite from the folded state
                // (`all_rows`): the rows each event wrote are not kept.
                changes.rows.clear();
            }
            if log.stale {
                // A fork we did not start with: start again knowing it. Each
                // round knows strictly more forks, so this ends.
                forks = log.evidence.clone();
                winners.clear();
                freezes.clear();
                passes = 0;
                continue;
            }
            // Which variants the support this pass measured makes count, and
            // which guardians' freezes it counted. Both depend (almost) only
            // on which events are kept, so the next pass confirms them.
            passes += 1;
            let decided = log.decided_winners();
            let settled = decided == log.effective_winners() && log.freezes == freezes;
            if !settled && passes < WINNER_PASSES_MAX {
                winners = decided;
                freezes = log.freezes.clone();
                continue;
            }
            log.freeze_hints = None;
            log.frozen_rows = log.freezes_holding();
            log.winners = log.effective_winners();
            log.rejudge = false;
            log.in_replay = false;
            log.announce_forks(&mut changes);
            // Every event given, whether it ended counted, as evidence or
            // waiting: one that was stored as counting may no longer count.
            let mut recount: Vec<(EventId, bool)> = events
                .iter()
                .map(|event| event.id())
                .chain([log.genesis.id()])
                .map(|id| (id, log.counted.contains(&id)))
                .collect();
            recount.sort();
            recount.dedup();
            // A replay is a full rewrite of the views.
            let result = Changes {
                stored: changes.stored,
                evidence: log.evidence().collect(),
                verdicts: changes.verdicts,
                rebuilt: true,
                rows: log.all_rows(),
                recount,
            };
            return Ok((log, result));
        }
    }

    /// Tells the domains about every fork: which variant counts (if any does)
    /// and which were voided.
    fn announce_forks(&mut self, changes: &mut Changes) {
        for ((author, seq), variants) in &self.evidence {
            let counted = variants
                .iter()
                .find(|id| self.counted.contains(id))
                .and_then(|id| self.events.get(id));
            let losers: Vec<EventId> = variants
                .iter()
                .filter(|id| !self.counted.contains(id))
                .copied()
                .collect();
            // The losing variants and every uncounted event of the author
            // built on one of them: all of it never counts.
            let voided: Vec<&Event> = self
                .uncounted
                .iter()
                .filter_map(|id| self.events.get(id))
                .filter(|event| event.author() == *author && event.seq() >= *seq)
                .filter(|event| {
                    self.reach
                        .get(&event.id())
                        .is_some_and(|reach| losers.iter().any(|loser| reach.contains(loser)))
                })
                .collect();
            let fork = Fork {
                author: *author,
                seq: *seq,
                counted,
                voided: &voided,
            };
            for domain in &mut self.domains {
                domain.fork(&fork, &mut changes.rows);
            }
        }
    }

    /// The first seq at which `author` forked their chain, if they did.
    pub fn forked_at(&self, author: &Did) -> Option<u64> {
        self.evidence
            .range((*author, 0)..=(*author, u64::MAX))
            .next()
            .map(|((_, seq), _)| *seq)
    }

    fn set_evidence(&mut self, forks: BTreeMap<(Did, u64), BTreeSet<EventId>>) {
        self.variant_slots = forks
            .iter()
            .flat_map(|(slot, variants)| variants.iter().map(move |id| (*id, *slot)))
            .collect();
        self.evidence = forks;
    }

    /// The variant that counts at a fork, in this pass.
    fn winner_at(&self, slot: &(Did, u64)) -> Option<EventId> {
        self.winners.get(slot).copied().or_else(|| {
            self.evidence
                .get(slot)
                .and_then(|variants| provisional_winner(variants, &self.preferred))
        })
    }

    /// The variant of one fork that the support measured so far makes count:
    /// a kept recovery, else the most support, else the smallest id.
    fn decided_winner(&self, slot: &(Did, u64)) -> Option<EventId> {
        let variants = self.evidence.get(slot)?;
        if let Some(recovery) = variants.iter().find(|id| self.preferred.contains(id)) {
            return Some(*recovery);
        }
        let support = self.support.get(slot);
        let backers = |id: &EventId| {
            support
                .and_then(|support| support.get(id))
                .map_or(0, BTreeSet::len)
        };
        // Most support first; among equals the smallest id (`max_by_key`
        // keeps the last maximum, so walk the ids from the largest).
        variants.iter().rev().max_by_key(|id| backers(id)).copied()
    }

    fn decided_winners(&self) -> BTreeMap<(Did, u64), EventId> {
        self.evidence
            .keys()
            .filter_map(|slot| Some((*slot, self.decided_winner(slot)?)))
            .collect()
    }

    fn effective_winners(&self) -> BTreeMap<(Did, u64), EventId> {
        self.evidence
            .keys()
            .filter_map(|slot| Some((*slot, self.winner_at(slot)?)))
            .collect()
    }

    /// The fork variants in the causal past of an event with this content
    /// (itself included when `id` is a variant).
    fn reach_for(
        &self,
        id: EventId,
        content: &crate::EventContent,
    ) -> Option<Arc<BTreeSet<EventId>>> {
        let mut reach: Option<Arc<BTreeSet<EventId>>> = None;
        for parent in content.prev.iter().chain(&content.deps) {
            let Some(theirs) = self.reach.get(parent) else {
                continue;
            };
            match &reach {
                None => reach = Some(theirs.clone()),
                Some(ours) if Arc::ptr_eq(ours, theirs) || theirs.is_subset(ours) => {}
                Some(ours) => {
                    let mut merged = BTreeSet::clone(ours);
                    merged.extend(theirs.iter().copied());
                    reach = Some(Arc::new(merged));
                }
            }
        }
        if self.variant_slots.contains_key(&id) {
            let mut with_self = reach
                .map(|reach| BTreeSet::clone(&reach))
                .unwrap_or_default();
            with_self.insert(id);
            reach = Some(Arc::new(with_self));
        }
        reach
    }

    /// Records a newly kept event's reach and the support it gives; marks
    /// the winners stale if that support changes which variant counts.
    fn note_kept(&mut self, event: &Event, reach: Option<Arc<BTreeSet<EventId>>>, supports: bool) {
        let id = event.id();
        let Some(reach) = reach else {
            return;
        };
        let author = event.author();
        if !supports {
            self.reach.insert(id, reach);
            return;
        }
        // An event that adds nothing to its prev's reach gives no support
        // its prev (same author) did not already give.
        let same_as_prev = event
            .content()
            .prev
            .and_then(|prev| self.reach.get(&prev))
            .is_some_and(|prev_reach| Arc::ptr_eq(prev_reach, &reach));
        if !same_as_prev {
            let mut by_slot: BTreeMap<(Did, u64), Vec<EventId>> = BTreeMap::new();
            for variant in reach.iter() {
                if let Some(slot) = self.variant_slots.get(variant)
                    && slot.0 != author
                {
                    by_slot.entry(*slot).or_default().push(*variant);
                }
            }
            for (slot, variants) in by_slot {
                if let [only] = variants[..] {
                    let added = self
                        .support
                        .entry(slot)
                        .or_default()
                        .entry(only)
                        .or_default()
                        .insert(author);
                    if added && self.decided_winner(&slot) != self.winner_at(&slot) {
                        self.rejudge = true;
                    }
                }
            }
        }
        self.reach.insert(id, reach);
    }

    /// The authors whose fork `reach` (an event's causal past) proves, with
    /// the highest position proven: it holds a variant of theirs that lost.
    fn forks_proven(&self, reach: Option<&BTreeSet<EventId>>) -> BTreeMap<Did, u64> {
        let mut proven = BTreeMap::new();
        for variant in reach.into_iter().flatten() {
            if let Some(slot) = self.variant_slots.get(variant)
                && self.winner_at(slot) != Some(*variant)
            {
                let seq = proven.entry(slot.0).or_insert(slot.1);
                *seq = (*seq).max(slot.1);
            }
        }
        proven
    }

    /// Refuses an event of an author whose fork its causal past proves,
    /// unless the co-op lifted that freeze in its causal past. Identity
    /// events are never frozen: a member whose key was copied must still be
    /// able to revoke it.
    fn check_fork_freeze(
        &self,
        content: &crate::EventContent,
        clock: &Clock,
        forks_proven: &BTreeMap<Did, u64>,
    ) -> Result<(), Rejection> {
        let author = content.author;
        let Some(&seq) = forks_proven.get(&author) else {
            return Ok(());
        };
        if is_identity_kind(&content.kind) {
            return Ok(());
        }
        let past = crate::coop::Past {
            author: &author,
            seq: content.seq,
            clock,
        };
        let lifted = self.lifts.get(&author).is_some_and(|lifts| {
            lifts
                .iter()
                .any(|(source, through)| *through >= seq && past.contains(source))
        });
        if lifted {
            return Ok(());
        }
        Err(Rejection::rule(format!(
            "{author} is frozen: they signed two different entries at position {seq}; \
             the co-op lifts it by vote (governance propose --unfreeze)"
        )))
    }

    /// The causal clock of a counted event: for each author other than its
    /// own, the highest seq in its causal past.
    pub fn clock(&self, id: &EventId) -> Option<&Clock> {
        self.clocks.get(id).map(|clock| clock.as_ref())
    }

    pub fn coop(&self) -> CoopId {
        self.coop
    }

    pub fn genesis(&self) -> &Event {
        &self.genesis
    }

    pub fn genesis_body(&self) -> &Genesis {
        &self.genesis_body
    }

    /// Events that count, the genesis included.
    pub fn counted_len(&self) -> usize {
        self.counted.len()
    }

    pub fn pending_len(&self) -> usize {
        self.pending.events.len()
    }

    /// Whether the event holds its place in its chain (applied or
    /// quarantined).
    pub fn is_counted(&self, id: &EventId) -> bool {
        self.counted.contains(id)
    }

    /// Why a rule refused an event that holds its place in its chain.
    pub fn quarantined(&self, id: &EventId) -> Option<&Rejection> {
        self.quarantined.get(id)
    }

    pub fn get(&self, id: &EventId) -> Option<&Event> {
        self.events.get(id)
    }

    pub fn evidence(&self) -> impl Iterator<Item = Evidence> + '_ {
        self.evidence
            .iter()
            .map(|((author, seq), events)| Evidence {
                author: *author,
                seq: *seq,
                events: events.clone(),
            })
    }

    /// Every event this log keeps (those holding a place in their chain and
    /// those kept as evidence of a fork), in the order it kept them: each
    /// after its prev and deps. Starts with the genesis. Only appended to,
    /// except by a rebuild after a fork, which changes [`Log::generation`].
    pub fn kept_order(&self) -> &[EventId] {
        &self.order
    }

    /// Changes whenever [`Log::kept_order`] is renumbered.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The id at `seq` in `author`'s counted chain.
    pub fn chain_id(&self, author: &Did, seq: u64) -> Option<EventId> {
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.chains.get(author)?.ids.get(index).copied()
    }

    /// Where the event at `seq` in `author`'s counted chain stands in
    /// [`Log::kept_order`].
    pub fn chain_position(&self, author: &Did, seq: u64) -> Option<usize> {
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        let position = *self.chains.get(author)?.positions.get(index)?;
        usize::try_from(position).ok()
    }

    /// Kept events that do not count: variants that lost a fork and
    /// events built on them.
    pub fn uncounted(&self) -> &BTreeSet<EventId> {
        &self.uncounted
    }

    /// Deps for `author`'s next event: the heads of other authors that its
    /// causal past lacks (at most [`crate::DEPS_MAX`]), so that what the
    /// author has seen is in the causal past of what they sign.
    pub fn unseen_heads(&self, author: &Did) -> Vec<EventId> {
        let (_, prev) = self.next_position(author);
        let empty = Clock::new();
        let known = prev.and_then(|prev| self.clock(&prev)).unwrap_or(&empty);
        // First the proof of every fork its causal past lacks (a variant that
        // lost): whoever builds on it has seen the fork, which freezes the
        // equivocator's spending and settles which variant the co-op built on.
        let no_reach = BTreeSet::new();
        let reach = prev
            .and_then(|prev| self.reach.get(&prev))
            .map_or(&no_reach, |reach| reach.as_ref());
        let proofs = self.evidence.iter().flat_map(|(slot, variants)| {
            let winner = self.winner_at(slot);
            variants
                .iter()
                .filter(move |variant| Some(**variant) != winner && !reach.contains(variant))
                .copied()
        });
        let heads = self
            .chains
            .iter()
            .filter(|(other, chain)| {
                *other != author
                    && known
                        .get(other)
                        .is_none_or(|seen| (*seen as usize) < chain.ids.len())
            })
            .filter_map(|(_, chain)| chain.ids.last().copied());
        // At most half the deps are proofs: the rest are heads, so what a
        // node signs still reaches the winning variants (and supports no
        // losing one).
        let mut deps: Vec<EventId> = proofs.take(crate::DEPS_MAX / 2).collect();
        let room = crate::DEPS_MAX - deps.len();
        deps.extend(heads.take(room));
        deps.sort();
        deps.dedup();
        deps
    }

    /// The next seq and prev for a new event by `author`.
    pub fn next_position(&self, author: &Did) -> (u64, Option<EventId>) {
        match self.chains.get(author) {
            Some(chain) => (chain.ids.len() as u64 + 1, chain.ids.last().copied()),
            None => (1, None),
        }
    }

    /// The keys that may sign `author`'s next event.
    pub fn key_state(&self, author: &Did) -> KeyState {
        self.chains
            .get(author)
            .and_then(|chain| chain.keys.clone())
            .unwrap_or_else(|| KeyState::inception(*author))
    }

    /// Per-author heads of the counted chains: author → (seq, id).
    pub fn heads(&self) -> BTreeMap<Did, (u64, EventId)> {
        self.chains
            .iter()
            .filter_map(|(author, chain)| {
                chain
                    .ids
                    .last()
                    .map(|id| (*author, (chain.ids.len() as u64, *id)))
            })
            .collect()
    }

    /// Offers one event from a peer (or the store). Events it releases from
    /// the pending buffer are ingested too; every verdict is appended to
    /// `changes.verdicts`. An event a domain rule refuses is quarantined.
    pub fn ingest(
        &mut self,
        event: VerifiedEvent,
        now: Timestamp,
        changes: &mut Changes,
    ) -> Verdict {
        self.ingest_as(event, now, changes, Refused::Quarantine)
    }

    /// Offers an event this node has just signed: one a rule refuses is
    /// [`Verdict::Rejected`] and nothing is stored, so a refused payment never
    /// takes a place in the member's chain.
    pub fn ingest_own(
        &mut self,
        event: VerifiedEvent,
        now: Timestamp,
        changes: &mut Changes,
    ) -> Verdict {
        self.ingest_as(event, now, changes, Refused::Refuse)
    }

    fn ingest_as(
        &mut self,
        event: VerifiedEvent,
        now: Timestamp,
        changes: &mut Changes,
        refused: Refused,
    ) -> Verdict {
        let id = event.id();
        let verdict = self.offer(event, now, changes, refused);
        changes.verdicts.push((id, verdict.clone()));
        if verdict.kept() && !self.must_rejudge() {
            self.release_waiters(id, now, changes);
        }
        if self.must_rejudge() {
            // What is known now changes verdicts already given (support moved
            // a fork's winner, or a freeze covers events already judged):
            // judge everything again. The replay takes the pending events
            // too, so none is judged against the state this replaces.
            self.rebuild(now, changes);
        }
        verdict
    }

    /// Offers again the events whose time has come.
    pub fn tick(&mut self, now: Timestamp, changes: &mut Changes) {
        let horizon = now.saturating_add_ms(self.config.future_skew_max_ms);
        let due: Vec<EventId> = self
            .pending
            .future
            .iter()
            .take_while(|(at, _)| *at <= horizon)
            .map(|(_, id)| *id)
            .collect();
        for id in due {
            if let Some(event) = self.pending.remove(&id) {
                self.ingest(event, now, changes);
            }
        }
    }

    /// Whether verdicts must be given again now (never inside a replay,
    /// which settles them in passes).
    fn must_rejudge(&self) -> bool {
        self.rejudge && !self.replaying()
    }

    fn release_waiters(&mut self, first: EventId, now: Timestamp, changes: &mut Changes) {
        let mut ready = VecDeque::from([first]);
        while let Some(id) = ready.pop_front() {
            if self.must_rejudge() {
                // Stop here: the rebuild judges what still waits.
                return;
            }
            let Some(waiters) = self.pending.waiting_on.remove(&id) else {
                continue;
            };
            for waiter in waiters {
                if self.must_rejudge() {
                    // The rest still waits in `pending`; the rebuild takes it.
                    return;
                }
                let Some(event) = self.pending.remove(&waiter) else {
                    continue;
                };
                let verdict = self.offer(event, now, changes, Refused::Quarantine);
                changes.verdicts.push((waiter, verdict.clone()));
                if verdict.kept() {
                    ready.push_back(waiter);
                }
            }
        }
    }

    fn park(&mut self, event: VerifiedEvent, reason: PendingReason, now: Timestamp) -> Verdict {
        self.pending.expire(now, self.config.pending_age_max_ms);
        let author = event.author();
        let bytes = event.event().bytes().len();
        // A replay reorders stored events through this buffer: no limit
        // applies there (its events were all kept once), or a restart could
        // drop a chain.
        let full = self.pending.events.len() >= self.config.pending_max
            || self.pending.bytes + bytes > self.config.pending_bytes_max
            || self.pending.by_author.get(&author).copied().unwrap_or(0)
                >= self.config.pending_per_author_max;
        // Waiting is for members' events (and an applicant's first): a
        // stranger's later events cannot count before their first one.
        let unknown_author = !self.chains.contains_key(&author)
            && event.seq() > 1
            && self.coop_state.member(&author, None).is_none();
        if (full || unknown_author) && !self.replaying() {
            return Verdict::Dropped;
        }
        let id = event.id();
        self.pending.bytes += bytes;
        *self.pending.by_author.entry(author).or_default() += 1;
        match &reason {
            PendingReason::Missing(missing) => {
                for waited in missing {
                    self.pending
                        .waiting_on
                        .entry(*waited)
                        .or_default()
                        .insert(id);
                }
                self.pending.parked.insert((now, id));
                self.pending.parked_at.insert(id, now);
            }
            PendingReason::Future(at) => {
                self.pending.future.insert((*at, id));
            }
        }
        self.pending.events.insert(id, event);
        Verdict::Pending(reason)
    }

    fn offer(
        &mut self,
        event: VerifiedEvent,
        now: Timestamp,
        changes: &mut Changes,
        refused: Refused,
    ) -> Verdict {
        let id = event.id();
        if self.events.contains_key(&id) || self.pending.events.contains_key(&id) {
            return Verdict::Duplicate;
        }
        let content = event.content().clone();
        if content.kind.as_str() == KIND_GENESIS {
            return Verdict::Rejected(Rejection::SecondGenesis);
        }
        if content.scope != self.coop {
            return Verdict::Rejected(Rejection::WrongScope);
        }
        if content.timestamp > now.saturating_add_ms(self.config.future_skew_max_ms) {
            return self.park(event, PendingReason::Future(content.timestamp), now);
        }
        // Deps need only be kept: one voided by a fork still names what the
        // author had seen, and counts for nothing in the causal past.
        let missing: Vec<EventId> = content
            .prev
            .iter()
            .chain(&content.deps)
            .filter(|needed| !self.events.contains_key(needed))
            .copied()
            .collect();
        if !missing.is_empty() {
            // Its prev is here and counts, so its signer can be checked now:
            // an unauthorised key is refused before it takes buffer space.
            let author = content.author;
            if let Some(prev) = content.prev
                && self.counted.contains(&prev)
                && self.chain_id(&author, content.seq - 1) == Some(prev)
                && self.next_position(&author).0 == content.seq
                && content.kind.as_str() != KIND_RECOVER
                && !self.key_state(&author).authorises(&content.signer)
            {
                return Verdict::Rejected(Rejection::UnauthorisedKey { author });
            }
            return self.park(event, PendingReason::Missing(missing), now);
        }
        let author = content.author;
        let seq = content.seq;
        if let Some(prev) = content.prev {
            let prev_event = &self.events[&prev];
            if prev_event.author() != author || prev_event.seq() + 1 != seq {
                return Verdict::Rejected(Rejection::BadPrev);
            }
            if content.timestamp < prev_event.timestamp() {
                return Verdict::Rejected(Rejection::TimestampBeforePrev);
            }
            if !self.counted.contains(&prev) {
                return self.offer_voided(event, changes);
            }
        }
        // Read only what is needed: cloning the chain would copy every id in it.
        let (chain_len, counted_at_seq) = match self.chains.get(&author) {
            Some(chain) => (chain.ids.len(), chain.ids.get(seq as usize - 1).copied()),
            None => (0, None),
        };
        // Its prev counts, so a seq at or below the chain's length means a
        // second event at one position; at a known fork, only the smallest id
        // may count.
        let known_fork_winner = self.winner_at(&(author, seq));
        if (seq as usize) <= chain_len || known_fork_winner.is_some_and(|winner| winner != id) {
            return self.offer_conflict(event, counted_at_seq, now, changes);
        }
        let keys = self.key_state(&author);
        let recovery = content.kind.as_str() == KIND_RECOVER;
        if !recovery && !keys.authorises(&content.signer) {
            return Verdict::Rejected(Rejection::UnauthorisedKey { author });
        }
        let clock = self.causal_clock(&content);
        // A recovery is signed by a key the chain has not authorised: it is
        // refused outright unless its approvals hold, or a stranger could
        // take the member's next seq.
        if recovery && let Err(rejection) = self.check_recovery(&event, &keys, &clock) {
            return Verdict::Rejected(rejection);
        }
        let reach = self.reach_for(id, &content);
        let forks_proven = self.forks_proven(reach.as_deref());
        let judged = if let Some(guardian) = self.frozen_by(&author, seq, &clock)
            && !recovery
        {
            Err(Rejection::rule(format!(
                "{author} is frozen by their guardian {guardian}: a guardian unfreezes it, or a recovery gives it a new key"
            )))
        } else if let Err(rejection) = self.check_fork_freeze(&content, &clock, &forks_proven) {
            Err(rejection)
        } else if is_identity_kind(&content.kind) {
            self.check_guardian_event(&event, &clock)
                .and_then(|()| keys.after(&event))
                .map(Some)
        } else {
            match self
                .domains
                .iter()
                .find(|domain| domain.name() == content.kind.domain())
            {
                // A kind this build does not know (a newer peer's, perhaps).
                None => Err(Rejection::UnknownKind {
                    kind: content.kind.clone(),
                }),
                Some(domain) => {
                    let context = Context {
                        genesis: &self.genesis_body,
                        author: &author,
                        seq,
                        author_keys: &keys,
                        clock: &clock,
                        forks_proven: &forks_proven,
                        coop: &self.coop_state,
                    };
                    domain.validate(&event, &context).map(|()| None)
                }
            }
        };
        match judged {
            Err(rejection) if refused == Refused::Refuse => Verdict::Rejected(rejection),
            Ok(next_keys) => {
                self.clocks.insert(id, clock);
                self.count(event.into_event(), Applies::Yes(next_keys), reach, changes);
                Verdict::Accepted
            }
            Err(rejection) => {
                self.clocks.insert(id, clock);
                self.quarantined.insert(id, rejection.clone());
                changes.rows.push(quarantine_row(event.event(), &rejection));
                self.count(event.into_event(), Applies::No, reach, changes);
                Verdict::Quarantined(rejection)
            }
        }
    }

    /// Other authors' seqs in the causal past of an event whose prev and
    /// deps count: prev's clock, merged with each dep and its clock.
    fn causal_clock(&self, content: &crate::EventContent) -> Arc<Clock> {
        let from_prev = content
            .prev
            .and_then(|prev| self.clocks.get(&prev).cloned())
            .unwrap_or_default();
        if content.deps.is_empty() {
            return from_prev;
        }
        let mut clock = Clock::clone(&from_prev);
        for dep in content.deps.iter().filter(|dep| self.counted.contains(dep)) {
            let event = &self.events[dep];
            if let Some(dep_clock) = self.clocks.get(dep) {
                for (author, seq) in dep_clock.iter() {
                    let entry = clock.entry(*author).or_default();
                    *entry = (*entry).max(*seq);
                }
            }
            let entry = clock.entry(event.author()).or_default();
            *entry = (*entry).max(event.seq());
        }
        clock.remove(&content.author);
        Arc::new(clock)
    }

    /// Records that `event` (whose fork `reach` `offer` computed) takes its
    /// place in its chain and, unless it is quarantined, folds it into the
    /// views.
    fn count(
        &mut self,
        event: Event,
        applies: Applies,
        reach: Option<Arc<BTreeSet<EventId>>>,
        changes: &mut Changes,
    ) {
        let author = event.author();
        if reach.is_some() {
            // Support for a fork's variant comes only from members (as far
            // as the event knows): throwaway identities cannot pick a winner.
            let empty = Clock::new();
            let past = crate::coop::Past {
                author: &author,
                seq: event.seq(),
                clock: self
                    .clocks
                    .get(&event.id())
                    .map_or(&empty, |clock| clock.as_ref()),
            };
            let supports = self
                .coop_state
                .member(&author, Some(past))
                .is_some_and(|membership| membership.status != crate::Status::Exited);
            self.note_kept(&event, reach, supports);
        }
        let position = u32::try_from(self.order.len()).expect("fewer than 2^32 events kept");
        let chain = self.chains.entry(author).or_default();
        chain.ids.push(event.id());
        // Pushed to `order` below, with nothing kept in between.
        chain.positions.push(position);
        match applies {
            // In its place in the chain, folded into no view.
            Applies::No => {}
            Applies::Yes(Some(keys)) => {
                changes.rows.push(key_state_row(&author, &keys));
                chain.keys = Some(keys);
                self.note_identity(&event);
            }
            Applies::Yes(None) => self.apply(&event, &mut changes.rows),
        }
        changes.rows.push(self.chain_row(&author));
        self.counted.insert(event.id());
        self.order.push(event.id());
        self.events.insert(event.id(), event.clone());
        changes.stored.push((event, true));
        self.note_freezes(&mut changes.rows);
    }

    /// Every member over whose next event a guardian's freeze holds, with
    /// those guardians.
    fn freezes_holding(&self) -> BTreeMap<Did, Vec<Did>> {
        self.freezes
            .keys()
            .map(|member| (*member, self.frozen_by_guardians(member)))
            .filter(|(_, guardians)| !guardians.is_empty())
            .collect()
    }

    /// Keeps the freeze view current. Whether a freeze holds can change
    /// with any counted event, so it is looked at after each, for the
    /// members a guardian ever froze (almost always none). A replay writes
    /// the whole view at its end instead.
    fn note_freezes(&mut self, rows: &mut Vec<ViewRow>) {
        if self.in_replay || self.freezes.is_empty() {
            return;
        }
        let now = self.freezes_holding();
        if now == self.frozen_rows {
            return;
        }
        for member in self.frozen_rows.keys() {
            if !now.contains_key(member) {
                rows.push(freeze_row(member, &[]));
            }
        }
        for (member, guardians) in &now {
            if self.frozen_rows.get(member) != Some(guardians) {
                rows.push(freeze_row(member, guardians));
            }
        }
        self.frozen_rows = now;
    }

    /// Folds a counted event of a domain: its own domain applies it (in the
    /// context it was validated in), the others observe it, and every domain
    /// hears of its effects.
    fn apply(&mut self, event: &Event, rows: &mut Vec<ViewRow>) {
        let author = event.author();
        let keys = self.key_state(&author);
        let forks_proven = self.forks_proven(self.reach.get(&event.id()).map(|r| r.as_ref()));
        let clock = self.clocks.get(&event.id()).cloned().unwrap_or_default();
        let context = Context {
            genesis: &self.genesis_body,
            author: &author,
            seq: event.seq(),
            author_keys: &keys,
            clock: &clock,
            forks_proven: &forks_proven,
            coop: &self.coop_state,
        };
        let mut effects = Vec::new();
        for domain in &mut self.domains {
            if domain.name() == event.kind().domain() {
                effects = domain.apply(event, &context, rows);
            } else {
                domain.observe(event, rows);
            }
        }
        let source = Source {
            time: event.timestamp(),
            author,
            seq: event.seq(),
        };
        for effect in &effects {
            if let Effect::Unfreeze { did, through_seq } = effect {
                self.lifts
                    .entry(*did)
                    .or_default()
                    .push((source, *through_seq));
            }
            self.coop_state.apply(source, effect);
            for domain in &mut self.domains {
                domain.effect(event, effect, &self.coop_state, rows);
            }
        }
    }

    /// Membership and parameters.
    pub fn coop_state(&self) -> &CoopState {
        &self.coop_state
    }

    /// A second validly signed event at a seq that already has one, or a
    /// variant at a known fork that is not its winner.
    fn offer_conflict(
        &mut self,
        event: VerifiedEvent,
        counted_at_seq: Option<EventId>,
        now: Timestamp,
        changes: &mut Changes,
    ) -> Verdict {
        let content = event.content().clone();
        let seq = content.seq;
        let keys = self.keys_before(&content.author, seq);
        if content.kind.as_str() == KIND_RECOVER {
            let clock = self.causal_clock(&content);
            if let Err(rejection) = self.check_recovery(&event, &keys, &clock) {
                return Verdict::Rejected(rejection);
            }
            self.preferred.insert(event.id());
        } else if !keys.authorises(&content.signer) {
            return Verdict::Rejected(Rejection::UnauthorisedKey {
                author: content.author,
            });
        }
        let slot_key = (content.author, seq);
        let slot = self.evidence.entry(slot_key).or_default();
        if slot.len() >= EVIDENCE_PER_SLOT_MAX && !slot.contains(&event.id()) {
            // Enough to prove it; more variants would only fill the disk.
            return Verdict::Dropped;
        }
        let mut new_variant = false;
        if let Some(counted) = counted_at_seq {
            new_variant |= slot.insert(counted);
        }
        new_variant |= slot.insert(event.id());
        let evidence = Evidence {
            author: content.author,
            seq,
            events: slot.clone(),
        };
        for variant in &evidence.events {
            self.variant_slots.insert(*variant, slot_key);
        }
        let event = event.into_event();
        let reach = self.reach_for(event.id(), event.content());
        self.note_kept(&event, reach, false);
        self.events.insert(event.id(), event.clone());
        self.order.push(event.id());
        self.uncounted.insert(event.id());
        changes.stored.push((event, false));
        changes.rows.push(evidence_row(&evidence));
        changes.evidence.push(evidence);
        // A new variant changes the reach of everything built on the ones
        // already kept, and so the support: rebuild (forks are rare).
        if new_variant {
            if self.replaying() {
                self.stale = true;
            } else {
                self.rebuild(now, changes);
            }
        }
        Verdict::Equivocation
    }

    /// An event whose prev lost a fork (or was itself voided). It is kept,
    /// so that whatever others built on it can be judged (without it), but
    /// it never counts.
    fn offer_voided(&mut self, event: VerifiedEvent, changes: &mut Changes) -> Verdict {
        let content = event.content();
        let keys = self.keys_before(&content.author, content.seq);
        let recovery_key = content.kind.as_str() == KIND_RECOVER
            && decode_body::<Recover>(event.event())
                .is_ok_and(|body| body.new_key == content.signer && keys.guardians.is_some());
        if !keys.authorises(&content.signer) && !recovery_key {
            return Verdict::Rejected(Rejection::UnauthorisedKey {
                author: content.author,
            });
        }
        let event = event.into_event();
        let reach = self.reach_for(event.id(), event.content());
        self.note_kept(&event, reach, false);
        self.events.insert(event.id(), event.clone());
        self.order.push(event.id());
        self.uncounted.insert(event.id());
        changes.stored.push((event, false));
        Verdict::Voided
    }

    /// Whether this log is being built by [`Log::replay`] (which handles new
    /// forks by starting over, not by rebuilding from inside).
    fn replaying(&self) -> bool {
        self.in_replay
    }

    /// The author's key state just before `seq`, from the counted chain.
    fn keys_before(&self, author: &Did, seq: u64) -> KeyState {
        let mut keys = KeyState::inception(*author);
        if let Some(chain) = self.chains.get(author) {
            for id in chain.ids.iter().take(seq.saturating_sub(1) as usize) {
                let event = &self.events[id];
                if is_identity_kind(event.kind()) {
                    keys = keys.after(event).unwrap_or(keys);
                }
            }
        }
        keys
    }

    /// An `identity.recover` at the author's next seq, with the author's
    /// keys before it (`keys`) and its causal past (`clock`): signed by the
    /// new key; enough distinct guardians' approvals of that key, each
    /// counted and in the causal past; stamped at least the delay after the
    /// last approval needed; not cancelled by the member.
    fn check_recovery(
        &self,
        event: &VerifiedEvent,
        keys: &KeyState,
        clock: &Clock,
    ) -> Result<(), Rejection> {
        let author = event.author();
        let body: Recover = decode_body(event.event())?;
        if event.content().signer != body.new_key {
            return Err(Rejection::rule("a recovery is signed by its new key"));
        }
        keys.recoverable_to(&body.new_key)?;
        let Some(guardians) = &keys.guardians else {
            return Err(Rejection::rule(format!(
                "{author} has named no guardians, so no recovery is possible"
            )));
        };
        if body.approvals.len() > GUARDIANS_MAX {
            return Err(Rejection::rule("a recovery lists too many approvals"));
        }
        let mut approvers = BTreeSet::new();
        let mut times = Vec::new();
        for id in &body.approvals {
            let approval = self
                .events
                .get(id)
                .filter(|_| self.counted.contains(id) && !self.quarantined.contains_key(id))
                .filter(|approval| approval.kind().as_str() == KIND_RECOVERY_APPROVE)
                .filter(|approval| {
                    clock
                        .get(&approval.author())
                        .is_some_and(|seen| *seen >= approval.seq())
                })
                .ok_or_else(|| {
                    Rejection::rule(format!(
                        "approval {id} is not a counted guardian's approval this recovery has seen"
                    ))
                })?;
            let approved: RecoveryApprove = decode_body(approval)?;
            if approved.member != author || approved.new_key != body.new_key {
                return Err(Rejection::rule(format!(
                    "approval {id} approves another member or key"
                )));
            }
            if !guardians.guardians.contains(&approval.author()) {
                return Err(Rejection::rule(format!(
                    "{} is not one of {author}'s guardians",
                    approval.author()
                )));
            }
            if approvers.insert(approval.author()) {
                times.push(approval.timestamp());
            }
        }
        let needed = usize::from(guardians.threshold);
        if times.len() < needed {
            return Err(Rejection::rule(format!(
                "a recovery needs {needed} guardians' approvals; it has {}",
                times.len()
            )));
        }
        times.sort();
        let ready = guardians
            .ready_at(&times)
            .expect("enough approvals, checked above");
        if event.timestamp() < ready {
            return Err(Rejection::rule(format!(
                "the recovery's waiting time runs until {} ms (the member may still cancel it)",
                ready.as_millis()
            )));
        }
        Ok(())
    }

    /// A guardian's approval, freeze or unfreeze, judged against the
    /// member's chain as far as the guardian had seen it.
    fn check_guardian_event(&self, event: &VerifiedEvent, clock: &Clock) -> Result<(), Rejection> {
        if !is_guardian_kind(event.kind()) {
            return Ok(());
        }
        let (member, new_key) = if event.kind().as_str() == KIND_RECOVERY_APPROVE {
            let body: RecoveryApprove = decode_body(event.event())?;
            (body.member, Some(body.new_key))
        } else {
            let body: Freeze = decode_body(event.event())?;
            (body.member, None)
        };
        if member == event.author() {
            return Err(Rejection::rule("a guardian acts for another member"));
        }
        let seen = clock.get(&member).copied().unwrap_or(0);
        let keys = self.keys_before(&member, seen + 1);
        let is_guardian = keys
            .guardians
            .as_ref()
            .is_some_and(|guardians| guardians.guardians.contains(&event.author()));
        if !is_guardian {
            return Err(Rejection::rule(format!(
                "{} is not one of {member}'s guardians",
                event.author()
            )));
        }
        match new_key {
            Some(key) => keys.recoverable_to(&key),
            None => Ok(()),
        }
    }

    /// The guardian whose freeze holds over `member`'s event at `seq` with
    /// causal past `clock`, if any (see [`Log::freezing_guardians`]).
    fn frozen_by(&self, member: &Did, seq: u64, clock: &Clock) -> Option<Did> {
        self.freezing_guardians(member, seq, clock)
            .into_iter()
            .next()
    }

    /// Every guardian whose freeze holds over `member`'s event at `seq` with
    /// causal past `clock`. A guardian's freeze names the last position of
    /// the member's chain the guardian had seen; it holds over every later
    /// event of the member, whether or not its signer had seen the freeze
    /// (a stolen laptop that signs offline is frozen too), until a later
    /// unfreeze by that guardian that had seen the event, or that is in the
    /// event's causal past, lifts it; or, for events after it, a recovery
    /// that had seen the freeze. All of it is a function of the event set:
    /// a freeze that arrives after events it covers makes the log judge
    /// them again.
    fn freezing_guardians(&self, member: &Did, seq: u64, clock: &Clock) -> Vec<Did> {
        let marks = self.freeze_hints.as_ref().unwrap_or(&self.freezes);
        let Some(marks) = marks.get(member) else {
            return Vec::new();
        };
        let recovered = self
            .chains
            .get(member)
            .and_then(|chain| chain.recovered.clone());
        let in_past = |mark: &FreezeMark| {
            clock
                .get(&mark.guardian)
                .is_some_and(|known| *known >= mark.seq)
        };
        // Marks are sorted by (guardian, seq).
        let mut guardians = Vec::new();
        for (index, mark) in marks.iter().enumerate() {
            if !mark.frozen || mark.seen >= seq || guardians.last() == Some(&mark.guardian) {
                continue;
            }
            let lifted = marks[index + 1..]
                .iter()
                .take_while(|later| later.guardian == mark.guardian)
                .any(|later| !later.frozen && (later.seen >= seq || in_past(later)));
            let recovered_past = recovered.as_ref().is_some_and(|(recovered_at, known)| {
                seq > *recovered_at
                    && known
                        .get(&mark.guardian)
                        .is_some_and(|known| *known >= mark.seq)
            });
            if !lifted && !recovered_past {
                guardians.push(mark.guardian);
            }
        }
        guardians
    }

    /// Keeps what a counted (not quarantined) identity event means for
    /// recoveries and freezes.
    fn note_identity(&mut self, event: &Event) {
        let author = event.author();
        match event.kind().as_str() {
            KIND_RECOVERY_APPROVE => {
                if let Ok(body) = decode_body::<RecoveryApprove>(event) {
                    self.approvals
                        .entry(body.member)
                        .or_default()
                        .push(Approval {
                            guardian: author,
                            new_key: body.new_key,
                            id: event.id(),
                            seq: event.seq(),
                            at: event.timestamp(),
                        });
                }
            }
            kind @ (KIND_FREEZE | crate::rules::KIND_UNFREEZE) => {
                if let Ok(body) = decode_body::<Freeze>(event) {
                    let seen = self
                        .clocks
                        .get(&event.id())
                        .and_then(|clock| clock.get(&body.member).copied())
                        .unwrap_or(0);
                    let frozen = kind == KIND_FREEZE;
                    let marks = self.freezes.entry(body.member).or_default();
                    // A freeze covers events past what the guardian had seen,
                    // and an unfreeze lifts that guardian's freezes: events
                    // already judged past the earliest of them are judged
                    // again.
                    // An unfreeze rejudges only when that guardian's freeze
                    // is in force before it (its freezes since its last
                    // unfreeze): a redundant unfreeze costs nothing.
                    let covers_from = if frozen {
                        Some(seen)
                    } else {
                        let mut own: Vec<&FreezeMark> = marks
                            .iter()
                            .filter(|mark| mark.guardian == author && mark.seq < event.seq())
                            .collect();
                        own.sort_by_key(|mark| mark.seq);
                        let since_unfreeze = own
                            .iter()
                            .rposition(|mark| !mark.frozen)
                            .map_or(0, |last| last + 1);
                        own[since_unfreeze..].iter().map(|mark| mark.seen).min()
                    };
                    marks.push(FreezeMark {
                        guardian: author,
                        seq: event.seq(),
                        frozen,
                        seen,
                    });
                    marks.sort();
                    let judged = self
                        .chains
                        .get(&body.member)
                        .map_or(0, |chain| chain.ids.len() as u64);
                    if covers_from.is_some_and(|from| judged > from) {
                        self.rejudge = true;
                    }
                }
            }
            KIND_RECOVER => {
                let clock = self.clocks.get(&event.id()).cloned().unwrap_or_default();
                let seq = event.seq();
                if let Some(chain) = self.chains.get_mut(&author) {
                    chain.recovered = Some((seq, clock));
                }
            }
            _ => {}
        }
    }

    /// Guardians' counted approvals of a recovery of `member`, oldest first.
    pub fn recovery_approvals(&self, member: &Did) -> &[Approval] {
        self.approvals.get(member).map_or(&[], Vec::as_slice)
    }

    /// Whether a guardian of `member` has approved `key` as their new key
    /// and it is still possible (not cancelled, not yet theirs): its device
    /// may then replicate the log to complete the recovery.
    pub fn recovery_approved(&self, member: &Did, key: &icn_identity::PublicKey) -> bool {
        self.key_state(member).recoverable_to(key).is_ok()
            && self
                .recovery_approvals(member)
                .iter()
                .any(|approval| approval.new_key == *key)
    }

    /// The guardian whose freeze holds over `member`'s next event, given
    /// everything this log has counted.
    pub fn frozen(&self, member: &Did) -> Option<Did> {
        self.frozen_by_guardians(member).into_iter().next()
    }

    /// Every guardian whose freeze holds over `member`'s next event, given
    /// everything this log has counted. Each lifts only their own.
    pub fn frozen_by_guardians(&self, member: &Did) -> Vec<Did> {
        // Balance reads ask this of every member: most were never frozen.
        if !self.freezes.contains_key(member) {
            return Vec::new();
        }
        let everything: Clock = self
            .chains
            .iter()
            .map(|(author, chain)| (*author, chain.ids.len() as u64))
            .collect();
        let (next, _) = self.next_position(member);
        self.freezing_guardians(member, next, &everything)
    }

    /// Recomputes what counts from every kept event, after a freeze.
    fn rebuild(&mut self, now: Timestamp, changes: &mut Changes) {
        let genesis = self
            .genesis
            .clone()
            .verify()
            .expect("the genesis verified when the log was made");
        let domains = self.domains.iter().map(|domain| domain.fresh()).collect();
        let evidence: Vec<Evidence> = self.evidence().collect();
        let mut kept: Vec<Event> = self
            .events
            .values()
            .filter(|event| event.id() != self.genesis.id())
            .cloned()
            .collect();
        kept.extend(
            self.pending
                .events
                .values()
                .map(|event| event.event().clone()),
        );
        // These were verified when they arrived; verifying again keeps the
        // type honest and happens only on the rare equivocation path.
        let verified: Vec<VerifiedEvent> = kept
            .into_iter()
            .filter_map(|event| event.verify().ok())
            .collect();
        let (fresh, replayed) = Log::replay(
            genesis,
            self.config.clone(),
            domains,
            verified,
            evidence,
            now,
        )
        .expect("the genesis was valid when the log was made");
        // Everything kept before may have been stored: the replay's recount
        // tells the store, for each, whether it still counts. Anything the
        // replay kept that was not kept before must be stored too.
        let previously_kept: HashSet<EventId> = self.events.keys().copied().collect();
        let generation = self.generation + 1;
        *self = fresh;
        self.generation = generation;
        changes.rebuilt = true;
        changes.rows = replayed.rows;
        changes.recount = replayed.recount;
        changes.stored.extend(
            replayed
                .stored
                .into_iter()
                .filter(|(event, _)| !previously_kept.contains(&event.id())),
        );
        changes.evidence.extend(replayed.evidence);
    }

    fn chain_row(&self, author: &Did) -> ViewRow {
        let chain = &self.chains[author];
        let row = ChainRow {
            seq: chain.ids.len() as u64,
            head: chain.ids.last().map(EventId::to_string).unwrap_or_default(),
            forked_at: self.forked_at(author),
        };
        ViewRow {
            view: "chain",
            key: author.to_string(),
            value: Some(serde_json::to_string(&row).expect("plain data serialises")),
        }
    }

    /// Every view row, as a fold of the counted events.
    pub fn all_rows(&self) -> Vec<ViewRow> {
        let genesis = &self.genesis_body;
        let coop = CoopRow {
            id: self.coop.to_string(),
            name: &genesis.name,
            founders: genesis.founders.iter().map(Did::to_string).collect(),
            charter: &genesis.charter,
            currencies: &genesis.currencies,
            founded_at_ms: self.genesis.timestamp().as_millis(),
        };
        let mut rows = vec![ViewRow {
            view: "coop",
            key: "genesis".to_owned(),
            value: Some(serde_json::to_string(&coop).expect("plain data serialises")),
        }];
        for (author, chain) in &self.chains {
            if let Some(keys) = &chain.keys {
                rows.push(key_state_row(author, keys));
            }
            if !chain.ids.is_empty() {
                rows.push(self.chain_row(author));
            }
        }
        for evidence in self.evidence() {
            rows.push(evidence_row(&evidence));
        }
        for (member, guardians) in self.freezes_holding() {
            rows.push(freeze_row(&member, &guardians));
        }
        for (id, rejection) in &self.quarantined {
            rows.push(quarantine_row(&self.events[id], rejection));
        }
        for domain in &self.domains {
            rows.extend(domain.rows());
        }
        rows.sort_by(|a, b| (a.view, &a.key).cmp(&(b.view, &b.key)));
        rows
    }
}
