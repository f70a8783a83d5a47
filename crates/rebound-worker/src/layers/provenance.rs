//! Building retry-tier and DLQ records: the original record plus the
//! documented provenance headers (`rebound_core::headers`). Pure logic.

use std::time::Duration;

use rebound_core::headers as h;
use rebound_core::{HandlerError, Provenance, Record};
use rebound_producer::OutRecord;

/// Names of the retry tiers and the DLQ of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicNames {
    /// Retry tier pattern with `{topic}` and `{n}` (1-based), default `{topic}.retry.{n}`.
    pub tier: String,
    /// DLQ pattern with `{topic}`, default `{topic}.dlq`.
    pub dlq: String,
}

impl Default for TopicNames {
    fn default() -> Self {
        TopicNames {
            tier: "{topic}.retry.{n}".into(),
            dlq: "{topic}.dlq".into(),
        }
    }
}

impl TopicNames {
    /// Retry tier `n` (1-based) of `topic`.
    pub fn tier(&self, topic: &str, n: usize) -> String {
        self.tier
            .replace("{topic}", topic)
            .replace("{n}", &n.to_string())
    }

    /// The DLQ of `topic`.
    pub fn dlq(&self, topic: &str) -> String {
        self.dlq.replace("{topic}", topic)
    }

    /// Which tier (1-based) of `original` the topic `current` is; 0 when it
    /// is none of the first `tiers` tiers (the main topic).
    pub fn tier_index(&self, original: &str, current: &str, tiers: usize) -> usize {
        (1..=tiers)
            .find(|n| self.tier(original, *n) == current)
            .unwrap_or(0)
    }
}

/// Where a failed record goes next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Retry tier `n` (1-based), due after `delay`.
    Tier(usize, Duration),
    /// The dead-letter queue.
    Dlq,
}

/// What is known about a failing record's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The topic it was first consumed from.
    pub original_topic: String,
    /// Attempts made before this consumption (from `rebound.attempt`).
    pub previous_attempts: u32,
}

impl History {
    /// Reads the history from the record's headers (a record seen for the
    /// first time has none).
    pub fn of(rec: &Record) -> History {
        let p = Provenance::read(rec);
        History {
            original_topic: p.original_topic_or(rec).to_string(),
            previous_attempts: p.attempts.unwrap_or(0),
        }
    }
}

/// The record to write for `route`: key, value and non-rebound headers of
/// `rec` kept, plus the provenance headers ([`Provenance::failure_headers`]:
/// original coordinates from the first failure, attempts, error, failure
/// times, and the due time of a retry tier).
pub fn failed_record(
    rec: &Record,
    err: &HandlerError,
    group: &str,
    route: Route,
    dest_topic: String,
    now_ms: i64,
) -> OutRecord {
    let mut out = OutRecord::from_record(rec, dest_topic);
    let due = match route {
        Route::Tier(_, delay) => Some(now_ms + delay.as_millis() as i64),
        Route::Dlq => None,
    };
    if due.is_none() {
        out.headers.retain(|x| x.name != h::DUE);
    }
    for (name, value) in Provenance::failure_headers(rec, err, group, due, now_ms) {
        out.set_header(name, value);
    }
    out
}

#[cfg(test)]
mod tests {
    use rebound_core::Header;

    use super::*;

    fn rec() -> Record {
        let mut r = Record::new("orders", 3, 42);
        r.key = Some(b"k".to_vec());
        r.value = Some(b"v".to_vec());
        r.timestamp = Some(1_000);
        r.headers.push(Header {
            name: "trace".into(),
            value: Some(b"abc".to_vec()),
        });
        r
    }

    #[test]
    fn names() {
        let n = TopicNames::default();
        assert_eq!(n.tier("orders", 2), "orders.retry.2");
        assert_eq!(n.dlq("orders"), "orders.dlq");
        assert_eq!(n.tier_index("orders", "orders.retry.2", 3), 2);
        assert_eq!(n.tier_index("orders", "orders", 3), 0);
        assert_eq!(n.tier_index("orders", "orders.retry.4", 3), 0);
    }

    #[test]
    fn first_failure_to_a_tier_records_the_origin() {
        let r = rec();
        let mut err = HandlerError::transient("boom");
        err.attempts = 3;
        let out = failed_record(
            &r,
            &err,
            "g",
            Route::Tier(1, Duration::from_secs(5)),
            "orders.retry.1".into(),
            10_000,
        );
        assert_eq!(out.topic, "orders.retry.1");
        assert_eq!(out.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(out.value.as_deref(), Some(&b"v"[..]));
        assert_eq!(out.header_str("trace"), Some("abc"));
        assert_eq!(out.header_str(h::ORIGINAL_TOPIC), Some("orders"));
        assert_eq!(out.header_str(h::ORIGINAL_PARTITION), Some("3"));
        assert_eq!(out.header_str(h::ORIGINAL_OFFSET), Some("42"));
        assert_eq!(out.header_str(h::ORIGINAL_TIMESTAMP), Some("1000"));
        assert_eq!(out.header_str(h::CONSUMER_GROUP), Some("g"));
        assert_eq!(out.header_str(h::ATTEMPT), Some("3"));
        assert_eq!(out.header_str(h::ERROR_KIND), Some("transient"));
        assert_eq!(out.header_str(h::ERROR_MESSAGE), Some("boom"));
        assert_eq!(out.header_str(h::FIRST_FAILURE), Some("10000"));
        assert_eq!(out.header_str(h::LAST_FAILURE), Some("10000"));
        assert_eq!(out.header_str(h::DUE), Some("15000"));
    }

    #[test]
    fn a_tier_record_keeps_its_origin_and_accumulates_attempts() {
        let r = rec();
        let first = failed_record(
            &r,
            &HandlerError::transient("a"),
            "g",
            Route::Tier(1, Duration::from_secs(1)),
            "orders.retry.1".into(),
            1,
        );
        // Consume it back from the tier.
        let mut tier = Record::new("orders.retry.1", 0, 7);
        tier.key = first.key.clone();
        tier.value = first.value.clone();
        tier.headers = first.headers.clone();
        let hist = History::of(&tier);
        assert_eq!(hist.original_topic, "orders");
        assert_eq!(hist.previous_attempts, 1);
        let dlq = failed_record(
            &tier,
            &HandlerError::permanent("b"),
            "g",
            Route::Dlq,
            "orders.dlq".into(),
            99,
        );
        assert_eq!(dlq.header_str(h::ORIGINAL_TOPIC), Some("orders"));
        assert_eq!(dlq.header_str(h::ORIGINAL_PARTITION), Some("3"));
        assert_eq!(dlq.header_str(h::ORIGINAL_OFFSET), Some("42"));
        assert_eq!(dlq.header_str(h::ATTEMPT), Some("2"));
        assert_eq!(dlq.header_str(h::ERROR_KIND), Some("permanent"));
        assert_eq!(dlq.header_str(h::FIRST_FAILURE), Some("1"));
        assert_eq!(dlq.header_str(h::LAST_FAILURE), Some("99"));
        assert_eq!(dlq.header_str(h::DUE), None);
        let names: Vec<_> = dlq.headers.iter().map(|x| x.name.as_str()).collect();
        let unique: std::collections::HashSet<_> = names.iter().collect();
        assert_eq!(
            names.len(),
            unique.len(),
            "no duplicated headers: {names:?}"
        );
    }
}
