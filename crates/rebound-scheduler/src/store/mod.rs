//! The [`Store`] trait and store selection by URL.
//!
//! - `file://PATH` — [`file::FileStore`], the embedded default: a redb
//!   database `PATH/tasks.redb` (tasks by id, a due index, leases), every
//!   write durable when acknowledged (in a redo log, concurrent writes
//!   sharing one append and one sync; held in memory and written into redb
//!   by a flusher every 25 ms);
//!   bounded memory, damage reported (never dropped) at open and on read.
//! - `redis://[:password@]host:port[/db]` — [`redis::RedisStore`], standalone.
//! - `redis+sentinel://[:password@]h1:p1,h2:p2/MASTER` — Sentinel.
//! - `redis+cluster://[:password@]h1:p1,h2:p2` — Cluster.
//!
//! - `memory://` — the embedded store on redb's in-memory backend: not
//!   durable; for tests and benchmarks.
//!
//! Redis URLs take `?prefix=NAME` (default `rebound`) for the key namespace.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use crate::error::{Error, Result};
use crate::task::{CancelOutcome, CreateOutcome, Task, TaskState};

pub mod file;
pub mod redis;
mod redis_conn;
mod redis_create;
mod redis_scripts;
mod redis_sentinel;

/// A claimed task: delivery attempt `task.attempts + 1` is in flight under a
/// lease identified by `token`.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The task as stored when claimed.
    pub task: Task,
    /// Lease token; only its holder can finish the attempt.
    pub token: String,
}

/// How a delivery attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// Delivered (or dead-lettered): the task reaches `state`.
    Done {
        /// [`TaskState::Delivered`] or [`TaskState::Dead`].
        state: TaskState,
        /// Attempts made in total.
        attempts: u32,
        /// Last error, for dead tasks.
        error: Option<String>,
    },
    /// Failed: try again at `next_due_ms`.
    Retry {
        /// Attempts made so far.
        attempts: u32,
        /// Next due time.
        next_due_ms: u64,
        /// The failure.
        error: String,
    },
}

/// Filter and page of `GET /tasks`.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only tasks in this state.
    pub state: Option<TaskState>,
    /// Only tasks of this client.
    pub client_id: Option<String>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: usize,
}

/// A page of tasks.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// Tasks of this page.
    pub tasks: Vec<Task>,
    /// Cursor of the next page, if any.
    pub next_cursor: Option<String>,
}

/// Durable task storage with atomic claim-with-lease.
///
/// Guarantees every implementation gives: a created task is durable when
/// `create` returns; `claim` hands each due task to exactly one caller until
/// its lease expires; a lease expiring (the claimer died) makes the task
/// claimable again with the same attempt number; `finish` with a stale token
/// (lease lost or task cancelled) changes nothing and returns `false`.
pub trait Store: Send + Sync + 'static {
    /// Short name for health checks (`file`, `redis`).
    fn name(&self) -> &'static str;

    /// Stores new tasks; an existing id is compared, never overwritten.
    fn create(&self, tasks: Vec<Task>) -> BoxFuture<'_, Result<Vec<CreateOutcome>>>;

    /// Reads one task.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Task>>>;

    /// Cancels a task that has not finished.
    fn cancel<'a>(&'a self, id: &'a str, now_ms: u64) -> BoxFuture<'a, Result<CancelOutcome>>;

    /// Lists tasks, filtered and paginated.
    fn list<'a>(&'a self, query: &'a ListQuery) -> BoxFuture<'a, Result<Page>>;

    /// Atomically claims up to `limit` tasks due at `now_ms` (priority first,
    /// then by due time; expired leases first of all) under a lease of `lease`.
    fn claim(
        &self,
        now_ms: u64,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Claimed>>>;

    /// Ends the attempt of a claim. Returns `false` if the lease was lost.
    fn finish<'a>(
        &'a self,
        claim: &'a Claimed,
        finish: Finish,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<bool>>;

    /// The earliest time something may become claimable (due time or lease
    /// expiry), if anything is pending.
    fn next_due(&self) -> BoxFuture<'_, Result<Option<u64>>>;

    /// How often the dispatcher must poll even without local wake-ups: `None`
    /// for stores only this process writes to.
    fn poll_interval(&self) -> Option<Duration>;

    /// Checks the store is reachable.
    fn health(&self) -> BoxFuture<'_, Result<()>>;
}

/// Opens the store named by `url` (see the module docs for the schemes).
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err(Error::StoreUrl {
                url: url.into(),
                reason: "file:// needs a directory path".into(),
            });
        }
        return Ok(Arc::new(file::FileStore::open(path).await?));
    }
    if url == "memory://" {
        return Ok(Arc::new(file::FileStore::in_memory()));
    }
    if url.starts_with("redis") {
        return Ok(Arc::new(redis::RedisStore::open(url).await?));
    }
    Err(Error::StoreUrl {
        url: rebound_core::error::without_password(url),
        reason: "expected file://PATH, memory://, redis://, redis+sentinel:// or redis+cluster://"
            .into(),
    })
}
