//! A pending outbox row and how it becomes a Kafka record. Pure: what is
//! wrong with a row is decided here, before anything is sent.

use rebound_core::headers::OUTBOX_ID;
use rebound_producer::OutRecord;

/// A row the relay read, not yet published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRow {
    /// The table's row id (commit order within one transaction).
    pub id: i64,
    /// The row's unique id, sent as the `rebound.outbox.id` header.
    pub outbox_id: String,
    /// Destination topic.
    pub topic: String,
    /// Record key.
    pub key: Option<String>,
    /// Record value.
    pub payload: Option<Vec<u8>>,
    /// The `headers` column as JSON text.
    pub headers: Option<String>,
    /// When the row was written, epoch milliseconds.
    pub created_at_ms: i64,
    /// PostgreSQL: the writing transaction (`xid8` as text).
    pub txid: Option<String>,
}

/// Why a row can never be published as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadRow {
    /// `headers` is not a JSON object of string to string.
    #[error("malformed headers: {0}")]
    Headers(String),
    /// The record is larger than the producer accepts.
    #[error(
        "oversized record: {size} bytes (key, payload and headers) exceed the limit of {limit}"
    )]
    Oversized {
        /// The record's size.
        size: usize,
        /// `message.max.bytes`.
        limit: usize,
    },
    /// The topic does not exist.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// The topic name is empty.
    #[error("empty topic name")]
    EmptyTopic,
}

/// The record for `row`: key, payload and its headers in the order the
/// JSON object lists them (PostgreSQL's `jsonb` stores keys in its own
/// order, not as written), plus `rebound.outbox.id` (replacing a header of
/// that name the row may carry). Checks everything but the topic's existence.
pub fn to_record(row: &PendingRow, max_size: usize) -> Result<OutRecord, BadRow> {
    if row.topic.trim().is_empty() {
        return Err(BadRow::EmptyTopic);
    }
    let mut rec = OutRecord {
        topic: row.topic.clone(),
        key: row.key.as_ref().map(|k| k.as_bytes().to_vec()),
        value: row.payload.clone(),
        ..Default::default()
    };
    if let Some(text) = &row.headers {
        for (name, value) in parse_headers(text)? {
            rec.set_header(&name, value);
        }
    }
    rec.set_header(OUTBOX_ID, row.outbox_id.as_bytes());
    let size = rec.size();
    if size > max_size {
        return Err(BadRow::Oversized {
            size,
            limit: max_size,
        });
    }
    Ok(rec)
}

/// Parses a `headers` value: `null` or an object whose values are strings.
fn parse_headers(text: &str) -> Result<Vec<(String, String)>, BadRow> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| BadRow::Headers(format!("not JSON: {e}")))?;
    match value {
        serde_json::Value::Null => Ok(Vec::new()),
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                other => Err(BadRow::Headers(format!(
                    "header {k:?} is {other}, expected a string"
                ))),
            })
            .collect(),
        other => Err(BadRow::Headers(format!(
            "expected an object of string to string, got {other}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(headers: Option<&str>) -> PendingRow {
        PendingRow {
            id: 7,
            outbox_id: "u-7".into(),
            topic: "orders".into(),
            key: Some("k".into()),
            payload: Some(b"v".to_vec()),
            headers: headers.map(str::to_string),
            created_at_ms: 0,
            txid: None,
        }
    }

    #[test]
    fn builds_the_record_with_its_id_header() {
        let r = to_record(
            &row(Some(r#"{"a":"1","rebound.outbox.id":"forged"}"#)),
            1000,
        )
        .unwrap();
        assert_eq!(r.topic, "orders");
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.header_str("a"), Some("1"));
        assert_eq!(r.header_str(OUTBOX_ID), Some("u-7"));
        assert_eq!(r.headers.iter().filter(|h| h.name == OUTBOX_ID).count(), 1);
        assert!(to_record(&row(None), 1000).is_ok());
        assert!(to_record(&row(Some("null")), 1000).is_ok());
    }

    #[test]
    fn names_what_is_wrong() {
        for (h, want) in [
            ("[1]", "expected an object"),
            (r#"{"a":1}"#, "header \"a\" is 1"),
            ("{", "not JSON"),
        ] {
            let e = to_record(&row(Some(h)), 1000).unwrap_err();
            assert!(e.to_string().contains(want), "{h}: {e}");
        }
        let e = to_record(&row(None), 10).unwrap_err();
        assert!(matches!(e, BadRow::Oversized { limit: 10, .. }), "{e}");
        let mut r = row(None);
        r.topic = " ".into();
        assert_eq!(to_record(&r, 1000), Err(BadRow::EmptyTopic));
    }
}
