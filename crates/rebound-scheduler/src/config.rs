//! [`ServeConfig`]: everything `rebound serve` needs, from Rebound's
//! environment variable names or set directly.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::deliver::guard::Guard;
use crate::deliver::HttpOptions;
use crate::dispatcher::DispatchConfig;
use crate::error::{Error, Result};
use crate::validate::Limits;

/// Default store when no Redis is configured: the embedded store.
pub const DEFAULT_STORE_URL: &str = "file://rebound-data";

/// Settings of [`crate::serve()`].
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Listen address of the HTTP API (`HTTP_ADDR`, default `0.0.0.0:8080`).
    pub http_addr: SocketAddr,
    /// Store URL: `file://PATH`, `redis://`, `redis+sentinel://`,
    /// `redis+cluster://` (see [`crate::store`]).
    pub store_url: String,
    /// Default Kafka bootstrap servers for destinations without `host`
    /// (`KAFKA_BROKERS`, default `localhost:9092`); also the ingress brokers.
    pub kafka_brokers: String,
    /// Bearer token required on task routes (`REBOUND_AUTH_TOKEN`).
    pub auth_token: Option<String>,
    /// librdkafka properties (TLS, SASL) of every Kafka client: deliveries
    /// and the ingress.
    pub kafka_config: Vec<(String, String)>,
    /// Topic of task JSON to ingest (`REBOUND_INGRESS_TOPIC`).
    pub ingress_topic: Option<String>,
    /// Consumer group of the ingress (`REBOUND_INGRESS_GROUP`).
    pub ingress_group: String,
    /// Size limits (`REBOUND_MAX_MESSAGE_BYTES` sets `max_message_bytes`).
    pub limits: Limits,
    /// Dispatcher settings.
    pub dispatch: DispatchConfig,
    /// `LOG_LEVEL`, for the binary's subscriber.
    pub log_level: Option<String>,
    /// Signing and the SSRF guard of HTTP deliveries
    /// (`REBOUND_WEBHOOK_SECRET`, `REBOUND_BLOCK_PRIVATE_DESTINATIONS`,
    /// `REBOUND_ALLOWED_DESTINATIONS`).
    pub http: HttpOptions,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            store_url: DEFAULT_STORE_URL.into(),
            kafka_brokers: "localhost:9092".into(),
            auth_token: None,
            kafka_config: Vec::new(),
            ingress_topic: None,
            ingress_group: "rebound-scheduler-ingress".into(),
            limits: Limits::default(),
            dispatch: DispatchConfig::default(),
            log_level: None,
            http: HttpOptions::default(),
        }
    }
}

fn cfg(name: &str, reason: impl Into<String>) -> Error {
    Error::Config {
        name: name.into(),
        reason: reason.into(),
    }
}

/// Percent-encodes a URL userinfo component.
pub(crate) fn encode_userinfo(s: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    const KEEP: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    utf8_percent_encode(s, KEEP).to_string()
}

/// Parses `HTTP_ADDR` as Go does: `:8080` means all interfaces.
pub fn parse_http_addr(s: &str) -> Result<SocketAddr> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    full.to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            cfg(
                "HTTP_ADDR",
                format!("expected host:port or :port, got {s:?}"),
            )
        })
}

impl ServeConfig {
    /// Reads the process environment; see [`ServeConfig::from_lookup`].
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the config from Rebound's names: `HTTP_ADDR`, `KAFKA_BROKERS`,
    /// `LOG_LEVEL`, `REDIS_MODE` (`standalone` | `sentinel` | `cluster`),
    /// `REDIS_HOST`, `REDIS_PORT`, `REDIS_PASSWORD`, `REDIS_MASTER_NAME`,
    /// `REDIS_SENTINEL_ADDRS`, `REDIS_CLUSTER_ADDRS`; plus `REBOUND_STORE`
    /// (a store URL, which wins over the `REDIS_*` names), `REBOUND_AUTH_TOKEN`,
    /// `REBOUND_INGRESS_TOPIC`, `REBOUND_INGRESS_GROUP`,
    /// `REBOUND_MAX_MESSAGE_BYTES`, `REBOUND_LEASE_SECS`, `REBOUND_WEBHOOK_SECRET`
    /// (`whsec_<base64>`), `REBOUND_BLOCK_PRIVATE_DESTINATIONS` (`true`/`false`),
    /// `REBOUND_ALLOWED_DESTINATIONS` (`ip:port,…`). Without any Redis setting the embedded
    /// store [`DEFAULT_STORE_URL`] is used.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut c = ServeConfig::default();
        if let Some(a) = get("HTTP_ADDR") {
            c.http_addr = parse_http_addr(&a)?;
        }
        if let Some(b) = get("KAFKA_BROKERS") {
            c.kafka_brokers = b;
        }
        c.log_level = get("LOG_LEVEL");
        c.auth_token = get("REBOUND_AUTH_TOKEN");
        c.ingress_topic = get("REBOUND_INGRESS_TOPIC");
        if let Some(g) = get("REBOUND_INGRESS_GROUP") {
            c.ingress_group = g;
        }
        if let Some(m) = get("REBOUND_MAX_MESSAGE_BYTES") {
            c.limits.max_message_bytes = m
                .parse()
                .map_err(|_| cfg("REBOUND_MAX_MESSAGE_BYTES", format!("not a number: {m:?}")))?;
        }
        if let Some(l) = get("REBOUND_LEASE_SECS") {
            let secs: u64 = l.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                cfg(
                    "REBOUND_LEASE_SECS",
                    format!("not a positive number: {l:?}"),
                )
            })?;
            c.dispatch.lease = std::time::Duration::from_secs(secs);
        }
        if let Some(secret) = get("REBOUND_WEBHOOK_SECRET") {
            c.http.secret = Some(secret.parse().map_err(
                |e: rebound_core::webhook::WebhookSecretError| {
                    cfg("REBOUND_WEBHOOK_SECRET", e.to_string())
                },
            )?);
        }
        if let Some(b) = get("REBOUND_BLOCK_PRIVATE_DESTINATIONS") {
            let on = parse_switch(&b).ok_or_else(|| {
                cfg(
                    "REBOUND_BLOCK_PRIVATE_DESTINATIONS",
                    format!("must be true or false, got {b:?}"),
                )
            })?;
            c.http.guard = on.then(Guard::default);
        }
        if let Some(list) = get("REBOUND_ALLOWED_DESTINATIONS") {
            let allow = parse_allowed(&list)?;
            if let Some(g) = &mut c.http.guard {
                g.allow = allow;
            }
        }
        if let Some(url) = get("REBOUND_STORE") {
            c.store_url = url;
        } else if let Some(url) = redis_url_from(&get)? {
            c.store_url = url;
        }
        Ok(c)
    }

    /// Replaces the store URL (an explicit `--store` wins over the environment).
    pub fn with_store_url(mut self, url: impl Into<String>) -> Self {
        self.store_url = url.into();
        self
    }
}

/// An on/off setting: `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`,
/// `y`/`n`, `t`/`f`, any case (as `rebound serve`'s flags take it).
pub fn parse_switch(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" | "y" | "t" => Some(true),
        "false" | "0" | "no" | "off" | "n" | "f" => Some(false),
        _ => None,
    }
}

/// `ip:port,ip:port`: destinations the SSRF guard lets through.
pub fn parse_allowed(list: &str) -> Result<Vec<SocketAddr>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse().map_err(|_| {
                cfg(
                    "REBOUND_ALLOWED_DESTINATIONS",
                    format!("{s:?} is not ip:port"),
                )
            })
        })
        .collect()
}

/// Rebound's Redis settings that select Redis when set (besides
/// `REDIS_MODE`). Not `REDIS_PORT`: Kubernetes sets it
/// (`tcp://10.0.0.5:6379`) in every pod of a namespace with a Service named
/// `redis`; nor `REDIS_MASTER_NAME`, which means nothing alone.
const REDIS_NAMES: [&str; 4] = [
    "REDIS_HOST",
    "REDIS_PASSWORD",
    "REDIS_SENTINEL_ADDRS",
    "REDIS_CLUSTER_ADDRS",
];

/// The Redis store URL Rebound's `REDIS_*` variables describe, if any.
fn redis_url_from(get: &impl Fn(&str) -> Option<String>) -> Result<Option<String>> {
    let mode = get("REDIS_MODE");
    // Any of Rebound's Redis names means Redis (Rebound has no other
    // store): `REDIS_PASSWORD` alone is a password for localhost:6379.
    let any = REDIS_NAMES.iter().any(|k| get(k).is_some());
    if mode.is_none() && !any {
        return Ok(None);
    }
    let auth = get("REDIS_PASSWORD")
        .map(|p| format!(":{}@", encode_userinfo(&p)))
        .unwrap_or_default();
    let url = match mode.as_deref().unwrap_or("standalone") {
        "standalone" => {
            let host = get("REDIS_HOST").unwrap_or_else(|| "localhost".into());
            let port = get("REDIS_PORT").unwrap_or_else(|| "6379".into());
            // Kubernetes' form, `tcp://HOST:PORT`, gives its port.
            let port = match port.strip_prefix("tcp://") {
                Some(addr) => addr.rsplit(':').next().unwrap_or_default().to_string(),
                None => port,
            };
            port.parse::<u16>()
                .map_err(|_| cfg("REDIS_PORT", format!("not a port: {port:?}")))?;
            format!("redis://{auth}{host}:{port}")
        }
        "sentinel" => {
            let addrs = get("REDIS_SENTINEL_ADDRS")
                .ok_or_else(|| cfg("REDIS_SENTINEL_ADDRS", "required when REDIS_MODE=sentinel"))?;
            let master = get("REDIS_MASTER_NAME").unwrap_or_else(|| "mymaster".into());
            format!("redis+sentinel://{auth}{}/{master}", addrs.replace(' ', ""))
        }
        "cluster" => {
            let addrs = get("REDIS_CLUSTER_ADDRS")
                .ok_or_else(|| cfg("REDIS_CLUSTER_ADDRS", "required when REDIS_MODE=cluster"))?;
            format!("redis+cluster://{auth}{}", addrs.replace(' ', ""))
        }
        other => {
            return Err(cfg(
                "REDIS_MODE",
                format!("must be standalone, sentinel or cluster, got {other:?}"),
            ))
        }
    };
    Ok(Some(url))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<ServeConfig> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ServeConfig::from_lookup(|k| m.get(k).cloned())
    }

    #[test]
    fn rebound_names_map_to_store_urls() {
        assert_eq!(from(&[]).unwrap().store_url, DEFAULT_STORE_URL);
        let c = from(&[
            ("REDIS_HOST", "r1"),
            ("REDIS_PORT", "6380"),
            ("REDIS_PASSWORD", "p@ss"),
        ])
        .unwrap();
        assert_eq!(c.store_url, "redis://:p%40ss@r1:6380");
        let c = from(&[
            ("REDIS_MODE", "sentinel"),
            ("REDIS_SENTINEL_ADDRS", "s1:26379, s2:26379"),
            ("REDIS_MASTER_NAME", "main"),
        ])
        .unwrap();
        assert_eq!(c.store_url, "redis+sentinel://s1:26379,s2:26379/main");
        let c = from(&[
            ("REDIS_MODE", "cluster"),
            ("REDIS_CLUSTER_ADDRS", "c1:7000,c2:7001"),
        ])
        .unwrap();
        assert_eq!(c.store_url, "redis+cluster://c1:7000,c2:7001");
        let c = from(&[("REDIS_HOST", "r1"), ("REBOUND_STORE", "file:///data")]).unwrap();
        assert_eq!(c.store_url, "file:///data");
        // Any one of Rebound's Redis names alone means standalone Redis
        // with the defaults for the others.
        for (name, value, url) in [
            ("REDIS_PASSWORD", "pw", "redis://:pw@localhost:6379"),
            ("REDIS_HOST", "r1", "redis://r1:6379"),
        ] {
            assert_eq!(from(&[(name, value)]).unwrap().store_url, url, "{name}");
        }
        // REDIS_PORT alone, as Kubernetes sets it for a Service named
        // redis, and REDIS_MASTER_NAME alone select nothing; Kubernetes'
        // form gives the port when Redis is selected.
        for (name, value) in [
            ("REDIS_PORT", "tcp://10.0.0.5:6379"),
            ("REDIS_MASTER_NAME", "m"),
        ] {
            assert_eq!(from(&[(name, value)]).unwrap().store_url, DEFAULT_STORE_URL);
        }
        let c = from(&[("REDIS_HOST", "r1"), ("REDIS_PORT", "tcp://10.0.0.5:6380")]).unwrap();
        assert_eq!(c.store_url, "redis://r1:6380");
        // A store named outright: the REDIS_* names are not read at all.
        let c = from(&[
            ("REBOUND_STORE", "file:///d"),
            ("REDIS_HOST", "r"),
            ("REDIS_PORT", "x"),
        ]);
        assert_eq!(c.unwrap().store_url, "file:///d");
        assert!(from(&[("REDIS_MODE", "cluster")]).is_err());
        assert!(from(&[("REDIS_MODE", "bogus")]).is_err());
    }

    #[test]
    fn http_addr_accepts_go_form() {
        let c = from(&[("HTTP_ADDR", ":9090"), ("KAFKA_BROKERS", "k:9092")]).unwrap();
        assert_eq!(c.http_addr, SocketAddr::from(([0, 0, 0, 0], 9090)));
        assert_eq!(c.kafka_brokers, "k:9092");
        assert!(from(&[("HTTP_ADDR", "nonsense")]).is_err());
    }
}
