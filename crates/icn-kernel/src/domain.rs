//! How domains (ledger, governance, trust …) plug into the kernel.

use std::collections::BTreeMap;

use icn_identity::Did;

use crate::{
    CoopState, Effect, Event, Genesis, KeyState, Rejection, Timestamp,
    coop::{Membership, Past},
    log::Clock,
};

/// One row of a materialised view, written in the same transaction as the
/// events that produced it. `value: None` deletes the row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewRow {
    pub view: &'static str,
    pub key: String,
    pub value: Option<String>,
}

/// What a domain may read while validating an event: the co-op's genesis,
/// the author's key state, the event's causal clock, where the author forked
/// their chain, and membership and parameters as of the causal past. Domains
/// keep the rest of what they need (a ledger's balances) in their own state
/// and read it *through the clock*, so that a verdict depends only on the
/// event's causal past.
pub struct Context<'a> {
    pub genesis: &'a Genesis,
    pub author: &'a Did,
    pub seq: u64,
    pub author_keys: &'a KeyState,
    /// For each other author, the highest seq in the event's causal past.
    /// The author's own chain before the event is all in its causal past.
    pub clock: &'a Clock,
    /// For each author whose fork the event's causal past proves (it holds a
    /// variant of theirs that lost), the highest position proven. Entries
    /// signed before the author's node knew of the fork do not prove it; what
    /// a node that has synced signs does. The kernel itself refuses a proven
    /// equivocator's events (but identity events) until the co-op lifts it.
    pub forks_proven: &'a BTreeMap<Did, u64>,
    pub coop: &'a CoopState,
}

impl Context<'_> {
    /// The event's causal past.
    pub fn past(&self) -> Past<'_> {
        Past {
            author: self.author,
            seq: self.seq,
            clock: self.clock,
        }
    }

    /// `did`'s membership as far as this event knows.
    pub fn member(&self, did: &Did) -> Option<Membership> {
        self.coop.member(did, Some(self.past()))
    }

    /// Refuses unless `did` is an active member as far as this event knows.
    pub fn active_member(&self, did: &Did) -> Result<Membership, Rejection> {
        match self.member(did) {
            Some(membership) if membership.is_active() => Ok(membership),
            Some(membership) => Err(Rejection::rule(format!(
                "{did} is not an active member (they are {:?})",
                membership.status
            ))),
            None => Err(Rejection::rule(format!(
                "{did} is not a member of this co-op"
            ))),
        }
    }

    /// A co-op parameter as far as this event knows.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.coop.param(key, Some(self.past()))
    }
}

/// A proven fork, as domains hear of it after the log settles.
pub struct Fork<'a> {
    pub author: Did,
    pub seq: u64,
    /// The variant that counts (see [`crate::Log`]'s fork rule), if it is valid.
    pub counted: Option<&'a Event>,
    /// Events of the author that never count: the variants that lost and
    /// the rest of their branches.
    pub voided: &'a [&'a Event],
}

/// A domain's rules: which kinds it owns, how they validate, and how accepted
/// events fold into its view.
///
/// **Invariant**: `apply` must give the same state for any order of events
/// that respects causality (every event after its prev and deps). The kernel
/// feeds events in arrival order, and a property test checks that every
/// permutation of the same events ends in the same rows.
pub trait Domain: Send {
    /// The part of the kind before the dot, e.g. `ledger`.
    fn name(&self) -> &'static str;

    /// A fresh, empty instance, for rebuilding views from the log.
    fn fresh(&self) -> Box<dyn Domain>;

    /// Hears of the co-op's genesis (and when it was signed) before any
    /// other event, and refuses it if the domain's parameters in it are not
    /// valid.
    fn begin(&mut self, _genesis: &Genesis, _founded: Timestamp) -> Result<(), Rejection> {
        Ok(())
    }

    fn validate(&self, event: &Event, context: &Context<'_>) -> Result<(), Rejection>;

    /// Folds a validated event into the domain's state and views, with the
    /// same context it was validated in, and returns what it changes in the
    /// co-op's shared state (membership, parameters, orders to domains).
    fn apply(
        &mut self,
        event: &Event,
        context: &Context<'_>,
        rows: &mut Vec<ViewRow>,
    ) -> Vec<Effect>;

    /// Hears of every effect once the kernel has applied it (from any
    /// domain, including this one), with the event that caused it.
    fn effect(
        &mut self,
        _cause: &Event,
        _effect: &Effect,
        _coop: &CoopState,
        _rows: &mut Vec<ViewRow>,
    ) {
    }

    /// Hears of every counted event of *other* domains (the trust graph
    /// watches completed transfers). Must commute like `apply`.
    fn observe(&mut self, _event: &Event, _rows: &mut Vec<ViewRow>) {}

    /// Hears of a fork once the log has settled what counts (after every
    /// replay or rebuild). Called for every known fork, in (author, seq)
    /// order, on a state folded from the counted events only.
    fn fork(&mut self, _fork: &Fork<'_>, _rows: &mut Vec<ViewRow>) {}

    /// Every row of the view, for a full rewrite after a rebuild.
    fn rows(&self) -> Vec<ViewRow>;
}

/// The identity view's row for one member: authorised and revoked keys.
pub(crate) fn key_state_row(did: &Did, state: &KeyState) -> ViewRow {
    let keys: BTreeMap<String, &String> = state
        .authorised
        .iter()
        .map(|(key, label)| (key.to_string(), label))
        .collect();
    let revoked: Vec<String> = state.revoked.iter().map(|key| key.to_string()).collect();
    let value = serde_json::json!({ "keys": keys, "revoked": revoked });
    ViewRow {
        view: "identity",
        key: did.to_string(),
        value: Some(value.to_string()),
    }
}
