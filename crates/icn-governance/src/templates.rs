//! Governance templates: named rules a co-op reads, adapts and proposes
//! with. The built-in ones are the TOML files in `templates/governance/`,
//! compiled in; a co-op publishes its own with `gov.template`.

use serde::Deserialize;

use crate::body::{DAY_MS, Fraction, MINUTE_MS, Method, Rules, Template};
use crate::gov::check_rules;

const BUILTIN: &[&str] = &[
    include_str!("../../../templates/governance/simple-majority.toml"),
    include_str!("../../../templates/governance/quorum-vote.toml"),
    include_str!("../../../templates/governance/budget-approval.toml"),
    include_str!("../../../templates/governance/consensus-with-fallback.toml"),
    include_str!("../../../templates/governance/supermajority.toml"),
    include_str!("../../../templates/governance/unanimous.toml"),
    include_str!("../../../templates/governance/consent.toml"),
    include_str!("../../../templates/governance/advice.toml"),
];

/// A template file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateFile {
    name: String,
    description: String,
    method: String,
    threshold: Option<String>,
    max_blocks: Option<u32>,
    credits: Option<u32>,
    quorum: String,
    duration: String,
    early_close: bool,
    hidden: bool,
}

/// Parses `90s`, `30m`, `24h`, `7d` (or a combination such as `1d12h`).
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1_000,
            'm' => MINUTE_MS,
            'h' => 60 * MINUTE_MS,
            'd' => DAY_MS,
            'w' => 7 * DAY_MS,
            _ => return Err(format!("{text:?} is not a duration such as 30m, 24h or 7d")),
        };
        let value: u64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration such as 30m, 24h or 7d"))?;
        total = value
            .checked_mul(unit)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("{text:?} is too long"))?;
        number.clear();
    }
    if !number.is_empty() || total == 0 {
        return Err(format!("{text:?} is not a duration such as 30m, 24h or 7d"));
    }
    Ok(total)
}

fn fraction(what: &str, text: Option<&str>) -> Result<Fraction, String> {
    let text = text.ok_or_else(|| format!("this method needs a {what}"))?;
    Fraction::parse(text).ok_or_else(|| format!("{what} {text:?} is not a fraction such as 2/3"))
}

/// Reads a template file (TOML).
pub fn parse_template(text: &str) -> Result<Template, String> {
    let file: TemplateFile = toml::from_str(text).map_err(|error| error.to_string())?;
    let method = match file.method.as_str() {
        "majority" => Method::Majority,
        "supermajority" => Method::Supermajority {
            threshold: fraction("threshold", file.threshold.as_deref())?,
        },
        "unanimous" => Method::Unanimous,
        "consent" => Method::Consent {
            max_blocks: file.max_blocks.unwrap_or(0),
        },
        "consensus_fallback" => Method::ConsensusFallback {
            threshold: fraction("threshold", file.threshold.as_deref())?,
        },
        "advice" => Method::Advice,
        "quadratic" => Method::Quadratic {
            credits: file.credits.ok_or("quadratic voting needs `credits`")?,
        },
        other => {
            return Err(format!(
                "unknown method {other:?}: majority, supermajority, unanimous, consent, consensus_fallback, advice or quadratic"
            ));
        }
    };
    let rules = Rules {
        method,
        quorum: fraction("quorum", Some(&file.quorum))?,
        duration_ms: parse_duration(&file.duration)?,
        early_close: file.early_close,
        hidden: file.hidden,
    };
    check_rules(&rules).map_err(|rejection| rejection.to_string())?;
    Ok(Template {
        name: file.name,
        description: file.description,
        rules,
    })
}

/// The templates every co-op has.
pub fn builtin() -> Vec<Template> {
    BUILTIN
        .iter()
        .map(|text| parse_template(text).expect("the built-in templates are valid"))
        .collect()
}

/// A built-in template by name (`simple-vote` is the pilot's name for
/// `simple-majority`).
pub fn builtin_named(name: &str) -> Option<Template> {
    let name = if name == "simple-vote" {
        "simple-majority"
    } else {
        name
    };
    builtin().into_iter().find(|template| template.name == name)
}
