//! `--from`: where reading starts.

use rebound_worker::reader::StartAt;

use crate::time::parse_rfc3339;

/// `beginning`, `end`, an offset (`42`), a time as RFC 3339
/// (`2024-05-01T12:00:00Z`) or as epoch milliseconds after `@`
/// (`@1714564800000`).
pub fn start_at(s: &str) -> Result<StartAt, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "{s:?} is not a start: use beginning, end, an offset like 42, \
             an RFC 3339 time like 2024-05-01T12:00:00Z, or epoch ms like @1714564800000"
        )
    };
    match s {
        "beginning" | "earliest" => Ok(StartAt::Beginning),
        "end" | "latest" => Ok(StartAt::End),
        _ if s.starts_with('@') => {
            let ms = &s[1..];
            if ms.is_empty() || !ms.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            ms.parse().map(StartAt::Timestamp).map_err(|_| bad())
        }
        _ if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().map(StartAt::Offset).map_err(|_| bad())
        }
        _ if s.contains('-') || s.contains(':') => parse_rfc3339(s).map(StartAt::Timestamp),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts() {
        assert_eq!(start_at("beginning"), Ok(StartAt::Beginning));
        assert_eq!(start_at("end"), Ok(StartAt::End));
        assert_eq!(start_at("42"), Ok(StartAt::Offset(42)));
        assert_eq!(
            start_at("@1714564800000"),
            Ok(StartAt::Timestamp(1_714_564_800_000))
        );
        assert_eq!(
            start_at("2024-05-01T12:00:00.123Z"),
            Ok(StartAt::Timestamp(1_714_564_800_123))
        );
        assert!(start_at("2024-05-01").unwrap_err().contains("RFC 3339"));
        assert!(start_at("soon").unwrap_err().contains("not a start"));
        assert!(start_at("@").is_err());
        assert!(start_at("-3").is_err());
    }
}
