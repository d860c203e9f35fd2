//! Credit policy: the co-op's ledger parameters, read from the genesis
//! (`ledger.*` parameters; governance changes them later), and the pure
//! formulas that turn them into a member's floor and a demurrage charge.
//!
//! Everything is integer arithmetic: a verdict that depended on floating
//! point rounding could differ between machines.

use std::collections::BTreeMap;

use icn_identity::Did;
use icn_kernel::{CurrencySpec, Rejection};

pub const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// Demurrage is charged per period of this length, counted from the genesis.
pub const DEMURRAGE_PERIOD_MS: u64 = 30 * DAY_MS;

/// The ledger's parameters. Amounts are in whole units of each currency
/// (hours for `hours`); rates are integers (percent, permille, basis points).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `ledger.floor`: how far below zero any member may go, before bonuses.
    pub floor: i64,
    /// `ledger.floor_max`: the floor never goes deeper than this, bonuses included.
    pub floor_max: i64,
    /// `ledger.trust_bonus_percent`: extra floor, as a percent of `floor`,
    /// for a fully trusted member (scaled by their trust score).
    pub trust_bonus_percent: i64,
    /// `ledger.history_bonus_permille`: extra floor per thousand units the
    /// member has received (their cleared volume).
    pub history_bonus_permille: i64,
    /// `ledger.ceiling`: above this a member is flagged, never blocked.
    pub ceiling: i64,
    /// `ledger.ramp_start`: a member admitted after the founding starts here …
    pub ramp_start: i64,
    /// `ledger.ramp_days`: … and reaches the full floor after this many days …
    pub ramp_days: u64,
    /// `ledger.ramp_received`: … and after receiving this much (both needed).
    pub ramp_received: i64,
    /// `ledger.auto_accept_days`: a payment request the payer has neither
    /// accepted nor declined is accepted by the payer's node after this many
    /// days; 0 turns it off.
    pub auto_accept_days: u64,
    /// `ledger.demurrage_bp`: basis points per 30-day period charged on the
    /// part of a balance above `demurrage_threshold`, into the commons; 0 is off.
    pub demurrage_bp: i64,
    /// `ledger.demurrage_threshold`.
    pub demurrage_threshold: i64,
    /// `ledger.mediators`: who may mediate disputes (comma-separated DIDs);
    /// empty means any member who is not a party.
    pub mediators: Vec<Did>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            floor: 40,
            floor_max: 500,
            trust_bonus_percent: 30,
            history_bonus_permille: 50,
            ceiling: 80,
            ramp_start: 10,
            ramp_days: 90,
            ramp_received: 10,
            auto_accept_days: 7,
            demurrage_bp: 0,
            demurrage_threshold: 50,
            mediators: Vec::new(),
        }
    }
}

/// What the floor formula needs to know of a member, over an event's causal past.
/// The clock-free parts of a new member's floor (depths are positive).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FloorRamp {
    pub admitted_ms: u64,
    pub ramp_ms: u64,
    pub start: i64,
    pub full: i64,
    /// Progress by what the member received, in thousandths.
    pub by_received: i64,
}

impl FloorRamp {
    /// The floor (negative) `since_admission_ms` after admission… or, via
    /// [`FloorRamp::floor_now`], at a wall-clock time.
    pub fn floor_at(&self, since_admission_ms: u64) -> i64 {
        let by_time = if self.ramp_ms == 0 {
            1000
        } else {
            (since_admission_ms / (self.ramp_ms / 1000).max(1)).min(1000) as i64
        };
        let progress = by_time.min(self.by_received);
        -(self.start + (self.full - self.start).max(0) * progress / 1000)
    }

    pub fn floor_now(&self, now_ms: u64) -> i64 {
        self.floor_at(now_ms.saturating_sub(self.admitted_ms))
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Standing {
    /// Trust score in thousandths (0..=1000).
    pub trust_permille: i64,
    /// Everything the member has received, in the smallest unit.
    pub received: i64,
    /// Milliseconds since the member's admission; `None` for a founder.
    pub member_for_ms: Option<u64>,
}

fn param<T: std::str::FromStr>(
    params: &BTreeMap<String, String>,
    key: &str,
    default: T,
    check: impl Fn(&T) -> bool,
    expected: &str,
) -> Result<T, Rejection> {
    let Some(text) = params.get(key) else {
        return Ok(default);
    };
    match text.trim().parse::<T>() {
        Ok(value) if check(&value) => Ok(value),
        _ => Err(Rejection::rule(format!(
            "parameter {key} = {text:?}: expected {expected}"
        ))),
    }
}

impl Policy {
    /// Reads the `ledger.*` parameters; an unknown or malformed one is refused.
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<Policy, Rejection> {
        const KNOWN: &[&str] = &[
            "ledger.floor",
            "ledger.floor_max",
            "ledger.trust_bonus_percent",
            "ledger.history_bonus_permille",
            "ledger.ceiling",
            "ledger.ramp_start",
            "ledger.ramp_days",
            "ledger.ramp_received",
            "ledger.auto_accept_days",
            "ledger.demurrage_bp",
            "ledger.demurrage_threshold",
            "ledger.mediators",
        ];
        if let Some(unknown) = params
            .keys()
            .filter(|key| key.starts_with("ledger."))
            .find(|key| !KNOWN.contains(&key.as_str()))
        {
            return Err(Rejection::rule(format!(
                "unknown parameter {unknown}; the ledger's are {}",
                KNOWN.join(", ")
            )));
        }
        let d = Policy::default();
        let hours = |value: &i64| (0..=1_000_000).contains(value);
        let floor = param(params, "ledger.floor", d.floor, hours, "0 to 1000000")?;
        let policy = Policy {
            floor,
            floor_max: param(
                params,
                "ledger.floor_max",
                d.floor_max.max(floor),
                |value| hours(value) && *value >= floor,
                "a number at least ledger.floor",
            )?,
            trust_bonus_percent: param(
                params,
                "ledger.trust_bonus_percent",
                d.trust_bonus_percent,
                |value| (0..=1000).contains(value),
                "0 to 1000",
            )?,
            history_bonus_permille: param(
                params,
                "ledger.history_bonus_permille",
                d.history_bonus_permille,
                |value| (0..=1000).contains(value),
                "0 to 1000",
            )?,
            ceiling: param(params, "ledger.ceiling", d.ceiling, hours, "0 to 1000000")?,
            ramp_start: param(
                params,
                "ledger.ramp_start",
                d.ramp_start.min(floor),
                |value| hours(value) && *value <= floor,
                "a number at most ledger.floor",
            )?,
            ramp_days: param(
                params,
                "ledger.ramp_days",
                d.ramp_days,
                |value| *value <= 3650,
                "0 to 3650",
            )?,
            ramp_received: param(
                params,
                "ledger.ramp_received",
                d.ramp_received,
                hours,
                "0 to 1000000",
            )?,
            auto_accept_days: param(
                params,
                "ledger.auto_accept_days",
                d.auto_accept_days,
                |value| *value <= 365,
                "0 (off) to 365",
            )?,
            demurrage_bp: param(
                params,
                "ledger.demurrage_bp",
                d.demurrage_bp,
                |value| (0..=10_000).contains(value),
                "0 (off) to 10000",
            )?,
            demurrage_threshold: param(
                params,
                "ledger.demurrage_threshold",
                d.demurrage_threshold,
                hours,
                "0 to 1000000",
            )?,
            mediators: match params.get("ledger.mediators") {
                None => Vec::new(),
                Some(list) => list
                    .split(',')
                    .map(str::trim)
                    .filter(|did| !did.is_empty())
                    .map(|did| {
                        did.parse::<Did>().map_err(|error| {
                            Rejection::rule(format!("parameter ledger.mediators: {error}"))
                        })
                    })
                    .collect::<Result<_, _>>()?,
            },
        };
        Ok(policy)
    }

    /// The lowest balance `standing` allows, in the currency's smallest unit
    /// (negative): `floor + floor × trust × trust_bonus + received ×
    /// history_bonus`, capped at `floor_max`; for a member admitted after the
    /// founding, ramped from `ramp_start` by time and by hours received,
    /// whichever has come less far.
    pub fn floor_for(&self, currency: &CurrencySpec, standing: &Standing) -> i64 {
        match standing.member_for_ms {
            None => -self.full_depth(currency, standing),
            Some(ms) => self.ramp(currency, standing, 0).floor_at(ms),
        }
    }

    /// How deep a member may go once their ramp is over.
    fn full_depth(&self, currency: &CurrencySpec, standing: &Standing) -> i64 {
        let unit = currency.units_per_whole as i64;
        let base = self.floor * unit;
        let trust = standing.trust_permille.clamp(0, 1000);
        let trust_bonus = base * self.trust_bonus_percent / 100 * trust / 1000;
        let history_bonus = standing.received.max(0) / 1000 * self.history_bonus_permille;
        (base + trust_bonus + history_bonus).min(self.floor_max * unit)
    }

    /// A member admitted after the founding at `admitted_ms`: their floor
    /// deepens with time and with what they received (both needed). Only
    /// the time part moves with the clock, so views keep this and readers
    /// ask [`FloorRamp::floor_at`] for the floor now: the floor shown is
    /// the floor a payment signed now is held to.
    pub fn ramp(
        &self,
        currency: &CurrencySpec,
        standing: &Standing,
        admitted_ms: u64,
    ) -> FloorRamp {
        let unit = currency.units_per_whole as i64;
        let needed = self.ramp_received * unit;
        FloorRamp {
            admitted_ms,
            ramp_ms: self.ramp_days.saturating_mul(DAY_MS),
            start: self.ramp_start * unit,
            full: self.full_depth(currency, standing),
            by_received: if needed == 0 {
                1000
            } else {
                (standing.received.max(0) * 1000 / needed).min(1000)
            },
        }
    }

    pub fn ceiling(&self, currency: &CurrencySpec) -> i64 {
        self.ceiling * currency.units_per_whole as i64
    }

    /// The demurrage due for one period on `balance`; 0 when it is off or
    /// the balance is at or under the threshold.
    pub fn demurrage_on(&self, currency: &CurrencySpec, balance: i64) -> i64 {
        let over = balance - self.demurrage_threshold * currency.units_per_whole as i64;
        if self.demurrage_bp == 0 || over <= 0 {
            return 0;
        }
        over * self.demurrage_bp / 10_000
    }

    /// Whether `did` may mediate a dispute between `payer` and `payee`.
    pub fn may_mediate(&self, did: &Did, payer: &Did, payee: &Did) -> bool {
        did != payer && did != payee && (self.mediators.is_empty() || self.mediators.contains(did))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours() -> CurrencySpec {
        CurrencySpec {
            code: "hours".into(),
            unit: "minute".into(),
            units_per_whole: 60,
        }
    }

    #[test]
    fn the_floor_follows_the_seed_formula() {
        // The seed's example: baseline 100 h, trust 0.8, multiplier 0.3,
        // 1000 h cleared at 5 % → 174 h.
        let policy = Policy {
            floor: 100,
            floor_max: 1000,
            trust_bonus_percent: 30,
            history_bonus_permille: 50,
            ..Policy::default()
        };
        let standing = Standing {
            trust_permille: 800,
            received: 1000 * 60,
            member_for_ms: None,
        };
        assert_eq!(policy.floor_for(&hours(), &standing), -174 * 60);
        // Capped at floor_max.
        let capped = Policy {
            floor_max: 150,
            ..policy.clone()
        };
        assert_eq!(capped.floor_for(&hours(), &standing), -150 * 60);
        // The defaults: a founder with no history sits at −40 h.
        assert_eq!(
            Policy::default().floor_for(&hours(), &Standing::default()),
            -40 * 60
        );
    }

    #[test]
    fn a_new_member_ramps_from_ten_to_forty_hours_by_time_and_hours_received() {
        let policy = Policy {
            history_bonus_permille: 0,
            ..Policy::default()
        };
        let at = |days: u64, received_hours: i64| {
            policy.floor_for(
                &hours(),
                &Standing {
                    trust_permille: 0,
                    received: received_hours * 60,
                    member_for_ms: Some(days * DAY_MS),
                },
            ) / 60
        };
        assert_eq!(at(0, 0), -10);
        assert_eq!(at(45, 100), -25, "half the time, enough received");
        assert_eq!(at(90, 5), -25, "all the time, half the hours received");
        assert_eq!(at(90, 10), -40);
        assert_eq!(at(400, 400), -40);
    }

    #[test]
    fn parameters_are_read_and_checked() {
        let params = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect()
        };
        let policy = Policy::from_params(&params(&[
            ("ledger.floor", "20"),
            ("ledger.demurrage_bp", "200"),
            ("other.thing", "ignored"),
        ]))
        .unwrap();
        assert_eq!(policy.floor, 20);
        assert_eq!(policy.ramp_start, 10);
        assert_eq!(policy.demurrage_bp, 200);
        for (key, value, words) in [
            ("ledger.floor", "-3", "expected 0 to"),
            ("ledger.floor", "lots", "expected 0 to"),
            ("ledger.flor", "3", "unknown parameter"),
            ("ledger.ramp_start", "50", "at most ledger.floor"),
            ("ledger.mediators", "did:icn:nope", "ledger.mediators"),
        ] {
            let error = Policy::from_params(&params(&[(key, value)])).unwrap_err();
            assert!(error.to_string().contains(words), "{key}={value}: {error}");
        }
        // 2 % per period on what is above 50 h.
        assert_eq!(
            policy.demurrage_on(&hours(), 60 * 60),
            10 * 60 * 200 / 10_000
        );
        assert_eq!(policy.demurrage_on(&hours(), 50 * 60), 0);
    }
}
