//! Durations and points in time on the command line: one grammar for every
//! flag, parsed by maintained crates (humantime for durations, jiff for
//! RFC 3339).
//!
//! - A duration is humantime's: `500ms`, `30s`, `5m`, `1h 30m`, `7d`, `2w`;
//!   a bare number is seconds (`30`, `0.5`).
//! - A point in time is RFC 3339 (`2024-05-01T12:00:00Z`, any offset),
//!   epoch milliseconds (`1714564800000`), or a duration meaning that long
//!   ago (`1h`, `7d`).

use std::time::Duration;

/// Milliseconds since the Unix epoch, now.
pub use rebound_core::epoch_ms as now_ms;

/// Parses a duration flag.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return if secs.is_finite() && secs >= 0.0 {
            Ok(Duration::from_secs_f64(secs))
        } else {
            Err(format!("{s:?} is not a valid duration"))
        };
    }
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration ({e}); use e.g. 500ms, 30s, 5m, 1h, 7d"))
}

/// Parses `--since` / `--until` / `--from`-style times to epoch ms.
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
    let ago = humantime::parse_duration(s).map_err(|e| {
        format!("{s:?} is not a time ({e}); use RFC 3339 like 2024-05-01T12:00:00Z, epoch ms, or an age like 30m, 1h, 7d")
    })?;
    let ago = i64::try_from(ago.as_millis()).map_err(|_| format!("{s:?} is too long ago"))?;
    Ok(now.saturating_sub(ago))
}

/// Formats epoch ms as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339(ms: i64) -> String {
    match jiff::Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => format!("@{ms}"),
    }
}

/// Parses an RFC 3339 time with an offset (`Z`, `+02:00`) to epoch ms.
pub fn parse_rfc3339(s: &str) -> Result<i64, String> {
    s.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e}), e.g. 2024-05-01T12:00:00Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400_000;

    #[test]
    fn one_duration_grammar() {
        assert_eq!(duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(duration("0.5"), Ok(Duration::from_millis(500)));
        assert!(duration("soon").unwrap_err().contains("not a duration"));
        assert!(duration("-1").is_err());
    }

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
        for ms in [0, 1_714_564_800_123, 951_782_400_000, 4_102_444_799_999] {
            assert_eq!(parse_rfc3339(&rfc3339(ms)), Ok(ms));
        }
        assert!(
            parse_rfc3339("2023-02-29T00:00:00Z").is_err(),
            "no such date"
        );
        assert!(parse_rfc3339("2024-05-01T12:00:00").is_err(), "no offset");
        assert!(parse_rfc3339("2024-05-01T25:00:00Z").is_err());
    }

    #[test]
    fn points_in_time() {
        let now = 10 * DAY;
        assert_eq!(
            point_in_time_at("1714564800000", now),
            Ok(1_714_564_800_000)
        );
        assert_eq!(point_in_time_at("1h", now), Ok(now - 3_600_000));
        assert_eq!(point_in_time_at("2d", now), Ok(now - 2 * DAY));
        assert_eq!(
            point_in_time_at("2024-05-01T12:00:00Z", now),
            Ok(1_714_564_800_000)
        );
        assert!(point_in_time_at("soon", now)
            .unwrap_err()
            .contains("not a time"));
        assert!(point_in_time_at("5 fortnights", now).is_err());
        assert!(point_in_time_at("", now).is_err());
    }
}
