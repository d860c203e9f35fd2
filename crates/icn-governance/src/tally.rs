//! Counting votes: a pure function of the rules, the electorate's size and
//! each elector's counted ballot, so the order votes arrived in cannot
//! matter.

use serde::{Deserialize, Serialize};

use crate::body::{Choice, Method, Rules};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ballot {
    pub choice: Choice,
    pub strength: u32,
}

/// Sums of the counted ballots. For quadratic voting `yes` and `no` are
/// summed strengths; otherwise every ballot counts one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub yes: u64,
    pub no: u64,
    pub abstain: u64,
    pub block: u64,
    /// Electors who voted (any choice).
    pub voted: u64,
    pub electorate: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Rejected,
    NoQuorum,
    Cancelled,
    Vetoed,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::NoQuorum => "no_quorum",
            Outcome::Cancelled => "cancelled",
            Outcome::Vetoed => "vetoed",
        }
    }
}

pub fn tally<'a>(
    rules: &Rules,
    electorate: usize,
    ballots: impl IntoIterator<Item = &'a Ballot>,
) -> Tally {
    let quadratic = matches!(rules.method, Method::Quadratic { .. });
    let mut tally = Tally {
        electorate: electorate as u64,
        ..Tally::default()
    };
    for ballot in ballots {
        let weight = if quadratic {
            u64::from(ballot.strength)
        } else {
            1
        };
        tally.voted += 1;
        match ballot.choice {
            Choice::Yes => tally.yes += weight,
            Choice::No => tally.no += weight,
            Choice::Abstain => tally.abstain += 1,
            Choice::Block => tally.block += 1,
        }
    }
    tally
}

/// The outcome of a tally under the rules (cancellation and veto are
/// decided before counting).
pub fn decide(rules: &Rules, tally: &Tally) -> Outcome {
    if matches!(rules.method, Method::Advice) {
        return Outcome::Accepted;
    }
    if !rules.quorum.reached(tally.voted, tally.electorate) || tally.voted == 0 {
        return Outcome::NoQuorum;
    }
    let passed = match rules.method {
        Method::Majority | Method::Quadratic { .. } => tally.yes > tally.no,
        Method::Supermajority { threshold } => {
            tally.yes > 0 && threshold.reached(tally.yes, tally.yes + tally.no + tally.block)
        }
        Method::Unanimous => tally.yes > 0 && tally.no == 0 && tally.block == 0,
        Method::Consent { max_blocks } => tally.block <= u64::from(max_blocks),
        Method::ConsensusFallback { threshold } => {
            if tally.block == 0 {
                tally.yes > tally.no
            } else {
                threshold.reached(tally.yes, tally.yes + tally.no + tally.block)
            }
        }
        Method::Advice => true,
    };
    if passed {
        Outcome::Accepted
    } else {
        Outcome::Rejected
    }
}

/// One line a member can read: what was counted and why it decided so.
pub fn statement(rules: &Rules, tally: &Tally, outcome: Outcome) -> String {
    let counted = format!(
        "{} yes, {} no, {} abstain, {} block; {} of {} electors voted",
        tally.yes, tally.no, tally.abstain, tally.block, tally.voted, tally.electorate
    );
    match outcome {
        Outcome::Accepted => format!("Accepted: {counted}."),
        Outcome::Rejected => format!("Rejected: {counted}."),
        Outcome::NoQuorum => format!(
            "No quorum: {counted}; {} of the electorate had to vote.",
            rules.quorum
        ),
        Outcome::Cancelled => "Cancelled by the proposer.".to_owned(),
        Outcome::Vetoed => "Vetoed.".to_owned(),
    }
}
