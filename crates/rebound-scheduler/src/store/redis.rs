//! The Redis store (`redis://`, `redis+sentinel://`, `redis+cluster://`).
//!
//! Unlike Rebound's unscripted ZRANGEBYSCORE + ZREM, a due task is claimed by
//! one Lua script that moves it from the due zset to a lease zset scored by
//! lease expiry; expired leases are claimed again by the same script. Only the
//! holder of the current lease token can finish an attempt. See
//! `redis_scripts.rs` (and the README) for the key layout.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use redis::{AsyncCommands, Script};

use super::redis_conn::{Conn, Target};
use super::redis_create::{Coalescer, Creator, CHUNK};
use super::redis_scripts as lua;
use super::{Claimed, Finish, ListQuery, Page, Store};
use crate::error::{Error, Result};
use crate::task::{CancelOutcome, CreateOutcome, Task, TaskSpec, TaskState};

/// Task storage in Redis with scripted claim-with-lease.
pub struct RedisStore {
    conn: Conn,
    keys: [String; 3],
    base: String,
    instance: String,
    claims: AtomicU64,
    retention: Duration,
    poll: Duration,
    creates: Coalescer,
    claim: Script,
    finish: Script,
    cancel: Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("base", &self.base)
            .finish()
    }
}

fn rerr(op: &'static str) -> impl FnOnce(redis::RedisError) -> Error {
    move |source| Error::Redis { op, source }
}

impl RedisStore {
    /// Connects to the Redis named by `url` (see [`crate::store`]).
    pub async fn open(url: &str) -> Result<Self> {
        let target = Target::parse(url)?;
        let conn = target.connect().await?;
        let p = format!("{{{}}}", target.prefix);
        let creator = Creator {
            conn: conn.clone(),
            keys: [format!("{p}:due:prio"), format!("{p}:due")],
            base: format!("{p}:task:"),
            script: std::sync::Arc::new(Script::new(lua::CREATE)),
        };
        Ok(RedisStore {
            creates: Coalescer::start(creator),
            conn,
            keys: [
                format!("{p}:due:prio"),
                format!("{p}:due"),
                format!("{p}:lease"),
            ],
            base: format!("{p}:task:"),
            instance: format!("{:016x}", rand::random::<u64>()),
            claims: AtomicU64::new(0),
            retention: Duration::from_secs(24 * 3600),
            poll: Duration::from_millis(10),
            claim: Script::new(lua::CLAIM),
            finish: Script::new(lua::FINISH),
            cancel: Script::new(lua::CANCEL),
        })
    }

    /// How long delivered, dead and cancelled tasks stay readable (default 24 h).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How often dispatchers poll for tasks created by other instances
    /// (default 10 ms).
    pub fn with_poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    fn decode(id: &str, f: &HashMap<String, String>) -> Result<Task> {
        let bad = |reason: String| Error::Decode {
            id: id.to_string(),
            reason,
        };
        let num = |k: &str| -> Result<u64> {
            f.get(k)
                .ok_or_else(|| bad(format!("missing {k}")))?
                .parse()
                .map_err(|e| bad(format!("{k}: {e}")))
        };
        let spec: TaskSpec =
            serde_json::from_str(f.get("spec").ok_or_else(|| bad("missing spec".into()))?)
                .map_err(|e| bad(format!("spec: {e}")))?;
        let state = f
            .get("state")
            .and_then(|s| TaskState::parse(s))
            .ok_or_else(|| bad("bad state".into()))?;
        Ok(Task {
            spec,
            state,
            attempts: num("attempts")? as u32,
            created_at_ms: num("created")?,
            next_due_ms: f.get("due").and_then(|d| d.parse().ok()),
            last_error: f.get("last_error").filter(|e| !e.is_empty()).cloned(),
            updated_at_ms: num("updated")?,
        })
    }

    async fn get_task(&self, id: &str) -> Result<Option<Task>> {
        let mut conn = self.conn.clone();
        let f: HashMap<String, String> = conn
            .hgetall(format!("{}{id}", self.base))
            .await
            .map_err(rerr("get"))?;
        if f.is_empty() {
            return Ok(None);
        }
        Self::decode(id, &f).map(Some)
    }
}

impl Store for RedisStore {
    fn name(&self) -> &'static str {
        "redis"
    }

    fn create(&self, tasks: Vec<Task>) -> BoxFuture<'_, Result<Vec<CreateOutcome>>> {
        async move {
            let creator = self.creates.creator();
            match tasks.len() {
                0 => return Ok(Vec::new()),
                1 => {
                    let task = tasks.into_iter().next().expect("one task");
                    return Ok(vec![self.creates.create(task).await?]);
                }
                n if n <= CHUNK => return creator.chunk(&tasks).await,
                _ => {}
            }
            let parts =
                futures::future::try_join_all(tasks.chunks(CHUNK).map(|c| creator.chunk(c)))
                    .await?;
            Ok(parts.into_iter().flatten().collect())
        }
        .boxed()
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Task>>> {
        self.get_task(id).boxed()
    }

    fn cancel<'a>(&'a self, id: &'a str, now_ms: u64) -> BoxFuture<'a, Result<CancelOutcome>> {
        async move {
            let mut conn = self.conn.clone();
            let r: String = self
                .cancel
                .key(&self.keys[0])
                .key(&self.keys[1])
                .key(&self.keys[2])
                .arg(&self.base)
                .arg(id)
                .arg(now_ms)
                .arg(self.retention.as_secs().max(1))
                .invoke_async(&mut conn)
                .await
                .map_err(rerr("cancel"))?;
            Ok(match r.as_str() {
                "ok" => CancelOutcome::Cancelled,
                "missing" => CancelOutcome::NotFound,
                s => {
                    CancelOutcome::AlreadyFinal(TaskState::parse(s).unwrap_or(TaskState::Cancelled))
                }
            })
        }
        .boxed()
    }

    fn list<'a>(&'a self, q: &'a ListQuery) -> BoxFuture<'a, Result<Page>> {
        async move {
            let mut conn = self.conn.clone();
            let mut cursor: u64 = q
                .cursor
                .as_deref()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            let pattern = format!("{}*", self.base);
            let mut tasks = Vec::new();
            loop {
                let (next, keys) = conn
                    .scan(&self.base, cursor, &pattern, q.limit.max(10))
                    .await
                    .map_err(rerr("list"))?;
                let mut pipe = redis::pipe();
                for k in &keys {
                    pipe.hgetall(k);
                }
                let found: Vec<HashMap<String, String>> =
                    pipe.query_async(&mut conn).await.map_err(rerr("list"))?;
                for (k, f) in keys.iter().zip(found) {
                    if f.is_empty() {
                        continue;
                    }
                    let t = Self::decode(&k[self.base.len()..], &f)?;
                    if q.state.is_some_and(|s| s != t.state)
                        || q.client_id.as_ref().is_some_and(|c| *c != t.spec.client_id)
                    {
                        continue;
                    }
                    tasks.push(t);
                }
                cursor = next;
                if cursor == 0 || tasks.len() >= q.limit {
                    break;
                }
            }
            Ok(Page {
                tasks,
                next_cursor: (cursor != 0).then(|| cursor.to_string()),
            })
        }
        .boxed()
    }

    fn claim(
        &self,
        now_ms: u64,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Claimed>>> {
        async move {
            let token = format!(
                "{}:{}",
                self.instance,
                self.claims.fetch_add(1, Ordering::Relaxed)
            );
            let mut conn = self.conn.clone();
            let flat: Vec<String> = self
                .claim
                .key(&self.keys[0])
                .key(&self.keys[1])
                .key(&self.keys[2])
                .arg(&self.base)
                .arg(now_ms)
                .arg(limit)
                .arg(now_ms + lease.as_millis() as u64)
                .arg(&token)
                .invoke_async(&mut conn)
                .await
                .map_err(rerr("claim"))?;
            let mut out = Vec::with_capacity(flat.len() / 7);
            for g in flat.chunks_exact(7) {
                let names = [
                    "spec",
                    "attempts",
                    "created",
                    "last_error",
                    "due",
                    "updated",
                ];
                let mut f: HashMap<String, String> = names
                    .iter()
                    .zip(&g[1..])
                    .map(|(n, v)| (n.to_string(), v.clone()))
                    .collect();
                f.insert("state".into(), "delivering".into());
                out.push(Claimed {
                    task: Self::decode(&g[0], &f)?,
                    token: token.clone(),
                });
            }
            Ok(out)
        }
        .boxed()
    }

    fn finish<'a>(
        &'a self,
        claim: &'a Claimed,
        finish: Finish,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        async move {
            let (kind, attempts, next_due, error) = match finish {
                Finish::Done {
                    state,
                    attempts,
                    error,
                } => (state.as_str(), attempts, 0, error.unwrap_or_default()),
                Finish::Retry {
                    attempts,
                    next_due_ms,
                    error,
                } => ("retry", attempts, next_due_ms, error),
            };
            let mut conn = self.conn.clone();
            let ok: i64 = self
                .finish
                .key(&self.keys[0])
                .key(&self.keys[1])
                .key(&self.keys[2])
                .arg(&self.base)
                .arg(claim.task.id())
                .arg(&claim.token)
                .arg(kind)
                .arg(now_ms)
                .arg(attempts)
                .arg(next_due)
                .arg(error)
                .arg(self.retention.as_secs().max(1))
                .arg(if claim.task.spec.is_priority {
                    "1"
                } else {
                    "0"
                })
                .invoke_async(&mut conn)
                .await
                .map_err(rerr("finish"))?;
            Ok(ok == 1)
        }
        .boxed()
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<u64>>> {
        async move {
            let mut conn = self.conn.clone();
            let mut pipe = redis::pipe();
            for k in &self.keys {
                pipe.cmd("ZRANGE").arg(k).arg(0).arg(0).arg("WITHSCORES");
            }
            let firsts: Vec<Vec<(String, f64)>> = pipe
                .query_async(&mut conn)
                .await
                .map_err(rerr("next_due"))?;
            Ok(firsts.into_iter().flatten().map(|(_, s)| s as u64).min())
        }
        .boxed()
    }

    fn poll_interval(&self) -> Option<Duration> {
        Some(self.poll)
    }

    fn health(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let mut conn = self.conn.clone();
            let cmd = redis::cmd("PING");
            let ping = cmd.query_async::<String>(&mut conn);
            match tokio::time::timeout(Duration::from_secs(3), ping).await {
                Ok(r) => r.map(|_| ()).map_err(rerr("ping")),
                Err(_) => Err(Error::Redis {
                    op: "ping",
                    source: redis::RedisError::from((
                        redis::ErrorKind::IoError,
                        "no answer within 3 s",
                    )),
                }),
            }
        }
        .boxed()
    }
}
