//! Who belongs to the co-op and which parameters hold, as of any event's
//! causal past.
//!
//! Domains decide (governance admits a member, a passed proposal changes a
//! parameter) and hand the kernel [`Effect`]s; the kernel keeps each with its
//! [`Source`], the event whose counting caused it. Every domain reads
//! membership and parameters through [`Past`], so a verdict that depends on
//! them still depends only on the event's causal past.

use std::collections::BTreeMap;

use icn_identity::Did;
use serde::{Deserialize, Serialize};

use crate::{Clock, Genesis, Timestamp};

/// The event whose counting caused an effect. Seq 0 stands for the genesis,
/// which is in every event's causal past.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Source {
    pub time: Timestamp,
    pub author: Did,
    pub seq: u64,
}

/// A member's standing in the co-op.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    /// Still a member, but may not pay, propose or vote until reinstated.
    Suspended,
    /// Left or removed. Their past stays in the log.
    Exited,
}

/// How far a member is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Sees the co-op, may trade, may not vote.
    Observer,
    /// Newly admitted: votes, with the ledger's ramp on credit.
    Provisional,
    Full,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub status: Status,
    pub tier: Tier,
    /// When they were first admitted (the genesis time for founders).
    pub since: Timestamp,
}

impl Membership {
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }

    /// Active and not an observer.
    pub fn may_vote(&self) -> bool {
        self.is_active() && self.tier != Tier::Observer
    }
}

/// What a domain's decision changes in the co-op's shared state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// A member's status or tier changes; a new DID becomes a member.
    Member {
        did: Did,
        status: Status,
        tier: Tier,
    },
    /// A co-op parameter (`domain.name`) takes a new value.
    Param { key: String, value: String },
    /// An order for one domain (e.g. the ledger pays a budget from the
    /// treasury); its body is that domain's own postcard encoding. Every
    /// domain hears every effect and acts on those addressed to it.
    Order { domain: String, body: Vec<u8> },
    /// The co-op lifts the freeze that a proven fork put on `did`: their
    /// events whose causal past holds this effect count again, for forks at
    /// positions up to `through_seq` (those the deciding event had seen).
    Unfreeze { did: Did, through_seq: u64 },
}

/// The causal past of one event: all of its author's chain before it, and
/// of every other author what its clock has seen.
#[derive(Clone, Copy)]
pub struct Past<'a> {
    pub author: &'a Did,
    pub seq: u64,
    pub clock: &'a Clock,
}

impl Past<'_> {
    pub fn contains(&self, source: &Source) -> bool {
        if source.seq == 0 {
            true
        } else if source.author == *self.author {
            source.seq < self.seq
        } else {
            self.clock
                .get(&source.author)
                .is_some_and(|seen| *seen >= source.seq)
        }
    }
}

/// Membership and parameters, each with the history of what changed them.
#[derive(Clone, Debug)]
pub struct CoopState {
    genesis_params: BTreeMap<String, String>,
    members: BTreeMap<Did, Vec<(Source, Membership)>>,
    params: BTreeMap<String, Vec<(Source, String)>>,
}

impl CoopState {
    /// The founders are full, active members from the genesis (whose
    /// source has seq 0).
    pub fn new(genesis: &Genesis, genesis_source: Source) -> CoopState {
        let founder = Membership {
            status: Status::Active,
            tier: Tier::Full,
            since: genesis_source.time,
        };
        CoopState {
            genesis_params: genesis.params.clone(),
            members: genesis
                .founders
                .iter()
                .map(|did| (*did, vec![(genesis_source, founder)]))
                .collect(),
            params: BTreeMap::new(),
        }
    }

    pub(crate) fn apply(&mut self, source: Source, effect: &Effect) {
        match effect {
            Effect::Member { did, status, tier } => {
                let history = self.members.entry(*did).or_default();
                let since = history
                    .first()
                    .map_or(source.time, |(_, first)| first.since);
                history.push((
                    source,
                    Membership {
                        status: *status,
                        tier: *tier,
                        since,
                    },
                ));
                history.sort_by_key(|(source, _)| *source);
            }
            Effect::Param { key, value } => {
                let history = self.params.entry(key.clone()).or_default();
                history.push((source, value.clone()));
                history.sort_by_key(|(source, _)| *source);
            }
            Effect::Order { .. } | Effect::Unfreeze { .. } => {}
        }
    }

    /// The latest change in `past`; concurrent changes are ordered by
    /// (time, author, seq), so every node picks the same one.
    fn latest<'s, T>(history: &'s [(Source, T)], past: Option<Past<'_>>) -> Option<&'s T> {
        history
            .iter()
            .rev()
            .find(|(source, _)| past.is_none_or(|past| past.contains(source)))
            .map(|(_, value)| value)
    }

    /// `did`'s membership in `past`, or now (everything applied) with `None`.
    pub fn member(&self, did: &Did, past: Option<Past<'_>>) -> Option<Membership> {
        let history = self.members.get(did)?;
        let latest = Self::latest(history, past).copied()?;
        // `since` is the first admission this past has seen.
        let since = history
            .iter()
            .find(|(source, _)| past.is_none_or(|past| past.contains(source)))
            .map_or(latest.since, |(source, _)| source.time);
        Some(Membership { since, ..latest })
    }

    /// Every DID that is a member in `past` (any status), with their membership.
    pub fn members_in(&self, past: Option<Past<'_>>) -> Vec<(Did, Membership)> {
        self.members
            .keys()
            .filter_map(|did| self.member(did, past).map(|membership| (*did, membership)))
            .collect()
    }

    /// Every DID that was ever a member, with their membership now.
    pub fn members(&self) -> impl Iterator<Item = (&Did, Membership)> + '_ {
        self.members
            .keys()
            .filter_map(|did| self.member(did, None).map(|membership| (did, membership)))
    }

    /// A parameter's value in `past` (or now), falling back to the genesis.
    pub fn param(&self, key: &str, past: Option<Past<'_>>) -> Option<&str> {
        self.params
            .get(key)
            .and_then(|history| Self::latest(history, past))
            .or_else(|| self.genesis_params.get(key))
            .map(String::as_str)
    }

    /// Every parameter's value in `past` (or now).
    pub fn params(&self, past: Option<Past<'_>>) -> BTreeMap<String, String> {
        let mut params = self.genesis_params.clone();
        for (key, history) in &self.params {
            if let Some(value) = Self::latest(history, past) {
                params.insert(key.clone(), value.clone());
            }
        }
        params
    }

    /// When the parameters visible in `past` last changed (`None`: as founded).
    pub fn params_changed(&self, past: Option<Past<'_>>) -> Option<Source> {
        self.params
            .values()
            .flat_map(|history| history.iter().map(|(source, _)| *source))
            .filter(|source| past.is_none_or(|past| past.contains(source)))
            .max()
    }
}
