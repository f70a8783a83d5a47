//! How `rebound consume` prints a record: `pretty` for people, `json` lines
//! for scripts.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::ValueEnum;
use rebound_core::Record;
use serde_json::{json, Map, Value};

use crate::cmd::dlq::entry::Shown;
use crate::time::rfc3339;

/// `--format` of `rebound consume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A block per record: partition, offset, time, then key, headers and
    /// value (bytes that are not UTF-8 as `base64:...`).
    Pretty,
    /// One JSON object per line: topic, partition, offset, timestamp (epoch
    /// ms), key, value, headers. A value that is a JSON object or array on
    /// one line is embedded as JSON, exactly as stored (so `produce --format
    /// json` sends the same bytes back); other UTF-8 is a string; bytes that
    /// are not UTF-8 go in `key_base64` / `value_base64` instead.
    Json,
}

/// The record as the format prints it, with a trailing newline.
pub fn render(format: OutputFormat, r: &Record) -> String {
    match format {
        OutputFormat::Pretty => pretty(r),
        OutputFormat::Json => json_line(r),
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

/// The JSON line, with its newline.
fn json_line(r: &Record) -> String {
    let mut obj = Map::new();
    obj.insert("topic".into(), json!(r.topic.as_str()));
    obj.insert("partition".into(), json!(r.partition));
    obj.insert("offset".into(), json!(r.offset));
    obj.insert("timestamp".into(), json!(r.timestamp));
    put(&mut obj, "key", r.key.as_deref());
    let headers = r
        .headers
        .iter()
        .map(|h| {
            let mut o = Map::new();
            o.insert("name".into(), json!(h.name));
            put(&mut o, "value", h.value.as_deref());
            Value::Object(o)
        })
        .collect();
    obj.insert("headers".into(), Value::Array(headers));
    let embedded = r.value.as_deref().and_then(embeddable);
    if embedded.is_none() {
        put(&mut obj, "value", r.value.as_deref());
    }
    let mut line = Value::Object(obj).to_string();
    if let Some(raw) = embedded {
        // `line` ends with the object's `}`: the value goes last, verbatim.
        line.pop();
        line.push_str(",\"value\":");
        line.push_str(raw);
        line.push('}');
    }
    line.push('\n');
    line
}

/// `value` as it can be embedded verbatim: a JSON object or array on one
/// line, without surrounding whitespace. Re-encoding it instead would change
/// its bytes (spacing, key order, `2.50`, `1e3`).
fn embeddable(value: &[u8]) -> Option<&str> {
    let s = std::str::from_utf8(value).ok()?;
    let framed = matches!(
        (s.as_bytes().first(), s.as_bytes().last()),
        (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']'))
    );
    if !framed || s.contains(['\n', '\r']) {
        return None;
    }
    serde_json::from_str::<Value>(s).ok()?;
    Some(s)
}

/// `name`: null, or a string; `name_base64` for bytes that are not UTF-8.
fn put(obj: &mut Map<String, Value>, name: &str, bytes: Option<&[u8]>) {
    let Some(bytes) = bytes else {
        obj.insert(name.into(), Value::Null);
        return;
    };
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

    #[test]
    fn json_values_are_embedded_verbatim_or_as_strings() {
        let line = |value: &[u8]| {
            let mut r = Record::new("t", 0, 1);
            r.value = Some(value.to_vec());
            render(OutputFormat::Json, &r)
        };
        // Spacing, key order and number spelling survive.
        let l = line(br#"{"b": 2.50, "a": [1, 1e3]}"#);
        assert!(
            l.ends_with(",\"value\":{\"b\": 2.50, \"a\": [1, 1e3]}}\n"),
            "{l}"
        );
        let v: Value = serde_json::from_str(&l).unwrap();
        assert_eq!(v["value"], json!({"a": [1, 1000.0], "b": 2.5}));
        // Over two lines, with surrounding space, or not JSON: a string.
        for s in ["[1,\n2]", " [1]", "[1] ", "{nope}", "[1] [2]"] {
            let l = line(s.as_bytes());
            assert_eq!(l.lines().count(), 1, "{l}");
            let v: Value = serde_json::from_str(&l).unwrap();
            assert_eq!(v["value"], json!(s), "{s:?}");
        }
    }
}
