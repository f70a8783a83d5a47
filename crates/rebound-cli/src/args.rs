//! Flag parsers shared by subcommands. Each error says what is wrong;
//! clap adds the flag's name.

use std::time::Duration;

/// Parses `250ms`, `30s`, `5m`, `1h` or a bare number of seconds.
pub fn duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (use e.g. 500ms, 30s, 5m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("{s:?} is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("7").unwrap(), Duration::from_secs(7));
        assert!(duration("soon").unwrap_err().contains("not a duration"));
        assert!(duration("5d").unwrap_err().contains("unit"));
    }

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
