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

/// The UTC calendar year and month of a Unix time in milliseconds.
pub fn year_month(time_ms: u64) -> (i64, u32) {
    let days = (time_ms / 86_400_000) as i64;
    let (year, month, _) = civil_from_days(days);
    (year, month)
}

/// `2026-11-22T09:30:00Z`.
pub fn format_utc(time_ms: u64) -> String {
    let days = (time_ms / 86_400_000) as i64;
    let (year, month, day) = civil_from_days(days);
    let seconds = (time_ms / 1000) % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// `YYYY-MM-DD` (UTC midnight) → Unix milliseconds.
pub fn parse_date(text: &str) -> Option<u64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u64 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&year) || !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let at = month_start_ms(year, month) + (day - 1) * 86_400_000;
    (year_month(at) == (year, month)).then_some(at)
}

/// `YYYY-MM` → (year, month).
pub fn parse_month(text: &str) -> Option<(i64, u32)> {
    let (year, month) = text.trim().split_once('-')?;
    let year: i64 = year.parse().ok()?;
    let month: u32 = month.parse().ok()?;
    ((1970..=9999).contains(&year) && (1..=12).contains(&month)).then_some((year, month))
}

/// Milliseconds at the start (UTC) of a calendar month.
pub fn month_start_ms(year: i64, month: u32) -> u64 {
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * m as i64 + 2) / 5;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    (days.max(0) as u64) * 86_400_000
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_months_round_trip() {
        assert_eq!(year_month(0), (1970, 1));
        // 2026-11-22T12:00:00Z
        assert_eq!(year_month(1_795_348_800_000), (2026, 11));
        assert_eq!(month_start_ms(2026, 11), 1_793_491_200_000);
        assert_eq!(
            month_start_ms(2024, 3) - month_start_ms(2024, 2),
            29 * 86_400_000
        );
        assert_eq!(format_utc(1_795_348_800_000), "2026-11-22T12:00:00Z");
        assert_eq!(parse_date("2026-11-22"), Some(1_795_305_600_000));
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("22/11/2026"), None);
        assert_eq!(parse_month("2026-11"), Some((2026, 11)));
        assert_eq!(parse_month("2026-13"), None);
        for (year, month) in [(1999, 12), (2000, 2), (2026, 1), (2100, 3)] {
            let start = month_start_ms(year, month);
            assert_eq!(year_month(start), (year, month));
            assert_ne!(year_month(start - 1), (year, month));
        }
    }
}
