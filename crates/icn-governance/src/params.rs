//! Membership and governance parameters: their defaults, how they parse,
//! and their values in an event's causal past.
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `member.admission` | `vouches` | `vouches`: admitted once vouched for; `proposal`: only by an add-member proposal |
//! | `member.vouches` | `2` | vouches an applicant needs (0–16) |
//! | `member.probation_days` | `90` | new members are provisional this long (0: full at once) |
//! | `gov.closer` | the first founder | the member whose node closes proposals |
//! | `gov.vetoers` | none | members (comma-separated DIDs) who may veto |
//! | `gov.appeal_days` | `14` | how long after a close electors may appeal |
//! | `gov.charter_threshold` | `2/3` | the least a charter amendment must need |
//! | `gov.reminder_hours` | `24` | remind electors who have not voted this long before the close |

use std::collections::BTreeMap;

use icn_identity::Did;
use icn_kernel::{Context, Genesis, Rejection};

use crate::{body::Fraction, reject};

pub const KEYS: &[&str] = &[
    "member.admission",
    "member.vouches",
    "member.probation_days",
    "gov.closer",
    "gov.vetoers",
    "gov.appeal_days",
    "gov.charter_threshold",
    "gov.reminder_hours",
];

fn number(key: &str, value: &str, max: u64) -> Result<u64, Rejection> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|number| *number <= max)
        .ok_or_else(|| {
            reject(format!(
                "{key} is a whole number from 0 to {max}, not {value:?}"
            ))
        })
}

fn dids(key: &str, value: &str) -> Result<Vec<Did>, Rejection> {
    value
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<Did>()
                .map_err(|_| reject(format!("{key}: {part:?} is not a DID")))
        })
        .collect()
}

/// Checks the membership and governance parameters among `params` (others
/// belong to other domains). With a context, DIDs must name members there.
pub fn check(
    params: &BTreeMap<String, String>,
    context: Option<&Context<'_>>,
) -> Result<(), Rejection> {
    for (key, value) in params {
        if !(key.starts_with("member.") || key.starts_with("gov.")) {
            continue;
        }
        match key.as_str() {
            "member.admission" => {
                if !["vouches", "proposal"].contains(&value.as_str()) {
                    return Err(reject("member.admission is `vouches` or `proposal`"));
                }
            }
            "member.vouches" => {
                number(key, value, 16)?;
            }
            "member.probation_days" => {
                number(key, value, 3_650)?;
            }
            "gov.appeal_days" => {
                number(key, value, 365)?;
            }
            "gov.reminder_hours" => {
                number(key, value, 24 * 30)?;
            }
            "gov.charter_threshold" => {
                Fraction::parse(value).ok_or_else(|| {
                    reject("gov.charter_threshold is a fraction such as 2/3, 75% or 0.5")
                })?;
            }
            "gov.closer" | "gov.vetoers" => {
                let named = dids(key, value)?;
                if key == "gov.closer" && named.len() != 1 {
                    return Err(reject("gov.closer names exactly one member"));
                }
                if let Some(context) = context {
                    for did in named {
                        context.active_member(&did)?;
                    }
                }
            }
            _ => {
                return Err(reject(format!(
                    "unknown parameter {key}; known: {}",
                    KEYS.join(", ")
                )));
            }
        }
    }
    Ok(())
}

pub fn admission<'a>(context: &'a Context<'_>) -> &'a str {
    context.param("member.admission").unwrap_or("vouches")
}

pub fn vouches(context: &Context<'_>) -> usize {
    let asked = context
        .param("member.vouches")
        .and_then(|value| value.parse().ok())
        .unwrap_or(2);
    let voters = context
        .coop
        .members_in(Some(context.past()))
        .iter()
        .filter(|(_, membership)| membership.may_vote())
        .count();
    vouches_needed(asked, voters)
}

/// The vouches an applicant needs: what the co-op asks for
/// (`member.vouches`), but never more than the members able to vouch, and
/// at least one. So a co-op founded by one person can admit its first
/// applicant (with the founder's vouch), and the rule tightens by itself
/// as the co-op grows.
pub fn vouches_needed(asked: usize, voters: usize) -> usize {
    asked.min(voters).max(1)
}

pub fn probation_days(context: &Context<'_>) -> u64 {
    context
        .param("member.probation_days")
        .and_then(|value| value.parse().ok())
        .unwrap_or(90)
}

pub fn appeal_days(context: &Context<'_>) -> u64 {
    context
        .param("gov.appeal_days")
        .and_then(|value| value.parse().ok())
        .unwrap_or(14)
}

pub fn reminder_hours(params: &BTreeMap<String, String>) -> u64 {
    params
        .get("gov.reminder_hours")
        .and_then(|value| value.parse().ok())
        .unwrap_or(24)
}

pub fn charter_threshold(context: &Context<'_>) -> Fraction {
    context
        .param("gov.charter_threshold")
        .and_then(Fraction::parse)
        .unwrap_or(Fraction::new(2, 3))
}

/// The closer: `gov.closer`, or else the first founder.
pub fn closer(params: &BTreeMap<String, String>, genesis: &Genesis) -> Did {
    params
        .get("gov.closer")
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(genesis.founders[0])
}

pub fn closer_in(context: &Context<'_>) -> Did {
    context
        .param("gov.closer")
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(context.genesis.founders[0])
}

pub fn vetoers_in(context: &Context<'_>) -> Vec<Did> {
    context
        .param("gov.vetoers")
        .and_then(|value| dids("gov.vetoers", value).ok())
        .unwrap_or_default()
}
