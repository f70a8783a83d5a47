//! Input lines → records: `key<TAB>value`, plain values, or JSON objects.
//! Each error says what is wrong with the line (the caller adds its number).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use clap::ValueEnum;
use rebound_core::Header;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// `--format` of `rebound produce`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// `key<TAB>value`: the key is everything before the first TAB (empty:
    /// no key), the value everything after it.
    Kv,
    /// The whole line is the value; no key.
    Value,
    /// One JSON object per line: `{"key": "k", "value": <JSON or string>,
    /// "headers": {"name": "value"}, "partition": 0, "timestamp": <epoch ms>}`.
    /// A JSON value is sent as written (its text, not re-encoded).
    Json,
}

/// A record read from one line, before the topic and the `--header`s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub headers: Vec<Header>,
    pub partition: Option<i32>,
    pub timestamp: Option<i64>,
}

/// Parses one line (without its line ending).
pub fn parse(format: InputFormat, line: &[u8]) -> Result<Parsed, String> {
    match format {
        InputFormat::Value => Ok(Parsed {
            value: Some(line.to_vec()),
            ..Parsed::default()
        }),
        InputFormat::Kv => {
            let tab = line
                .iter()
                .position(|&b| b == b'\t')
                .ok_or("missing TAB between key and value")?;
            let (key, value) = (&line[..tab], &line[tab + 1..]);
            Ok(Parsed {
                key: (!key.is_empty()).then(|| key.to_vec()),
                value: Some(value.to_vec()),
                ..Parsed::default()
            })
        }
        InputFormat::Json => json(line),
    }
}

fn json(line: &[u8]) -> Result<Parsed, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err("empty line (expected a JSON object)".into());
    }
    let v: Value = serde_json::from_slice(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(obj) = v else {
        return Err(format!("expected a JSON object, found {}", kind(&v)));
    };
    let mut out = Parsed::default();
    let mut has_value = false;
    for (name, v) in &obj {
        match name.as_str() {
            "key" => out.key = text_or_null(v, "key")?,
            "key_base64" => out.key = Some(base64(v, "key_base64")?),
            "value" => {
                has_value = true;
                out.value = match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.as_bytes().to_vec()),
                    // Any other JSON: its text as written, not re-encoded
                    // (which would change spacing, key order and numbers).
                    _ => Some(raw_field(line, "value")?),
                }
            }
            "value_base64" => {
                has_value = true;
                out.value = Some(base64(v, "value_base64")?);
            }
            "headers" => out.headers = headers(v)?,
            "partition" => out.partition = Some(partition(v)?),
            "timestamp" => out.timestamp = timestamp(v)?,
            // What `rebound consume --format json` prints besides: ignored.
            "topic" | "offset" => {}
            other => {
                return Err(format!(
                    "unknown field {other:?} (expected key, value, headers, partition, timestamp)"
                ))
            }
        }
    }
    if obj.contains_key("key") && obj.contains_key("key_base64") {
        return Err("fields key and key_base64 both given; use one".into());
    }
    if obj.contains_key("value") && obj.contains_key("value_base64") {
        return Err("fields value and value_base64 both given; use one".into());
    }
    if !has_value {
        return Err("missing field value (use null for a tombstone)".into());
    }
    Ok(out)
}

/// The text of top-level field `name` of the JSON object `line`, verbatim.
fn raw_field(line: &[u8], name: &str) -> Result<Vec<u8>, String> {
    let raw: BTreeMap<String, Box<RawValue>> =
        serde_json::from_slice(line).map_err(|e| format!("invalid JSON: {e}"))?;
    raw.get(name)
        .map(|v| v.get().as_bytes().to_vec())
        .ok_or_else(|| format!("missing field {name}"))
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn text_or_null(v: &Value, field: &str) -> Result<Option<Vec<u8>>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.as_bytes().to_vec())),
        other => Err(format!(
            "field {field}: expected a string or null, found {}",
            kind(other)
        )),
    }
}

fn base64(v: &Value, field: &str) -> Result<Vec<u8>, String> {
    let Value::String(s) = v else {
        return Err(format!(
            "field {field}: expected a base64 string, found {}",
            kind(v)
        ));
    };
    B64.decode(s)
        .map_err(|e| format!("field {field}: invalid base64: {e}"))
}

/// `{"name": "value", ...}`, or the list `rebound consume --format json`
/// prints: `[{"name": "n", "value": "v" | "value_base64": "..."}]`.
fn headers(v: &Value) -> Result<Vec<Header>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Object(m) => m
            .iter()
            .map(|(name, v)| {
                Ok(Header {
                    name: name.clone(),
                    value: text_or_null(v, &format!("headers.{name}"))?,
                })
            })
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| header_item(i, item))
            .collect(),
        other => Err(format!(
            "field headers: expected an object of name: value, found {}",
            kind(other)
        )),
    }
}

fn header_item(i: usize, item: &Value) -> Result<Header, String> {
    let field = format!("headers[{i}]");
    let Value::Object(m) = item else {
        return Err(format!(
            "field {field}: expected {{\"name\": ..., \"value\": ...}}, found {}",
            kind(item)
        ));
    };
    let name = match m.get("name") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(format!("field {field}.name: expected a string")),
    };
    let value = match (m.get("value"), m.get("value_base64")) {
        (Some(v), None) => text_or_null(v, &format!("{field}.value"))?,
        (None, Some(v)) => Some(base64(v, &format!("{field}.value_base64"))?),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(format!(
                "field {field}: value and value_base64 both given; use one"
            ))
        }
    };
    check_only(m, &field, &["name", "value", "value_base64"])?;
    Ok(Header { name, value })
}

fn check_only(m: &Map<String, Value>, field: &str, allowed: &[&str]) -> Result<(), String> {
    match m.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("field {field}: unknown field {k:?}")),
        None => Ok(()),
    }
}

fn partition(v: &Value) -> Result<i32, String> {
    v.as_u64()
        .and_then(|n| i32::try_from(n).ok())
        .ok_or_else(|| format!("field partition: expected a partition number, found {v}"))
}

fn timestamp(v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        v => v
            .as_i64()
            .filter(|&t| t >= 0)
            .map(Some)
            .ok_or_else(|| format!("field timestamp: expected epoch milliseconds, found {v}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: Some(value.as_bytes().to_vec()),
        }
    }

    #[test]
    fn kv_splits_at_the_first_tab() {
        let p = parse(InputFormat::Kv, b"k1\tv\twith tab").unwrap();
        assert_eq!(p.key.as_deref(), Some(&b"k1"[..]));
        assert_eq!(p.value.as_deref(), Some(&b"v\twith tab"[..]));
        let p = parse(InputFormat::Kv, b"\tno key").unwrap();
        assert_eq!(p.key, None);
        assert_eq!(
            parse(InputFormat::Kv, b"no tab").unwrap_err(),
            "missing TAB between key and value"
        );
        assert_eq!(
            parse(InputFormat::Value, b"a\tb").unwrap().value.as_deref(),
            Some(&b"a\tb"[..])
        );
    }

    #[test]
    fn json_objects() {
        let p = parse(
            InputFormat::Json,
            br#"{"key":"k","value":{"n":1},"headers":{"a":"1"},"partition":2,"timestamp":5}"#,
        )
        .unwrap();
        assert_eq!(
            p,
            Parsed {
                key: Some(b"k".to_vec()),
                value: Some(br#"{"n":1}"#.to_vec()),
                headers: vec![h("a", "1")],
                partition: Some(2),
                timestamp: Some(5),
            }
        );
        let p = parse(InputFormat::Json, br#"{"value":"plain text"}"#).unwrap();
        assert_eq!(p.value.as_deref(), Some(&b"plain text"[..]));
        // JSON values keep their text: spacing, key order, numbers.
        let p = parse(
            InputFormat::Json,
            br#"{"value": {"b": 2.50, "a": [1, 1e3]} , "key":"k"}"#,
        )
        .unwrap();
        assert_eq!(
            p.value.as_deref(),
            Some(&br#"{"b": 2.50, "a": [1, 1e3]}"#[..])
        );
        let p = parse(InputFormat::Json, br#"{"value":7.0}"#).unwrap();
        assert_eq!(p.value.as_deref(), Some(&b"7.0"[..]));
        let p = parse(InputFormat::Json, br#"{"key":"k","value":null}"#).unwrap();
        assert_eq!(p.value, None);
        let p = parse(
            InputFormat::Json,
            br#"{"topic":"t","offset":3,"key_base64":"wyg=","value_base64":"AAE=","headers":[{"name":"a","value":"1"},{"name":"a","value_base64":"/w=="}]}"#,
        )
        .unwrap();
        assert_eq!(p.key.as_deref(), Some(&[0xc3, 0x28][..]));
        assert_eq!(p.value.as_deref(), Some(&[0, 1][..]));
        assert_eq!(
            p.headers,
            vec![
                h("a", "1"),
                Header {
                    name: "a".into(),
                    value: Some(vec![0xff])
                }
            ]
        );
    }

    #[test]
    fn json_errors_name_the_field() {
        let err = |line: &str| parse(InputFormat::Json, line.as_bytes()).unwrap_err();
        assert!(
            err("{\"key\": ").starts_with("invalid JSON: "),
            "{}",
            err("{\"key\": ")
        );
        assert_eq!(err("[1]"), "expected a JSON object, found an array");
        assert_eq!(
            err(r#"{"key":"k"}"#),
            "missing field value (use null for a tombstone)"
        );
        assert_eq!(
            err(r#"{"key":1,"value":"v"}"#),
            "field key: expected a string or null, found a number"
        );
        assert_eq!(
            err(r#"{"value":"v","partition":-1}"#),
            "field partition: expected a partition number, found -1"
        );
        assert_eq!(
            err(r#"{"value":"v","headers":{"a":3}}"#),
            "field headers.a: expected a string or null, found a number"
        );
        assert_eq!(
            err(r#"{"value":"v","vaule":1}"#),
            r#"unknown field "vaule" (expected key, value, headers, partition, timestamp)"#
        );
        assert_eq!(err("  "), "empty line (expected a JSON object)");
    }
}
