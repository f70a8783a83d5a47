//! How `rebound consume` prints a record: `pretty` for people, `json` lines
//! for scripts.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::ValueEnum;
use rebound_core::Record;
use serde_json::{json, Map, Value};

use crate::cmd::dlq::entry::Shown;
use crate::cmd::dlq::time::rfc3339;

/// `--format` of `rebound consume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A block per record: partition, offset, time, then key, headers and
    /// value (bytes that are not UTF-8 as `base64:...`).
    Pretty,
    /// One JSON object per line: topic, partition, offset, timestamp (epoch
    /// ms), key, value, headers. A value that is a JSON object or array is
    /// embedded as JSON, other UTF-8 as a string; bytes that are not UTF-8
    /// go in `key_base64` / `value_base64` instead.
    Json,
}

/// The record as the format prints it, with a trailing newline.
pub fn render(format: OutputFormat, r: &Record) -> String {
    match format {
        OutputFormat::Pretty => pretty(r),
        OutputFormat::Json => {
            let mut s = json_line(r).to_string();
            s.push('\n');
            s
        }
    }
}

fn pretty(r: &Record) -> String {
    let time = r.timestamp.map_or_else(|| "-".to_string(), rfc3339);
    let key = r
        .key
        .as_deref()
        .map_or_else(|| "(none)".to_string(), |k| Shown::of(k).marked());
    let value = r
        .value
        .as_deref()
        .map_or_else(|| "(null)".to_string(), |v| Shown::of(v).marked());
    let headers = if r.headers.is_empty() {
        "(none)".to_string()
    } else {
        r.headers
            .iter()
            .map(|h| match &h.value {
                Some(v) => format!("{}={}", h.name, Shown::of(v).marked()),
                None => format!("{}=(null)", h.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "partition {}  offset {}  {time}\n  key: {key}\n  headers: {headers}\n  value: {value}\n",
        r.partition, r.offset
    )
}

fn json_line(r: &Record) -> Value {
    let mut obj = Map::new();
    obj.insert("topic".into(), json!(r.topic.as_str()));
    obj.insert("partition".into(), json!(r.partition));
    obj.insert("offset".into(), json!(r.offset));
    obj.insert("timestamp".into(), json!(r.timestamp));
    put(&mut obj, "key", r.key.as_deref(), false);
    put(&mut obj, "value", r.value.as_deref(), true);
    let headers = r
        .headers
        .iter()
        .map(|h| {
            let mut o = Map::new();
            o.insert("name".into(), json!(h.name));
            put(&mut o, "value", h.value.as_deref(), false);
            Value::Object(o)
        })
        .collect();
    obj.insert("headers".into(), Value::Array(headers));
    Value::Object(obj)
}

/// `name`: null, embedded JSON (objects and arrays, when `embed`), or a
/// string; `name_base64` for bytes that are not UTF-8.
fn put(obj: &mut Map<String, Value>, name: &str, bytes: Option<&[u8]>, embed: bool) {
    let Some(bytes) = bytes else {
        obj.insert(name.into(), Value::Null);
        return;
    };
    if embed {
        if let Ok(v @ (Value::Object(_) | Value::Array(_))) = serde_json::from_slice(bytes) {
            obj.insert(name.into(), v);
            return;
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => obj.insert(name.into(), json!(s)),
        Err(_) => obj.insert(format!("{name}_base64"), json!(B64.encode(bytes))),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebound_core::Header;

    fn rec() -> Record {
        let mut r = Record::new("orders", 2, 7);
        r.timestamp = Some(1_714_564_800_123);
        r.key = Some(b"k1".to_vec());
        r.value = Some(br#"{"n": 1}"#.to_vec());
        r.headers = vec![
            Header {
                name: "a".into(),
                value: Some(b"1".to_vec()),
            },
            Header {
                name: "bin".into(),
                value: Some(vec![0xff]),
            },
        ];
        r
    }

    #[test]
    fn pretty_block() {
        assert_eq!(
            render(OutputFormat::Pretty, &rec()),
            "partition 2  offset 7  2024-05-01T12:00:00.123Z\n  key: k1\n  headers: a=1, bin=base64:/w==\n  value: {\"n\": 1}\n"
        );
        let mut r = Record::new("t", 0, 0);
        r.value = Some(vec![0xff, 0]);
        assert_eq!(
            render(OutputFormat::Pretty, &r),
            "partition 0  offset 0  -\n  key: (none)\n  headers: (none)\n  value: base64:/wA=\n"
        );
    }

    #[test]
    fn json_embeds_json_values_and_marks_binary() {
        let line = render(OutputFormat::Json, &rec());
        assert!(line.ends_with('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            json!({"topic": "orders", "partition": 2, "offset": 7, "timestamp": 1_714_564_800_123_i64,
                   "key": "k1", "value": {"n": 1},
                   "headers": [{"name": "a", "value": "1"}, {"name": "bin", "value_base64": "/w=="}]})
        );
        let mut r = Record::new("t", 0, 1);
        r.key = Some(vec![0xc3, 0x28]);
        r.value = Some(b"42".to_vec());
        let v: Value = serde_json::from_str(&render(OutputFormat::Json, &r)).unwrap();
        assert_eq!(v["key_base64"], "wyg=");
        assert_eq!(v.get("key"), None);
        assert_eq!(v["value"], "42");
        assert_eq!(v["timestamp"], Value::Null);
    }
}
