//! Choosing DLQ records: `partition:offset` references and the
//! `--grep` / `--since` / `--until` filter.

use std::fmt;

use super::entry::DlqEntry;
use super::read::TopicReader;
use rebound_core::Record;

/// `P:O`, or a bare `O` meaning "in the only partition".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct OffsetRef {
    /// Partition, when given.
    pub partition: Option<i32>,
    /// Offset in the DLQ topic.
    pub offset: i64,
}

impl fmt::Display for OffsetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.partition {
            Some(p) => write!(f, "{p}:{}", self.offset),
            None => write!(f, "{}", self.offset),
        }
    }
}

/// Parses `P:O` or `O` (both non-negative integers).
pub fn offset_ref(s: &str) -> Result<OffsetRef, String> {
    let bad = || {
        format!("{s:?} is not an offset (use PARTITION:OFFSET like 0:42, or OFFSET when the topic has one partition)")
    };
    let s = s.trim();
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    match s.split_once(':') {
        Some((p, o)) if digits(p) && digits(o) => Ok(OffsetRef {
            partition: Some(p.parse().map_err(|_| bad())?),
            offset: o.parse().map_err(|_| bad())?,
        }),
        None if digits(s) => Ok(OffsetRef {
            partition: None,
            offset: s.parse().map_err(|_| bad())?,
        }),
        _ => Err(bad()),
    }
}

/// Resolves `r` against the topic: fills in the partition of a bare offset
/// and checks that the partition exists and still holds the offset (an
/// offset past the end is found missing when read). `flag` names the flag
/// in errors.
pub fn resolve(
    reader: &TopicReader,
    topic: &str,
    r: OffsetRef,
    flag: &str,
) -> Result<(i32, i64), String> {
    let partition = match r.partition {
        Some(p) => p,
        None => match reader.spans() {
            [only] => only.partition,
            spans => {
                return Err(format!(
                    "{flag} {r}: {topic} has {} partitions, so give PARTITION:OFFSET",
                    spans.len()
                ))
            }
        },
    };
    let Some(span) = reader.span(partition) else {
        return Err(format!(
            "{flag} {r}: {topic} has no partition {partition} (it has {})",
            reader.spans().len()
        ));
    };
    if r.offset < span.low {
        return Err(format!(
            "{flag} {r}: offset {} of partition {partition} of {topic} was deleted (the partition starts at {})",
            r.offset, span.low
        ));
    }
    Ok((partition, r.offset))
}

/// The `list` / `replay --grep` filter.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Lower-cased substring of the error message.
    pub grep: Option<String>,
    /// Last failure at or after, epoch ms.
    pub since: Option<i64>,
    /// Last failure at or before, epoch ms.
    pub until: Option<i64>,
}

impl Filter {
    /// A filter; `grep` is matched case-insensitively.
    pub fn new(grep: Option<&str>, since: Option<i64>, until: Option<i64>) -> Self {
        Filter {
            grep: grep.map(str::to_lowercase),
            since,
            until,
        }
    }

    /// Whether `rec` passes. With `--since`/`--until`, records without a
    /// `rebound.last.failure` header never pass.
    pub fn matches(&self, rec: &Record) -> bool {
        let e = DlqEntry::new(rec);
        if let Some(g) = &self.grep {
            if !e.error_contains(g) {
                return false;
            }
        }
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(at) = e.last_failure() else {
            return false;
        };
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at <= u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebound_core::headers as h;
    use rebound_core::Header;

    #[test]
    fn parses_offsets() {
        assert_eq!(
            offset_ref("2:41"),
            Ok(OffsetRef {
                partition: Some(2),
                offset: 41
            })
        );
        assert_eq!(
            offset_ref("7"),
            Ok(OffsetRef {
                partition: None,
                offset: 7
            })
        );
        for bad in ["", "a", "1:", ":1", "-1", "1:-2", "1:2:3", "0x10"] {
            assert!(
                offset_ref(bad).unwrap_err().contains("not an offset"),
                "{bad}"
            );
        }
    }

    #[test]
    fn filters_by_message_and_time() {
        let mut r = Record::new("t.dlq", 0, 0);
        r.headers = vec![
            Header {
                name: h::ERROR_MESSAGE.into(),
                value: Some(b"HTTP 503 from sink".to_vec()),
            },
            Header {
                name: h::LAST_FAILURE.into(),
                value: Some(b"1000".to_vec()),
            },
        ];
        assert!(Filter::new(Some("http 503"), None, None).matches(&r));
        assert!(!Filter::new(Some("timeout"), None, None).matches(&r));
        assert!(Filter::new(None, Some(1000), Some(1000)).matches(&r));
        assert!(!Filter::new(None, Some(1001), None).matches(&r));
        assert!(!Filter::new(None, None, Some(999)).matches(&r));
        r.headers.pop();
        assert!(!Filter::new(None, Some(0), None).matches(&r));
        assert!(Filter::new(None, None, None).matches(&r));
    }
}
