//! The UTC calendar, for statements, backups and dates members type: no
//! time-zone database, proleptic Gregorian from 1970.

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
