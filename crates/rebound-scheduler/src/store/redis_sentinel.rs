//! A Sentinel-resolved master connection that follows failovers: when a
//! command fails with a connection error, a timeout or `READONLY` (the old
//! master was demoted), the master is resolved again through the sentinels
//! and later commands go to the new one. The failing command itself returns
//! its error; callers retry (the dispatcher loops, API clients get a 500).

use std::sync::{Arc, RwLock};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::sentinel::SentinelClient;
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// The current master connection plus the client that finds the next one.
#[derive(Clone)]
pub(crate) struct SentinelConn {
    client: Arc<tokio::sync::Mutex<SentinelClient>>,
    current: Arc<RwLock<MultiplexedConnection>>,
}

impl SentinelConn {
    /// Resolves the master and connects.
    pub(crate) async fn connect(mut client: SentinelClient) -> RedisResult<Self> {
        let conn = client.get_async_connection().await?;
        Ok(SentinelConn {
            client: Arc::new(tokio::sync::Mutex::new(client)),
            current: Arc::new(RwLock::new(conn)),
        })
    }

    fn conn(&self) -> MultiplexedConnection {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn after<T>(&self, r: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &r {
            if needs_new_master(e) {
                let mut client = self.client.lock().await;
                match client.get_async_connection().await {
                    Ok(conn) => {
                        tracing::warn!(error = %e, "redis master changed or unreachable; re-resolved through sentinel");
                        *self.current.write().unwrap_or_else(|p| p.into_inner()) = conn;
                    }
                    Err(e2) => tracing::warn!(error = %e2, "sentinel could not name a master"),
                }
            }
        }
        r
    }
}

fn needs_new_master(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_timeout()
        || e.kind() == ErrorKind::ReadOnly
}

impl ConnectionLike for SentinelConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        let mut conn = self.conn();
        Box::pin(async move {
            let r = conn.req_packed_command(cmd).await;
            self.after(r).await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        let mut conn = self.conn();
        Box::pin(async move {
            let r = conn.req_packed_commands(cmd, offset, count).await;
            self.after(r).await
        })
    }

    fn get_db(&self) -> i64 {
        self.conn().get_db()
    }
}
