//! RFC 3339 timestamps from epoch milliseconds and back, and UTC calendar
//! arithmetic (no clock is read here).

use crate::Ms;

const DAY_MS: Ms = 86_400_000;

/// `(year, month 1..=12, day 1..=31)` of a day count since 1970-01-01
/// (Howard Hinnant's civil_from_days).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m as u32, d as u32)
}

/// Days since 1970-01-01 of a civil date (Hinnant's days_from_civil).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Midnight UTC of the day holding `ms`.
pub fn day_start(ms: Ms) -> Ms {
    ms - ms % DAY_MS
}

/// Midnight UTC of the first day of the month holding `ms`.
pub fn month_start(ms: Ms) -> Ms {
    let (y, m, _) = civil_from_days((ms / DAY_MS) as i64);
    days_from_civil(y, m, 1).max(0) as Ms * DAY_MS
}

/// Midnight UTC of the first day of the month after the one holding `ms`.
pub fn next_month_start(ms: Ms) -> Ms {
    let (y, m, _) = civil_from_days((ms / DAY_MS) as i64);
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    days_from_civil(y, m, 1).max(0) as Ms * DAY_MS
}

/// `2026-11-28T08:57:28.123Z`.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1_000;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3_600, rem % 3_600 / 60, rem % 60, ms % 1_000)
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fff]Z` (UTC only, years 1970..=9999),
/// the form [`rfc3339`] writes. `None` for anything else.
pub fn parse_rfc3339(s: &str) -> Option<Ms> {
    let b = s.as_bytes();
    if b.len() < 20 || b.len() > 30 || !b.is_ascii() {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        t.bytes().all(|c| c.is_ascii_digit()).then(|| t.parse().ok())?
    };
    let sep = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if sep.iter().any(|(i, c)| b[*i] != *c) || b[b.len() - 1] != b'Z' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let frac = match &s[19..s.len() - 1] {
        "" => 0,
        f if f.len() >= 2 && f.len() <= 10 && f.starts_with('.') => {
            let digits = &f[1..];
            let ms3: String = digits.chars().chain(std::iter::repeat('0')).take(3).collect();
            digits.bytes().all(|c| c.is_ascii_digit()).then(|| ms3.parse::<u64>().ok())??
        }
        _ => return None,
    };
    if y < 1970 || !(1..=12).contains(&mo) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    if d == 0 || civil_from_days(days) != (i64::from(y), mo, d) {
        return None;
    }
    let secs = days as u64 * 86_400 + u64::from(h) * 3_600 + u64::from(mi) * 60 + u64::from(se);
    Some(secs * 1_000 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_856_248_123), "2026-11-28T08:57:28.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn parses_what_it_formats() {
        for ms in [0, 1_795_856_248_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Some(ms));
        }
        assert_eq!(parse_rfc3339("2026-11-28T08:57:28Z"), Some(1_795_856_248_000));
        for bad in [
            "",
            "2026-02-30T00:00:00Z",
            "2026-11-28 08:57:28Z",
            "2026-11-28T08:57:28+01:00",
            "1969-12-31T23:59:59Z",
            "2026-11-28T24:00:00Z",
            "2026-11-28T08:57:28.Z",
            "２026-11-28T08:57:28Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn calendar() {
        let t = 1_795_856_248_123; // 2026-11-28T08:57:28.123Z
        assert_eq!(rfc3339(day_start(t)), "2026-11-28T00:00:00.000Z");
        assert_eq!(rfc3339(month_start(t)), "2026-11-01T00:00:00.000Z");
        assert_eq!(rfc3339(next_month_start(t)), "2026-12-01T00:00:00.000Z");
        let dec = parse_rfc3339("2026-12-31T23:59:59.999Z").unwrap();
        assert_eq!(rfc3339(next_month_start(dec)), "2027-01-01T00:00:00.000Z");
        let feb = parse_rfc3339("2028-02-29T12:00:00Z").unwrap();
        assert_eq!(rfc3339(next_month_start(feb)), "2028-03-01T00:00:00.000Z");
    }
}
