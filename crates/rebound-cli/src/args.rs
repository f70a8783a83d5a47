//! Flag parsers shared by subcommands. Each error says what is wrong;
//! clap adds the flag's name.

pub use crate::time::duration;

/// A Kafka topic name: 1–249 characters of `[a-zA-Z0-9._-]`.
pub fn topic(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("the topic name is empty".into());
    }
    if rebound_worker::config::valid_topic(s) {
        Ok(s.to_string())
    } else {
        Err(format!(
            "{s:?} is not a valid topic name (1-249 characters of a-z A-Z 0-9 . _ -)"
        ))
    }
}

/// A listen address as Go (and so Rebound's `HTTP_ADDR`) writes it:
/// `host:port`, or `:port` for every interface.
pub fn listen_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    rebound_scheduler::config::parse_http_addr(s).map_err(|e| e.to_string())
}

/// A positive amount of memory: `65536`, `64MiB`, `512MB`, `1GiB`.
pub fn byte_size(s: &str) -> Result<u64, String> {
    let size: bytesize::ByteSize = s
        .trim()
        .parse()
        .map_err(|e| format!("{s:?} is not a size such as 64MiB or 512MB: {e}"))?;
    if size.as_u64() == 0 {
        return Err("must be greater than zero".into());
    }
    Ok(size.as_u64())
}

/// A non-empty value.
pub fn non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_string())
    }
}

/// An absolute `http://` or `https://` URL with a host.
pub fn http_url(s: &str) -> Result<url::Url, String> {
    let u = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    if u.scheme() != "http" && u.scheme() != "https" {
        return Err(format!("{s:?} must start with http:// or https://"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host"));
    }
    Ok(u)
}

/// An HTTP method (`POST`, `PUT`, …), upper-cased.
pub fn http_method(s: &str) -> Result<reqwest::Method, String> {
    reqwest::Method::from_bytes(s.trim().to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("{s:?} is not an HTTP method"))
}

/// A request header `Name: value` with a valid name and value.
pub fn http_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not `Name: value`"))?;
    let (name, value) = (name.trim(), value.trim());
    reqwest::header::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("{name:?} is not a valid header name"))?;
    reqwest::header::HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header {name} is not valid in HTTP"))?;
    Ok((name.to_string(), value.to_string()))
}

/// A ratio in (0, 1].
pub fn ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("{v} is not in (0, 1]"))
    }
}

/// A retry tier topic pattern: must contain `{n}`.
pub fn tier_pattern(s: &str) -> Result<String, String> {
    if s.contains("{n}") {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} must contain {{n}} (the tier number)"))
    }
}

/// A Standard Webhooks secret, `whsec_<base64>` (never echoed in the error).
pub fn webhook_secret(s: &str) -> Result<rebound_core::webhook::WebhookSecret, String> {
    s.parse()
        .map_err(|e: rebound_core::webhook::WebhookSecretError| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_topics() {
        assert!(http_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(http_url("ftp://x").unwrap_err().contains("http://"));
        assert!(http_url("nonsense").unwrap_err().contains("not a URL"));
        assert!(topic("").unwrap_err().contains("empty"));
        assert!(topic("a b").is_err());
        assert_eq!(topic("orders.v1").unwrap(), "orders.v1");
    }
}

/// `KEY=VALUE` (a librdkafka property, a topic config): the key must not be
/// empty; the value may be.
pub fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not key=value")),
    }
}

/// `--format` of the commands that print a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
}
