//! The ledger's views: what is written to the store's view rows, and how
//! their keys sort (one account's history is one contiguous key range, in
//! time order).

use std::fmt;

use icn_identity::Did;
use serde::{Deserialize, Serialize};

/// View names (the store's `view_rows.view`).
pub const VIEW_BALANCE: &str = "ledger.balance";
pub const VIEW_ENTRY: &str = "ledger.entry";
pub const VIEW_MONTH: &str = "ledger.month";
pub const VIEW_NOTICE: &str = "ledger.notice";
pub const VIEW_TOTALS: &str = "ledger.totals";
pub const VIEW_REQUEST: &str = "ledger.request";
pub const VIEW_DISPUTE: &str = "ledger.dispute";
/// `{did}/{currency}` → the next demurrage period that may be charged.
pub const VIEW_DEMURRAGE: &str = "ledger.demurrage";

/// Whose balance: a member's, or the co-op's commons (which receives
/// demurrage and pays write-offs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    Member(Did),
    Commons,
}

pub const COMMONS: &str = "commons";

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Account::Member(did) => did.fmt(f),
            Account::Commons => f.write_str(COMMONS),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceRow {
    pub currency: String,
    pub balance: i64,
    /// The lowest balance this member may pay down to (negative).
    pub floor: i64,
    pub ceiling: i64,
    /// Above the ceiling: flagged for the co-op's attention, not blocked.
    pub over_ceiling: bool,
    /// Within a tenth of the floor.
    pub near_floor: bool,
    pub frozen: bool,
    /// For a member admitted after the founding: how their floor deepens
    /// with time. `floor` and `near_floor` above are as at admission; read
    /// them at a time with [`BalanceRow::at`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<crate::policy::FloorRamp>,
}

impl BalanceRow {
    /// The row with `floor` and `near_floor` as they stand at `now_ms`.
    pub fn at(mut self, now_ms: u64) -> BalanceRow {
        if let Some(ramp) = &self.ramp {
            self.floor = ramp.floor_now(now_ms);
            self.near_floor = near_floor(self.balance, self.floor);
        }
        self
    }
}

/// Within a tenth of the floor.
pub fn near_floor(balance: i64, floor: i64) -> bool {
    floor != i64::MIN && balance <= floor - floor / 10
}

/// One line of an account's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The event that moved the amount.
    pub id: String,
    pub time_ms: u64,
    pub currency: String,
    /// Positive when received, negative when paid.
    pub amount: i64,
    pub counterparty: String,
    pub memo: String,
    /// `payment`, `reversal`, `refund`, `write-off` or `demurrage`.
    pub kind: String,
    /// For a compensating entry: the entry it compensates.
    pub about: Option<String>,
}

/// One account's movement in one calendar month (UTC), for statements.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthRow {
    pub received: i64,
    pub paid: i64,
    pub entries: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub transfers: u64,
    /// Sum of all amounts moved by transfers, in the smallest unit.
    pub volume: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub kind: String,
    pub message: String,
    pub event: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestRow {
    pub id: String,
    pub payee: String,
    pub payer: String,
    pub currency: String,
    pub amount: i64,
    pub memo: String,
    pub time_ms: u64,
    /// `pending`, `paid`, `declined` or `withdrawn`.
    pub status: String,
    /// The transfer that paid it, or why it was declined.
    pub answer: Option<String>,
    /// When the payer's node accepts it by itself, unless declined first.
    pub auto_accept_at_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeRow {
    pub id: String,
    pub entry: String,
    pub payer: String,
    pub payee: String,
    pub mediator: String,
    pub currency: String,
    pub amount: i64,
    pub reason: String,
    pub time_ms: u64,
    pub evidence: Vec<EvidenceItem>,
    /// `open`, or the outcome: `valid`, `reversed`, `partial refund`, `write-off`.
    pub status: String,
    pub refunded: i64,
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidenceItem {
    pub by: String,
    pub time_ms: u64,
    pub text: String,
}

/// `{account}/{time:016}/{id}/{n:02}`: one account's history sorts by time.
pub fn entry_key(account: &Account, time_ms: u64, id: &str, n: usize) -> String {
    format!("{account}/{time_ms:016}/{id}/{n:02}")
}

/// `{account}/{currency}/{yyyy-mm}`.
pub fn month_key(account: &Account, currency: &str, time_ms: u64) -> String {
    let (year, month) = year_month(time_ms);
    format!("{account}/{currency}/{year:04}-{month:02}")
}

pub use icn_kernel::calendar::{format_utc, month_start_ms, parse_date, parse_month, year_month};
