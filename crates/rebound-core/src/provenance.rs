//! The provenance of a failed record, the one contract between whatever
//! writes retry-tier and DLQ records (the worker's dead-letter layer, the
//! exactly-once pipeline, the scheduler's ingress) and whatever reads them
//! back (the worker on a tier hop, `rebound dlq list|show|replay`).
//! Header names are in [`crate::headers`]; values are UTF-8, numbers in
//! decimal, times in epoch milliseconds.

use crate::headers as h;
use crate::{HandlerError, Record};

/// What the provenance headers of a record say. A header that is missing,
/// empty or not a number where one is expected reads as `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Provenance {
    /// `rebound.original.topic`: where the record was first consumed.
    pub original_topic: Option<String>,
    /// `rebound.original.partition`.
    pub original_partition: Option<i32>,
    /// `rebound.original.offset`.
    pub original_offset: Option<i64>,
    /// `rebound.original.timestamp`.
    pub original_timestamp: Option<i64>,
    /// `rebound.consumer.group` that failed it.
    pub consumer_group: Option<String>,
    /// `rebound.attempt`: attempts made so far.
    pub attempts: Option<u32>,
    /// `rebound.error.kind`: `transient`, `permanent` or `throttled`.
    pub error_kind: Option<String>,
    /// `rebound.error.message` (as written, not trimmed).
    pub error_message: Option<String>,
    /// `rebound.first.failure`.
    pub first_failure: Option<i64>,
    /// `rebound.last.failure`.
    pub last_failure: Option<i64>,
    /// `rebound.due`: when a retry-tier record may run.
    pub due: Option<i64>,
}

impl Provenance {
    /// Reads the provenance headers of `rec`.
    pub fn read(rec: &Record) -> Provenance {
        let text = |name: &str| {
            rec.header_str(name)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let number = |name: &str| text(name).and_then(|s| s.parse::<i64>().ok());
        Provenance {
            original_topic: text(h::ORIGINAL_TOPIC),
            original_partition: text(h::ORIGINAL_PARTITION).and_then(|s| s.parse().ok()),
            original_offset: number(h::ORIGINAL_OFFSET),
            original_timestamp: number(h::ORIGINAL_TIMESTAMP),
            consumer_group: text(h::CONSUMER_GROUP),
            attempts: text(h::ATTEMPT).and_then(|s| s.parse().ok()),
            error_kind: text(h::ERROR_KIND),
            error_message: rec.header_str(h::ERROR_MESSAGE).map(str::to_string),
            first_failure: number(h::FIRST_FAILURE),
            last_failure: number(h::LAST_FAILURE),
            due: number(h::DUE),
        }
    }

    /// `rebound.due` alone (the worker reads it for every retry-tier record;
    /// the rest of the provenance is not needed there).
    pub fn due(rec: &Record) -> Option<i64> {
        rec.header_str(h::DUE).and_then(|d| d.trim().parse().ok())
    }

    /// The topic the record was first consumed from: the header, or the
    /// record's own topic when it has never failed before.
    pub fn original_topic_or<'a>(&'a self, rec: &'a Record) -> &'a str {
        self.original_topic.as_deref().unwrap_or(&rec.topic)
    }

    /// The headers to set on the record written for a failure of `rec`
    /// (its own headers are kept besides): original coordinates from the
    /// first failure on, attempts accumulated across hops, the error, the
    /// failure times, and `rebound.due` when `due` is given (a retry tier).
    /// When `due` is `None` the writer must drop any `rebound.due` it copied.
    pub fn failure_headers(
        rec: &Record,
        err: &HandlerError,
        group: &str,
        due: Option<i64>,
        now_ms: i64,
    ) -> Vec<(&'static str, Vec<u8>)> {
        let before = Provenance::read(rec);
        let mut out: Vec<(&'static str, Vec<u8>)> = Vec::with_capacity(11);
        let mut put = |name, value: String| out.push((name, value.into_bytes()));
        if rec.header_str(h::ORIGINAL_TOPIC).is_none() {
            put(h::ORIGINAL_TOPIC, rec.topic.to_string());
            put(h::ORIGINAL_PARTITION, rec.partition.to_string());
            put(h::ORIGINAL_OFFSET, rec.offset.to_string());
            if let Some(ts) = rec.timestamp {
                put(h::ORIGINAL_TIMESTAMP, ts.to_string());
            }
        }
        if rec.header_str(h::FIRST_FAILURE).is_none() {
            put(h::FIRST_FAILURE, now_ms.to_string());
        }
        put(h::CONSUMER_GROUP, group.to_string());
        let attempts = before.attempts.unwrap_or(0) + err.attempts.max(1);
        put(h::ATTEMPT, attempts.to_string());
        put(h::ERROR_KIND, err.kind.as_str().to_string());
        put(h::ERROR_MESSAGE, err.message.clone());
        put(h::LAST_FAILURE, now_ms.to_string());
        if let Some(due) = due {
            put(h::DUE, due.to_string());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Header;

    fn with(headers: Vec<(&str, &str)>) -> Record {
        let mut r = Record::new("orders.retry.1", 0, 7);
        r.headers = headers
            .into_iter()
            .map(|(n, v)| Header {
                name: n.into(),
                value: Some(v.as_bytes().to_vec()),
            })
            .collect();
        r
    }

    #[test]
    fn reads_what_was_written_and_tolerates_damage() {
        let r = with(vec![
            (h::ORIGINAL_TOPIC, "orders"),
            (h::ORIGINAL_PARTITION, "3"),
            (h::ORIGINAL_OFFSET, " 42 "),
            (h::ATTEMPT, "two"),
            (h::ERROR_MESSAGE, " Upstream 503 "),
            (h::DUE, ""),
        ]);
        let p = Provenance::read(&r);
        assert_eq!(p.original_topic.as_deref(), Some("orders"));
        assert_eq!(p.original_partition, Some(3));
        assert_eq!(p.original_offset, Some(42));
        assert_eq!(p.attempts, None, "not a number");
        assert_eq!(p.error_message.as_deref(), Some(" Upstream 503 "));
        assert_eq!(p.due, None, "empty");
        assert_eq!(p.original_topic_or(&r), "orders");
        assert_eq!(
            Provenance::read(&Record::new("t", 0, 0)),
            Provenance::default()
        );
    }

    #[test]
    fn a_second_failure_keeps_the_origin_and_adds_attempts() {
        let mut first = Record::new("orders", 3, 42);
        first.timestamp = Some(1_000);
        let mut err = HandlerError::transient("boom");
        err.attempts = 3;
        let hs = Provenance::failure_headers(&first, &err, "g", Some(6_000), 5_000);
        let mut tier = Record::new("orders.retry.1", 0, 7);
        tier.headers = hs
            .into_iter()
            .map(|(n, v)| Header {
                name: n.into(),
                value: Some(v),
            })
            .collect();
        let p = Provenance::read(&tier);
        assert_eq!(
            (
                p.original_topic.as_deref(),
                p.original_partition,
                p.original_offset
            ),
            (Some("orders"), Some(3), Some(42))
        );
        assert_eq!(
            (p.attempts, p.due, p.first_failure),
            (Some(3), Some(6_000), Some(5_000))
        );
        let again =
            Provenance::failure_headers(&tier, &HandlerError::permanent("bad"), "g", None, 9_000);
        let names: Vec<&str> = again.iter().map(|(n, _)| *n).collect();
        assert!(
            !names.contains(&h::ORIGINAL_TOPIC),
            "origin is kept, not rewritten"
        );
        assert!(!names.contains(&h::FIRST_FAILURE));
        assert!(!names.contains(&h::DUE));
        let attempt = again.iter().find(|(n, _)| *n == h::ATTEMPT).unwrap();
        assert_eq!(attempt.1, b"4");
    }
}
