//! Redis connections by URL: standalone (`redis://`, `rediss://`), Sentinel
//! (`redis+sentinel://`) and Cluster (`redis+cluster://`), behind one
//! [`Conn`] that implements the async `ConnectionLike`.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, Pipeline, RedisConnectionInfo, RedisFuture, Value};

use super::redis_sentinel::SentinelConn;
use crate::error::{Error, Result};

/// Time allowed to open a connection.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
/// Time allowed for one command (a create batch or claim script included).
const RESPONSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A connection to standalone Redis, a Sentinel-resolved master, or a cluster.
#[derive(Clone)]
pub(crate) enum Conn {
    /// Standalone, reconnecting automatically.
    Single(ConnectionManager),
    /// The master named by Sentinel, re-resolved after a failover.
    Sentinel(SentinelConn),
    /// A cluster (all of a store's keys share one hash slot via `{prefix}`).
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let fut = match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        };
        Box::pin(bounded(fut))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let fut = match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Sentinel(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        };
        Box::pin(bounded(fut))
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Sentinel(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl Conn {
    /// `SCAN cursor MATCH pattern COUNT count` on the node holding `tag`'s
    /// hash slot (a cluster routes keyless commands to a random node).
    pub(crate) async fn scan(
        &mut self,
        tag: &str,
        cursor: u64,
        pattern: &str,
        count: usize,
    ) -> redis::RedisResult<(u64, Vec<String>)> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(count);
        match self {
            Conn::Cluster(c) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let route = Route::new(key_slot(tag.as_bytes()), SlotAddr::Master);
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
                let v = bounded(Box::pin(c.route_command(&cmd, routing))).await?;
                redis::from_owned_redis_value(v)
            }
            other => cmd.query_async(other).await,
        }
    }
}

/// Redis Cluster hash slot of a key: CRC16-XMODEM of its `{tag}` (or the
/// whole key) modulo 16384.
fn key_slot(key: &[u8]) -> u16 {
    let tag = match key.iter().position(|b| *b == b'{') {
        Some(open) => match key[open + 1..].iter().position(|b| *b == b'}') {
            Some(len) if len > 0 => &key[open + 1..open + 1 + len],
            _ => key,
        },
        None => key,
    };
    let mut crc: u16 = 0;
    for b in tag {
        crc ^= u16::from(*b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Bounds every command by [`RESPONSE_TIMEOUT`]: a reconnecting client
/// would otherwise wait indefinitely while Redis is down.
async fn bounded<T>(fut: RedisFuture<'_, T>) -> redis::RedisResult<T> {
    match tokio::time::timeout(RESPONSE_TIMEOUT, fut).await {
        Ok(r) => r,
        Err(_) => Err(redis::RedisError::from((
            redis::ErrorKind::IoError,
            "no answer from redis within the response timeout",
        ))),
    }
}

/// A parsed store URL: where to connect and the key prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) mode: Mode,
    pub(crate) prefix: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mode {
    Single(String),
    Sentinel {
        sentinels: Vec<String>,
        master: String,
        password: Option<String>,
        db: i64,
    },
    Cluster {
        nodes: Vec<String>,
        password: Option<String>,
    },
}

fn bad(url: &str, reason: impl Into<String>) -> Error {
    Error::StoreUrl {
        url: rebound_core::error::without_password(url),
        reason: reason.into(),
    }
}

/// Splits `[user:pass@]h1:p1,h2:p2[/rest]` of `url` into password
/// (percent-decoded, as in any URL: `REDIS_PASSWORD` arrives encoded),
/// hosts and rest.
fn split_hosts<'u>(url: &str, rest: &'u str) -> Result<(Option<String>, Vec<String>, &'u str)> {
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((a, r)) => (Some(a), r),
        None => (None, rest),
    };
    let password = match auth.map(|a| a.split_once(':').map_or(a, |(_, p)| p)) {
        Some(p) if !p.is_empty() => Some(
            percent_encoding::percent_decode_str(p)
                .decode_utf8()
                .map_err(|_| bad(url, "the password is not UTF-8 once decoded"))?
                .into_owned(),
        ),
        _ => None,
    };
    let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
    let hosts = hosts
        .split(',')
        .filter(|h| !h.is_empty())
        .map(|h| h.to_string())
        .collect();
    Ok((password, hosts, path))
}

impl Target {
    /// Parses a store URL.
    pub(crate) fn parse(url: &str) -> Result<Self> {
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut prefix = "rebound".to_string();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("prefix", v)) if !v.is_empty() => prefix = v.to_string(),
                _ => {
                    return Err(bad(
                        url,
                        format!("unknown query parameter {pair:?} (only prefix=NAME)"),
                    ))
                }
            }
        }
        if prefix.contains(['{', '}']) {
            return Err(bad(url, "prefix must not contain { or }"));
        }
        let mode = if let Some(rest) = base.strip_prefix("redis+sentinel://") {
            let (password, sentinels, path) = split_hosts(url, rest)?;
            let mut parts = path.split('/');
            let master = parts.next().unwrap_or("").to_string();
            if sentinels.is_empty() || master.is_empty() {
                return Err(bad(
                    url,
                    "expected redis+sentinel://[:password@]host:port,.../MASTER_NAME[/DB]",
                ));
            }
            let db = match parts.next() {
                None | Some("") => 0,
                Some(d) => d.parse().map_err(|_| bad(url, format!("bad db {d:?}")))?,
            };
            Mode::Sentinel {
                sentinels,
                master,
                password,
                db,
            }
        } else if let Some(rest) = base.strip_prefix("redis+cluster://") {
            let (password, nodes, _) = split_hosts(url, rest)?;
            if nodes.is_empty() {
                return Err(bad(
                    url,
                    "expected redis+cluster://[:password@]host:port,...",
                ));
            }
            Mode::Cluster { nodes, password }
        } else if base.starts_with("redis://") || base.starts_with("rediss://") {
            Mode::Single(base.to_string())
        } else {
            return Err(bad(url, "unknown redis scheme"));
        };
        Ok(Target { mode, prefix })
    }

    /// Connects.
    pub(crate) async fn connect(&self) -> Result<Conn> {
        let err = |source| Error::Redis {
            op: "connect",
            source,
        };
        match &self.mode {
            Mode::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(err)?;
                // One plain attempt first: a server that refuses (a
                // certificate, a password) or is not there is named at
                // once, not after the connection manager's retries, during
                // which the process would not even stop.
                bounded(Box::pin(client.get_multiplexed_async_connection()))
                    .await
                    .map_err(err)?;
                Ok(Conn::Single(
                    client.get_connection_manager().await.map_err(err)?,
                ))
            }
            Mode::Sentinel {
                sentinels,
                master,
                password,
                db,
            } => {
                let urls: Vec<String> = sentinels.iter().map(|s| format!("redis://{s}")).collect();
                let node = SentinelNodeConnectionInfo {
                    tls_mode: None,
                    redis_connection_info: Some(RedisConnectionInfo {
                        db: *db,
                        password: password.clone(),
                        ..Default::default()
                    }),
                };
                let client = SentinelClient::build(
                    urls,
                    master.clone(),
                    Some(node),
                    SentinelServerType::Master,
                )
                .map_err(err)?;
                Ok(Conn::Sentinel(
                    SentinelConn::connect(client).await.map_err(err)?,
                ))
            }
            Mode::Cluster { nodes, password } => {
                let urls: Vec<String> = nodes.iter().map(|s| format!("redis://{s}")).collect();
                let mut b = redis::cluster::ClusterClient::builder(urls);
                b = b
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(2);
                if let Some(p) = password {
                    b = b.password(p.clone());
                }
                let client = b.build().map_err(err)?;
                Ok(Conn::Cluster(
                    client.get_async_connection().await.map_err(err)?,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"123456789"), 0x31C3); // the CRC16-XMODEM check value
    }

    #[test]
    fn parses_the_three_modes() {
        let t = Target::parse("redis://127.0.0.1:6379/2?prefix=x").unwrap();
        assert_eq!(t.mode, Mode::Single("redis://127.0.0.1:6379/2".into()));
        assert_eq!(t.prefix, "x");
        let t = Target::parse("redis+sentinel://:pw@a:26379,b:26379/mymaster/1").unwrap();
        assert_eq!(
            t.mode,
            Mode::Sentinel {
                sentinels: vec!["a:26379".into(), "b:26379".into()],
                master: "mymaster".into(),
                password: Some("pw".into()),
                db: 1
            }
        );
        assert_eq!(t.prefix, "rebound");
        let t = Target::parse("redis+cluster://a:7000,b:7001").unwrap();
        assert_eq!(
            t.mode,
            Mode::Cluster {
                nodes: vec!["a:7000".into(), "b:7001".into()],
                password: None
            }
        );
        // A password is percent-decoded in every mode, as `REDIS_PASSWORD`
        // is encoded into the URL (redis-rs decodes the standalone one).
        let pw = crate::config::encode_userinfo("p@ss:w/rd%!");
        for url in [
            format!("redis+sentinel://:{pw}@a:26379/mymaster"),
            format!("redis+cluster://:{pw}@a:7000"),
        ] {
            let password = match Target::parse(&url).unwrap().mode {
                Mode::Sentinel { password, .. } | Mode::Cluster { password, .. } => password,
                Mode::Single(_) => unreachable!(),
            };
            assert_eq!(password.as_deref(), Some("p@ss:w/rd%!"), "{url}");
        }
        let err = Target::parse("redis+cluster://:%FF@a:7000").unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        assert!(Target::parse("redis+sentinel://a:1").is_err());
        assert!(Target::parse("redis://a?bogus=1").is_err());
    }
}
