//! A DLQ record seen through its provenance headers, and how its bytes are
//! shown: UTF-8 text when they are valid UTF-8, base64 otherwise.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rebound_core::{Provenance, Record};
use serde_json::{json, Map, Value};

use crate::time::rfc3339;

/// Bytes as text, or base64 when they are not UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// Valid UTF-8.
    Text(String),
    /// Base64 (standard alphabet, padded) of bytes that are not UTF-8.
    Base64(String),
}

impl Shown {
    /// Shows `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        match std::str::from_utf8(bytes) {
            Ok(s) => Shown::Text(s.to_string()),
            Err(_) => Shown::Base64(B64.encode(bytes)),
        }
    }

    /// For tables and `show`: the text, or `base64:<encoded>`.
    pub fn marked(&self) -> String {
        match self {
            Shown::Text(s) => s.clone(),
            Shown::Base64(b) => format!("base64:{b}"),
        }
    }
}

/// `-` for a missing value, else [`Shown::marked`].
pub fn marked_or_dash(bytes: Option<&[u8]>) -> String {
    bytes.map_or_else(|| "-".to_string(), |b| Shown::of(b).marked())
}

/// Inserts `name` (text or null) or `name_base64` into a JSON object.
fn put_bytes(obj: &mut Map<String, Value>, name: &str, bytes: Option<&[u8]>) {
    match bytes.map(Shown::of) {
        None => {
            obj.insert(name.to_string(), Value::Null);
        }
        Some(Shown::Text(s)) => {
            obj.insert(name.to_string(), Value::String(s));
        }
        Some(Shown::Base64(b)) => {
            obj.insert(format!("{name}_base64"), Value::String(b));
        }
    }
}

/// Read-only view of one DLQ record: the record and what its provenance
/// headers say ([`Provenance`], the one reader of them).
#[derive(Debug, Clone)]
pub struct DlqEntry<'a> {
    /// The record as read from the DLQ topic.
    pub rec: &'a Record,
    prov: Provenance,
}

impl<'a> DlqEntry<'a> {
    /// Wraps `rec`.
    pub fn new(rec: &'a Record) -> Self {
        DlqEntry {
            rec,
            prov: Provenance::read(rec),
        }
    }

    /// `partition:offset` in the DLQ topic.
    pub fn coords(&self) -> String {
        format!("{}:{}", self.rec.partition, self.rec.offset)
    }

    /// `rebound.original.topic`.
    pub fn original_topic(&self) -> Option<&str> {
        self.prov.original_topic.as_deref()
    }

    /// `rebound.original.partition`.
    pub fn original_partition(&self) -> Option<i32> {
        self.prov.original_partition
    }

    /// `rebound.original.offset`.
    pub fn original_offset(&self) -> Option<i64> {
        self.prov.original_offset
    }

    /// `rebound.error.kind`.
    pub fn error_kind(&self) -> Option<&str> {
        self.prov.error_kind.as_deref()
    }

    /// `rebound.error.message` (not trimmed).
    pub fn error_message(&self) -> Option<&str> {
        self.prov.error_message.as_deref()
    }

    /// `rebound.attempt`.
    pub fn attempts(&self) -> Option<u32> {
        self.prov.attempts
    }

    /// `rebound.last.failure`, epoch ms.
    pub fn last_failure(&self) -> Option<i64> {
        self.prov.last_failure
    }

    /// `topic/partition/offset` of the original record, `?` for missing parts,
    /// `-` when there is no original topic.
    pub fn original_label(&self) -> String {
        let Some(t) = self.original_topic() else {
            return "-".into();
        };
        let p = self
            .original_partition()
            .map_or_else(|| "?".to_string(), |p| p.to_string());
        let o = self
            .original_offset()
            .map_or_else(|| "?".to_string(), |o| o.to_string());
        format!("{t}/{p}/{o}")
    }

    /// Case-insensitive substring match on the error message;
    /// `needle_lower` is already lower case.
    pub fn error_contains(&self, needle_lower: &str) -> bool {
        self.error_message()
            .is_some_and(|m| m.to_lowercase().contains(needle_lower))
    }

    /// Everything about the record as one JSON object (`list --format json`).
    pub fn to_json(&self) -> Value {
        let r = self.rec;
        let mut obj = Map::new();
        obj.insert("dlq_topic".into(), json!(&*r.topic));
        obj.insert("partition".into(), json!(r.partition));
        obj.insert("offset".into(), json!(r.offset));
        obj.insert("timestamp_ms".into(), json!(r.timestamp));
        put_bytes(&mut obj, "key", r.key.as_deref());
        put_bytes(&mut obj, "value", r.value.as_deref());
        obj.insert("error_kind".into(), json!(self.error_kind()));
        obj.insert("error_message".into(), json!(self.error_message()));
        obj.insert("attempts".into(), json!(self.attempts()));
        let first = self.prov.first_failure;
        let last = self.last_failure();
        obj.insert("first_failure".into(), json!(first.map(rfc3339)));
        obj.insert("first_failure_ms".into(), json!(first));
        obj.insert("last_failure".into(), json!(last.map(rfc3339)));
        obj.insert("last_failure_ms".into(), json!(last));
        obj.insert("consumer_group".into(), json!(self.prov.consumer_group));
        obj.insert(
            "original".into(),
            json!({
                "topic": self.original_topic(),
                "partition": self.original_partition(),
                "offset": self.original_offset(),
                "timestamp_ms": self.prov.original_timestamp,
            }),
        );
        let headers = r
            .headers
            .iter()
            .map(|hd| {
                let mut o = Map::new();
                o.insert("name".into(), json!(hd.name));
                put_bytes(&mut o, "value", hd.value.as_deref());
                Value::Object(o)
            })
            .collect();
        obj.insert("headers".into(), Value::Array(headers));
        Value::Object(obj)
    }
}

/// At most `max` characters of `s` on one line, `…` when cut.
pub fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut out: String = flat.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebound_core::headers as h;
    use rebound_core::Header;

    fn rec(headers: &[(&str, &[u8])]) -> Record {
        let mut r = Record::new("orders.dlq", 1, 7);
        r.key = Some(vec![0xff, 0x00]);
        r.value = Some(b"v".to_vec());
        r.headers = headers
            .iter()
            .map(|(n, v)| Header {
                name: n.to_string(),
                value: Some(v.to_vec()),
            })
            .collect();
        r
    }

    #[test]
    fn bytes_are_text_or_marked_base64() {
        assert_eq!(Shown::of(b"abc").marked(), "abc");
        assert_eq!(Shown::of(&[0xff, 0x00]).marked(), "base64:/wA=");
        assert_eq!(marked_or_dash(None), "-");
    }

    #[test]
    fn provenance_and_json() {
        let r = rec(&[
            (h::ORIGINAL_TOPIC, b"orders"),
            (h::ORIGINAL_PARTITION, b"2"),
            (h::ERROR_MESSAGE, b"Upstream 503"),
            (h::ATTEMPT, b"4"),
            ("bin", &[0xc3, 0x28]),
        ]);
        let e = DlqEntry::new(&r);
        assert_eq!(e.coords(), "1:7");
        assert_eq!(e.original_label(), "orders/2/?");
        assert_eq!(e.attempts(), Some(4));
        assert!(e.error_contains("upstream"));
        assert!(!e.error_contains("timeout"));
        let j = e.to_json();
        assert_eq!(j["key_base64"], "/wA=");
        assert!(j.get("key").is_none());
        assert_eq!(j["value"], "v");
        assert_eq!(j["original"]["partition"], 2);
        assert_eq!(j["headers"][4]["value_base64"], "wyg=");
        assert_eq!(j["headers"][0]["value"], "orders");
    }

    #[test]
    fn one_line_truncates_and_flattens() {
        assert_eq!(one_line("a\nb", 10), "a b");
        assert_eq!(one_line("abcdef", 4), "abc…");
        assert_eq!(one_line("abcd", 4), "abcd");
    }
}
