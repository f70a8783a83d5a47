//! Timestamps on the command line: RFC 3339 output, and `--since`/`--until`
//! input as RFC 3339, epoch milliseconds, or a relative age such as `1h`.

const MS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the Unix epoch, now.
pub use rebound_core::epoch_ms as now_ms;

/// `--since` / `--until`: `2024-05-01T12:00:00Z` (any RFC 3339 offset),
/// `1714564800000` (epoch ms) or `90s`, `15m`, `1h`, `7d` (that long ago).
pub fn point_in_time(s: &str) -> Result<i64, String> {
    point_in_time_at(s, now_ms())
}

fn point_in_time_at(s: &str, now: i64) -> Result<i64, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("the time is empty (use RFC 3339, epoch ms, or an age like 1h)".into());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map_err(|_| format!("{s:?} is too large for epoch milliseconds"));
    }
    if s.contains('-') || s.contains(':') {
        return parse_rfc3339(s);
    }
    let ago = age_ms(s)?;
    Ok(now.saturating_sub(ago))
}

/// `500ms`, `30s`, `15m`, `1h`, `7d`, `2w` in milliseconds.
fn age_ms(s: &str) -> Result<i64, String> {
    let bad = || {
        format!("{s:?} is not a time (use RFC 3339 like 2024-05-01T12:00:00Z, epoch ms, or an age like 30m, 1h, 7d)")
    };
    let i = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: i64 = s[..i].parse().map_err(|_| bad())?;
    let unit = match &s[i..] {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => MS_PER_DAY,
        "w" => 7 * MS_PER_DAY,
        _ => return Err(bad()),
    };
    n.checked_mul(unit).ok_or_else(bad)
}

/// Formats epoch ms as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn rfc3339(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` to epoch ms.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    let bad =
        |why: &str| format!("{s:?} is not an RFC 3339 time ({why}), e.g. 2024-05-01T12:00:00Z");
    let b = s.as_bytes();
    if b.len() < 20 {
        return Err(bad("too short"));
    }
    let num = |from: usize, len: usize| -> Result<i64, String> {
        let part = s.get(from..from + len).ok_or_else(|| bad("truncated"))?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad("expected digits"));
        }
        part.parse().map_err(|_| bad("expected digits"))
    };
    let sep = |at: usize, want: &[u8]| {
        if want.contains(&b[at]) {
            Ok(())
        } else {
            Err(bad("bad separator"))
        }
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    sep(4, b"-")?;
    sep(7, b"-")?;
    sep(10, b"Tt ")?;
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    sep(13, b":")?;
    sep(16, b":")?;
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) {
        return Err(bad("no such date"));
    }
    if h > 23 || mi > 59 || sec > 60 {
        return Err(bad("no such time of day"));
    }
    let mut i = 19;
    let mut millis = 0;
    if b[i] == b'.' {
        let start = i + 1;
        i = start;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start {
            return Err(bad("empty fraction"));
        }
        let frac = &s[start..i.min(start + 3)];
        millis = frac.parse::<i64>().map_err(|_| bad("bad fraction"))?
            * 10_i64.pow(3 - frac.len() as u32);
    }
    let offset_min = match &s[i..] {
        "Z" | "z" => 0,
        rest if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            sep(i + 3, b":")?;
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return Err(bad("bad offset"));
            }
            let m = oh * 60 + om;
            if rest.starts_with('-') {
                -m
            } else {
                m
            }
        }
        _ => return Err(bad("expected Z or an offset like +02:00")),
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    Ok(secs * 1000 + millis)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_714_564_800_123), "2024-05-01T12:00:00.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_rfc3339_with_offsets_and_fractions() {
        assert_eq!(parse_rfc3339("2024-05-01T12:00:00Z"), Ok(1_714_564_800_000));
        assert_eq!(
            parse_rfc3339("2024-05-01T14:00:00.5+02:00"),
            Ok(1_714_564_800_500)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01 11:30:00.123456-00:30"),
            Ok(1_714_564_800_123)
        );
        for ms in [0, 1_714_564_800_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Ok(ms));
        }
        assert!(parse_rfc3339("2023-02-29T00:00:00Z")
            .unwrap_err()
            .contains("no such date"));
        assert!(parse_rfc3339("2024-05-01T12:00:00").is_err());
        assert!(parse_rfc3339("2024-05-01T25:00:00Z").is_err());
    }

    #[test]
    fn points_in_time() {
        let now = 10 * MS_PER_DAY;
        assert_eq!(
            point_in_time_at("1714564800000", now),
            Ok(1_714_564_800_000)
        );
        assert_eq!(point_in_time_at("1h", now), Ok(now - 3_600_000));
        assert_eq!(point_in_time_at("2d", now), Ok(now - 2 * MS_PER_DAY));
        assert_eq!(
            point_in_time_at("2024-05-01T12:00:00Z", now),
            Ok(1_714_564_800_000)
        );
        assert!(point_in_time_at("soon", now)
            .unwrap_err()
            .contains("not a time"));
        assert!(point_in_time_at("5y", now).is_err());
        assert!(point_in_time_at("", now).is_err());
    }
}
