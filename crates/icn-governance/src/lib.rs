//! Membership and governance as domains of the event log.
//!
//! - `member.*` ([`MemberDomain`]): applications, vouches, admission after
//!   enough vouches, profiles, leaving.
//! - `gov.*` ([`GovDomain`]): proposals with rules frozen when they open,
//!   votes, and a close by the co-op's closer whose outcome is the tally of
//!   its causal past; passed proposals take effect by themselves (members,
//!   parameters, budget payments from the commons, charter sections,
//!   circles).
//!
//! - `trust.*` ([`trust::TrustDomain`]): statements of trust, grown by
//!   transfers and decaying with inactivity; scores by [`trust::TrustGraph`].
//!
//! They report what they change through the kernel's effects, so every
//! domain reads membership and parameters as of an event's causal past.

mod body;
mod gov;
mod member;
pub mod params;
mod tally;
pub mod templates;
pub mod trust;

pub use body::*;
pub use gov::{
    AppealRow, GovDomain, ProposalRow, VIEW_CHARTER, VIEW_CIRCLE, VIEW_OPEN, VIEW_PROPOSAL,
    VIEW_REMINDER, VIEW_TEMPLATE, VoteRow, check_rules,
};
pub use member::{MemberDomain, MemberRow, VIEW_MEMBER};
pub use tally::{Ballot, Outcome, Tally, decide, statement, tally};

use icn_kernel::Rejection;
pub(crate) use icn_kernel::{check_text as text_check, decode_body as decode};

fn reject(reason: impl Into<String>) -> Rejection {
    Rejection::rule(reason)
}

fn json(value: &impl serde::Serialize) -> Option<String> {
    Some(serde_json::to_string(value).expect("plain data serialises"))
}
