//! Amounts as people write them: `3h`, `1h30m`, `90m`, `2.5h`; plain units
//! for currencies not counted in time (a bare number of hours is refused).

use icn_kernel::CurrencySpec;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AmountError {
    #[error("amount {0:?} is empty")]
    Empty(String),
    #[error("amount {0:?} is not a number of units, nor like 3h, 1h30m or 90m")]
    Malformed(String),
    #[error(
        "amount {0:?} is negative; a payment goes from you to the payee (the payee can ask you for one instead)"
    )]
    Negative(String),
    #[error("amount {0:?} is zero; a transfer moves at least one unit")]
    Zero(String),
    #[error("amount {0:?} is too large")]
    TooLarge(String),
    #[error("amount {0:?} has no unit: write {0}h for hours or {0}m for minutes")]
    NoUnit(String),
    #[error(
        "`h` and `m` amounts are for currencies counted in minutes; {currency} is counted in {unit}s"
    )]
    NotTime { currency: String, unit: String },
}

/// Parses an amount into the currency's smallest unit. Negative amounts do
/// not parse: a transfer always goes from payer to payee.
pub fn parse_amount(text: &str, currency: &CurrencySpec) -> Result<u64, AmountError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(AmountError::Empty(text.to_owned()));
    }
    if trimmed.starts_with('-') {
        return Err(AmountError::Negative(text.to_owned()));
    }
    let malformed = || AmountError::Malformed(text.to_owned());
    let too_large = || AmountError::TooLarge(text.to_owned());
    let units = if trimmed.bytes().all(|b| b.is_ascii_digit()) {
        // "1" moved one minute where members meant an hour: for time, a
        // bare number is refused rather than guessed.
        if currency.units_per_whole == 60 {
            return Err(AmountError::NoUnit(trimmed.to_owned()));
        }
        trimmed.parse::<u64>().map_err(|_| too_large())?
    } else {
        if currency.units_per_whole != 60 {
            return Err(AmountError::NotTime {
                currency: currency.code.clone(),
                unit: currency.unit.clone(),
            });
        }
        parse_time(trimmed)
            .ok_or_else(malformed)?
            .ok_or_else(too_large)?
    };
    if units == 0 {
        return Err(AmountError::Zero(text.to_owned()));
    }
    if units > i64::MAX as u64 {
        return Err(too_large());
    }
    Ok(units)
}

/// `3h`, `1h30m`, `90m`, `2.5h` → minutes; `None` if malformed, `Some(None)`
/// if it overflows.
fn parse_time(text: &str) -> Option<Option<u64>> {
    let lower = text.to_ascii_lowercase();
    let (hours, minutes) = match lower.split_once('h') {
        Some((hours, rest)) => (Some(hours), rest.strip_suffix('m').or(Some(rest))),
        None => (None, Some(lower.strip_suffix('m')?)),
    };
    let mut total: u64 = 0;
    if let Some(hours) = hours {
        if hours.is_empty() {
            return None;
        }
        let minutes_in_hours = match hours.split_once('.') {
            Some((whole, fraction)) => {
                // Decimal hours: at most to the minute (2.25h = 135m).
                if whole.is_empty() && fraction.is_empty() {
                    return None;
                }
                let whole: u64 = if whole.is_empty() { 0 } else { digits(whole)? };
                let scale = 10u64.checked_pow(fraction.len() as u32)?;
                let fraction_value: u64 = digits(fraction)?;
                let fraction_minutes = fraction_value.checked_mul(60)?;
                if fraction_minutes % scale != 0 {
                    return None;
                }
                whole
                    .checked_mul(60)
                    .and_then(|m| m.checked_add(fraction_minutes / scale))
            }
            None => digits(hours)?.checked_mul(60),
        };
        let Some(minutes_in_hours) = minutes_in_hours else {
            return Some(None);
        };
        total = minutes_in_hours;
    }
    match minutes {
        Some("") if hours.is_some() => {}
        Some(minutes) => {
            let Some(sum) = total.checked_add(digits(minutes)?) else {
                return Some(None);
            };
            total = sum;
        }
        None => {}
    }
    Some(Some(total))
}

fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Shows an amount the way members read it: `3:30` for hours (h:mm), plain
/// units otherwise. Negative amounts get a leading minus.
pub fn format_amount(units: i64, currency: &CurrencySpec) -> String {
    let sign = if units < 0 { "-" } else { "" };
    let magnitude = units.unsigned_abs();
    if currency.units_per_whole == 60 {
        format!("{sign}{}:{:02}", magnitude / 60, magnitude % 60)
    } else {
        format!("{sign}{magnitude} {}", currency.unit)
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
    fn amounts_parse_as_people_write_them() {
        let h = hours();
        for (text, minutes) in [
            ("3h", 180),
            ("1h30m", 90),
            ("1h30", 90),
            ("90m", 90),
            ("2.5h", 150),
            ("0.25h", 15),
            (" 4H ", 240),
        ] {
            assert_eq!(parse_amount(text, &h), Ok(minutes), "{text}");
        }
        for bad in [
            "", "h", "m", "3x", "-3h", "1.5m", "0.01h", "3h-5m", "1h1h", ".",
        ] {
            assert!(parse_amount(bad, &h).is_err(), "{bad:?} parsed");
        }
        assert!(matches!(parse_amount("0h", &h), Err(AmountError::Zero(_))));
        // A bare number is not an amount of time: 1 is neither 1h nor 1m.
        assert_eq!(parse_amount("1", &h), Err(AmountError::NoUnit("1".into())));
        assert_eq!(
            parse_amount(" 90 ", &h).unwrap_err().to_string(),
            "amount \"90\" has no unit: write 90h for hours or 90m for minutes"
        );
        assert!(matches!(
            parse_amount("999999999999999999h", &h),
            Err(AmountError::TooLarge(_))
        ));
        let euros = CurrencySpec {
            code: "eur".into(),
            unit: "cent".into(),
            units_per_whole: 100,
        };
        assert!(matches!(
            parse_amount("3h", &euros),
            Err(AmountError::NotTime { .. })
        ));
        assert_eq!(parse_amount("250", &euros), Ok(250));
    }

    #[test]
    fn amounts_format_as_h_mm() {
        assert_eq!(format_amount(90, &hours()), "1:30");
        assert_eq!(format_amount(-605, &hours()), "-10:05");
        assert_eq!(format_amount(0, &hours()), "0:00");
    }
}
