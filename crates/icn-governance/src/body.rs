//! Event kinds and bodies of membership (`member.*`) and governance
//! (`gov.*`). Numbers that decide outcomes are integers or fractions, never
//! floats, so every node computes the same result.

use std::collections::BTreeMap;

use icn_identity::Did;
use icn_kernel::{EventId, Tier};
use serde::{Deserialize, Serialize};

/// Applicant's chain (not yet a member): asks to join.
pub const KIND_APPLY: &str = "member.apply";
/// A voting member's chain: vouches for an applicant.
pub const KIND_VOUCH: &str = "member.vouch";
/// Any active member's chain: admits an applicant with enough vouches.
pub const KIND_ADMIT: &str = "member.admit";
/// A member's chain: their display name and skills.
pub const KIND_PROFILE: &str = "member.profile";
/// A member's chain: they leave the co-op.
pub const KIND_LEAVE: &str = "member.leave";
/// A provisional member's chain, once `member.probation_days` have passed
/// since their admission: they become full members (their node signs it).
pub const KIND_CONFIRM: &str = "member.confirm";

/// A voting member's chain: opens a proposal.
pub const KIND_PROPOSE: &str = "gov.propose";
/// The proposer's chain: opens a draft for votes, freezing its electorate.
pub const KIND_OPEN: &str = "gov.open";
/// An elector's chain: a vote; the latest before the close counts.
pub const KIND_VOTE: &str = "gov.vote";
/// The proposer's chain: asks the closer to close as cancelled.
pub const KIND_CANCEL: &str = "gov.cancel";
/// A vetoer's chain (`gov.vetoers`): asks the closer to close as vetoed.
pub const KIND_VETO: &str = "gov.veto";
/// The closer's chain (`gov.closer`): closes a proposal. The outcome is the
/// tally of what is in this event's causal past, so every node agrees.
pub const KIND_CLOSE: &str = "gov.close";
/// The closer's chain: reminds electors who have not voted.
pub const KIND_REMIND: &str = "gov.remind";
/// An elector's chain: appeals a closed proposal within the window.
pub const KIND_APPEAL: &str = "gov.appeal";
/// A voting member's chain: publishes a template of rules under a name.
pub const KIND_TEMPLATE: &str = "gov.template";

pub const NAME_MAX_BYTES: usize = 64;
pub const NOTE_MAX_BYTES: usize = 1_000;
pub const TITLE_MAX_BYTES: usize = 200;
pub const TEXT_MAX_BYTES: usize = 20_000;
pub const SKILLS_MAX: usize = 16;
pub const ELECTORATE_MAX: usize = 1_000;
pub const MINUTE_MS: u64 = 60_000;
pub const DAY_MS: u64 = 24 * 60 * MINUTE_MS;
pub const DURATION_MIN_MS: u64 = MINUTE_MS;
pub const DURATION_MAX_MS: u64 = 90 * DAY_MS;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Apply {
    pub name: String,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vouch {
    pub applicant: Did,
    pub note: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admit {
    pub applicant: Did,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    pub name: String,
    pub skills: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leave {
    pub note: String,
}

/// `num / den`, e.g. 2/3. Compared in integers: `a ≥ f·b` is
/// `a·den ≥ num·b`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fraction {
    pub num: u32,
    pub den: u32,
}

impl Fraction {
    pub const fn new(num: u32, den: u32) -> Fraction {
        Fraction { num, den }
    }

    pub fn is_valid(&self) -> bool {
        self.den > 0 && self.num <= self.den && self.den <= 1_000
    }

    /// `part ≥ self · whole`.
    pub fn reached(&self, part: u64, whole: u64) -> bool {
        part * u64::from(self.den) >= u64::from(self.num) * whole
    }

    /// Parses `2/3`, `67%` or `0.5`.
    pub fn parse(text: &str) -> Option<Fraction> {
        let text = text.trim();
        let fraction = if let Some((num, den)) = text.split_once('/') {
            Fraction::new(num.trim().parse().ok()?, den.trim().parse().ok()?)
        } else if let Some(percent) = text.strip_suffix('%') {
            Fraction::new(percent.trim().parse().ok()?, 100)
        } else {
            let (whole, decimals) = text.split_once('.').unwrap_or((text, ""));
            if decimals.len() > 3 || !decimals.chars().all(|c| c.is_ascii_digit()) {
                return None;
            }
            let den = 10u32.pow(decimals.len() as u32);
            let whole: u32 = whole.parse().ok()?;
            let part: u32 = if decimals.is_empty() {
                0
            } else {
                decimals.parse().ok()?
            };
            Fraction::new(whole.checked_mul(den)?.checked_add(part)?, den)
        };
        fraction.is_valid().then_some(fraction)
    }
}

impl std::fmt::Display for Fraction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

/// How votes decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// More yes than no; abstentions do not count either way.
    Majority,
    /// yes ≥ threshold · (yes + no).
    Supermajority { threshold: Fraction },
    /// At least one yes and no "no" or "block" from anyone who voted.
    Unanimous,
    /// Passes unless more than `max_blocks` block; a "no" is a concern.
    Consent { max_blocks: u32 },
    /// Without blocks, more yes than no; with any block, yes ≥ threshold ·
    /// (yes + no + block).
    ConsensusFallback { threshold: Fraction },
    /// The advice process: the proposer decides after hearing advice; the
    /// votes are advice, and the proposal is accepted when it closes.
    Advice,
    /// Each elector has `credits` voice credits; a vote of strength s costs
    /// s²; the strengths of yes and no are summed; more yes than no passes.
    Quadratic { credits: u32 },
}

/// A proposal's rules, frozen in the proposal when it opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub method: Method,
    /// Share of the electorate that must vote (any choice).
    pub quorum: Fraction,
    pub duration_ms: u64,
    /// Close as soon as every elector has voted.
    pub early_close: bool,
    /// Views show no tally or votes until the close. (The votes are events
    /// in the log: hiding is a courtesy of the views, not secrecy.)
    pub hidden: bool,
}

/// What a proposal does if it passes. Effects apply once, at the close.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A decision in words; nothing else changes.
    Decision,
    AddMember {
        did: Did,
        name: String,
        tier: Tier,
    },
    RemoveMember {
        did: Did,
    },
    /// Changes co-op parameters (`ledger.floor`, `gov.quorum` …).
    SetParams {
        params: BTreeMap<String, String>,
    },
    /// Pays a member from the commons (the treasury).
    Budget {
        to: Did,
        amount: u64,
        currency: String,
        memo: String,
    },
    /// Replaces one section of the charter (a new version of it).
    Charter {
        section: String,
        text: String,
    },
    /// Gives a member these roles (replacing theirs): `treasurer`,
    /// `secretary` … (1–8 of a-z, 0-9 and -, up to 32 bytes each).
    SetRoles {
        did: Did,
        roles: Vec<String>,
    },
    /// Reverses a ledger transfer (it must be in the proposal's causal
    /// past) by compensating entries.
    Reverse {
        entry: EventId,
    },
    /// Suspends a member at once: no paying, proposing or voting.
    Freeze {
        did: Did,
    },
    Unfreeze {
        did: Did,
    },
    /// A working circle with its own members, deciding its own proposals.
    CreateCircle {
        name: String,
        members: Vec<Did>,
    },
}

impl Action {
    pub fn label(&self) -> &'static str {
        match self {
            Action::Decision => "decision",
            Action::AddMember { .. } => "add member",
            Action::RemoveMember { .. } => "remove member",
            Action::SetParams { .. } => "change policy",
            Action::Budget { .. } => "budget",
            Action::Charter { .. } => "amend charter",
            Action::Reverse { .. } => "reverse an entry",
            Action::SetRoles { .. } => "set roles",
            Action::Freeze { .. } => "freeze",
            Action::Unfreeze { .. } => "unfreeze",
            Action::CreateCircle { .. } => "create circle",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Propose {
    pub title: String,
    pub text: String,
    /// A working circle's name, or `None` for the whole co-op.
    pub circle: Option<String>,
    pub action: Action,
    /// The template the rules came from (for people; the rules are what count).
    pub template: String,
    pub rules: Rules,
    /// Who may vote: exactly the voting members (of the circle) in the
    /// proposal's causal past, sorted. Checked, then frozen. Empty for a
    /// draft: its `gov.open` carries it.
    pub electorate: Vec<Did>,
    /// When a review of the decision is due, if any.
    pub review_at_ms: Option<u64>,
    /// A draft is not open for votes until its proposer opens it.
    pub draft: bool,
}

/// The body of `gov.open`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Open {
    pub proposal: EventId,
    /// As in [`Propose::electorate`], as of the opening.
    pub electorate: Vec<Did>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Choice {
    Yes,
    No,
    Abstain,
    Block,
}

impl Choice {
    pub fn parse(text: &str) -> Option<Choice> {
        match text.trim().to_ascii_lowercase().as_str() {
            "yes" | "y" => Some(Choice::Yes),
            "no" | "n" => Some(Choice::No),
            "abstain" => Some(Choice::Abstain),
            "block" => Some(Choice::Block),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub proposal: EventId,
    pub choice: Choice,
    pub reason: String,
    /// For quadratic voting; 1 otherwise.
    pub strength: u32,
}

/// The body of `gov.cancel`, `gov.veto` and `gov.appeal`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct About {
    pub proposal: EventId,
    pub reason: String,
}

/// The body of `gov.close` and `gov.remind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Close {
    pub proposal: EventId,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub description: String,
    pub rules: Rules,
}

/// What a passed proposal orders the membership domain to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MemberOrder {
    Roles { did: Did, roles: Vec<String> },
}

impl MemberOrder {
    pub fn effect(&self) -> icn_kernel::Effect {
        icn_kernel::Effect::Order {
            domain: "member".to_owned(),
            body: icn_kernel::encode_body(self),
        }
    }
}

pub const ROLES_MAX: usize = 8;
pub const ROLE_MAX_BYTES: usize = 32;
