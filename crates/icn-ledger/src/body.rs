//! The ledger's event kinds and their bodies (postcard on the wire).
//!
//! Who signs what decides who can be debited: a member's account is debited
//! only by their own chain (transfers, demurrage) or by the outcome of a
//! dispute, signed by the mediator the payer named.

use icn_identity::Did;
use icn_kernel::EventId;
use serde::{Deserialize, Serialize};

/// Payer's chain: moves amounts to one or more payees.
pub const KIND_TRANSFER: &str = "ledger.transfer";
/// Payee's chain: asks a payer for an amount.
pub const KIND_REQUEST: &str = "ledger.request";
/// Payer's chain: declines (disputes) a request.
pub const KIND_DECLINE: &str = "ledger.decline";
/// Payee's chain: withdraws their own request.
pub const KIND_CANCEL: &str = "ledger.cancel";
/// Payer's chain: contests one leg of one of their transfers.
pub const KIND_DISPUTE: &str = "ledger.dispute";
/// A party's or the mediator's chain: adds evidence to a dispute.
pub const KIND_EVIDENCE: &str = "ledger.evidence";
/// The mediator's chain: settles a dispute.
pub const KIND_RESOLVE: &str = "ledger.resolve";
/// The holder's chain: the demurrage for one period, into the commons.
pub const KIND_DEMURRAGE: &str = "ledger.demurrage";

pub const LEGS_MAX: usize = 16;
pub const MEMO_MAX_BYTES: usize = 500;
pub const EVIDENCE_MAX_BYTES: usize = 4_000;

/// The body of `ledger.transfer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub currency: String,
    pub legs: Vec<Leg>,
    pub memo: String,
    /// The payment request this transfer pays, if any.
    pub request: Option<EventId>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leg {
    pub to: Did,
    /// In the currency's smallest unit (minutes for hours).
    pub amount: u64,
}

impl Transfer {
    /// The sum of the legs; `None` if it overflows an account.
    pub fn total(&self) -> Option<i64> {
        self.legs.iter().try_fold(0i64, |sum, leg| {
            sum.checked_add(i64::try_from(leg.amount).ok()?)
        })
    }
}

/// The body of `ledger.request`: the author (payee) asks `payer` for `amount`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub payer: Did,
    pub currency: String,
    pub amount: u64,
    pub memo: String,
}

/// The body of `ledger.decline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decline {
    pub request: EventId,
    pub reason: String,
}

/// The body of `ledger.cancel`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    pub request: EventId,
}

/// The body of `ledger.dispute`: the payer contests what they paid `payee`
/// in `entry`, and names a mediator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispute {
    pub entry: EventId,
    pub payee: Did,
    pub reason: String,
    pub mediator: Did,
}

/// The body of `ledger.evidence`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub dispute: EventId,
    pub text: String,
}

/// How a mediator settles a dispute. Nothing is deleted: a reversal or a
/// refund is a new, compensating entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// The entry stands.
    Valid,
    /// The payee gives the whole amount back.
    Reversed,
    /// The payee gives this much back (at most the amount).
    PartialRefund { amount: u64 },
    /// The payer is made whole by the co-op's commons; the payee keeps it.
    WriteOff,
}

impl Outcome {
    pub fn name(&self) -> &'static str {
        match self {
            Outcome::Valid => "valid",
            Outcome::Reversed => "reversed",
            Outcome::PartialRefund { .. } => "partial refund",
            Outcome::WriteOff => "write-off",
        }
    }
}

/// The body of `ledger.resolve`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolve {
    pub dispute: EventId,
    pub outcome: Outcome,
    pub note: String,
}

/// The body of `ledger.demurrage`: the charge for `period` (counted from
/// the genesis in 30-day periods) on the author's balance in `currency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demurrage {
    pub currency: String,
    pub period: u64,
    pub amount: u64,
}

/// What a passed proposal orders the ledger to do, carried in an
/// [`Effect::Order`](icn_kernel::Effect) addressed to `ledger`. The
/// commons (the co-op's treasury) is debited only this way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Order {
    /// Pays a member from the commons, once, when the proposal passes.
    Budget {
        to: Did,
        amount: u64,
        currency: String,
        memo: String,
    },
    /// Reverses a transfer by compensating entries (each payee pays back
    /// what it received; legs already disputed are left to the dispute).
    /// Once per transfer; may take a payee below their floor (a decision,
    /// not spending).
    Reverse { entry: EventId, memo: String },
    /// A member stated their trust in `to` (in the `general` or `ledger`
    /// context); the cause is the statement, in the truster's chain. Credit
    /// limits read these through the causal clock.
    Trust {
        to: Did,
        permille: u16,
        context: String,
    },
}

impl Order {
    pub fn effect(&self) -> icn_kernel::Effect {
        icn_kernel::Effect::Order {
            domain: "ledger".to_owned(),
            body: icn_kernel::encode_body(self),
        }
    }
}
