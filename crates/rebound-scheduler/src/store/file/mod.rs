//! The embedded store (`file://PATH`): crash-safe without a server, on redb.
//!
//! Layout:
//! - [`tables`] — the tables (tasks by id; the due index ordered by
//!   `(priority rank, due_ms, id)`; leases by id and by expiry; final tasks
//!   by time for retention) and their checksummed encodings.
//! - [`ops`] — create, cancel, claim, finish and retention as steps of a
//!   group of writes, on [`view`]: the memtables ([`memtable`]) over redb.
//! - [`writer`] — the writer thread: group commit of all queued operations
//!   through a redo log ([`redo`] the records, [`log`] the thread that syncs
//!   them) into the active memtable; the flusher thread writes memtables
//!   into redb, a durable checkpoint each; [`recover`] replays the log at
//!   open.
//! - [`read`] — the handle's reads (get, list) of the layers.
//! - [`verify`] — damage detection at open and after it.
//!
//! Tasks live in `PATH/tasks.redb`; redb's page cache is bounded
//! ([`CACHE_BYTES`]), and so are the memtables, so memory does not grow
//! with the number of tasks; opening reads no more than the head of the
//! database file, and the redo log written since its last checkpoint. `PATH/LOCK` makes the
//! directory single-process; leases are requeued when the next process opens
//! it (their holder is gone), so after a restart every unfinished task is due
//! again with the same attempt number.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use redb::Database;

use super::{Claimed, Finish, ListQuery, Page, Store};
use crate::error::{Error, Result};
use crate::task::{CancelOutcome, Task};

mod codec;
mod log;
mod memtable;
mod ops;
mod read;
mod record;
mod recover;
mod redo;
mod shared;
mod tables;
pub mod verify;
mod view;
mod writer;

use ops::{Op, Out};
use shared::Shared;
use writer::Writer;

/// redb's page cache: the store's memory, whatever the number of tasks.
pub const CACHE_BYTES: usize = 48 * 1024 * 1024;

/// Name of the database file inside the store directory.
pub const DB_FILE: &str = "tasks.redb";

/// How [`FileStore::open_with`] opens a store.
#[derive(Debug, Clone)]
pub struct FileOptions {
    /// Files up to this size are verified page by page at open; larger ones
    /// open at once and are verified in the background (see [`verify`]).
    pub verify_at_open_max: u64,
    /// Longest time between durable checkpoints of the database (default
    /// 25 ms): the flusher then writes the changes held in memory into
    /// redb, while writes go on. Between checkpoints acknowledged writes
    /// are durable in the redo log; a restart after a crash replays them.
    /// 100 ms made no measurable difference to creates/s and a slightly
    /// higher dispatch p99 (BENCHMARKS.md).
    pub checkpoint_every: Duration,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            verify_at_open_max: verify::VERIFY_AT_OPEN_MAX,
            checkpoint_every: Duration::from_millis(25),
        }
    }
}

/// The embedded, durable store.
#[derive(Debug)]
pub struct FileStore {
    db: Arc<Database>,
    writer: Writer,
    shared: Arc<Shared>,
    /// The database file; empty for `memory://`.
    path: PathBuf,
    durable: bool,
    _lock: Option<File>,
}

impl FileStore {
    /// Opens (creating if needed) the store in directory `dir`. Fails if
    /// another process holds the directory, and with [`Error::Corrupt`]
    /// naming the file if it is damaged (see [`verify`]).
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(dir, FileOptions::default()).await
    }

    /// [`FileStore::open`] with `options`.
    pub async fn open_with(dir: impl AsRef<Path>, options: FileOptions) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&dir, options))
            .await
            .map_err(|e| Error::WriterStopped(format!("open task panicked: {e}")))?
    }

    fn open_blocking(dir: &Path, options: FileOptions) -> Result<Self> {
        if options.checkpoint_every < Duration::from_millis(1) {
            return Err(Error::Config {
                name: "checkpoint_every".into(),
                reason: format!(
                    "{:?}: at least 1 ms (a checkpoint per group would be one durable \
                     commit per write)",
                    options.checkpoint_every
                ),
            });
        }
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(Error::io(&lock_path))?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => Error::Locked {
                dir: dir.to_path_buf(),
            },
            std::fs::TryLockError::Error(source) => Error::io(&lock_path)(source),
        })?;
        let path = dir.join(DB_FILE);
        let (db, verified) = verify::open_file(&path, options.verify_at_open_max)?;
        let store = Self::start(db, path.clone(), Some(options.checkpoint_every), Some(lock))?;
        // Make the new file's directory entry durable: otherwise a crash
        // could lose the whole database.
        recover::sync_dir(dir)?;
        verify::after_open(&store.db, verified, path, store.shared.clone());
        Ok(store)
    }

    /// The same store on redb's in-memory backend (`memory://`): nothing
    /// survives the process. For tests and benchmarks.
    pub fn in_memory() -> Self {
        let db = redb::Builder::new()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("an in-memory database opens");
        Self::start(db, PathBuf::new(), None, None).expect("an in-memory database starts")
    }

    /// `checkpoint_every`: `None` for `memory://` (nothing durable).
    fn start(
        db: Database,
        path: PathBuf,
        checkpoint_every: Option<Duration>,
        lock: Option<File>,
    ) -> Result<Self> {
        let durable = checkpoint_every.is_some();
        let db = Arc::new(db);
        let shared = Arc::new(Shared::default());
        shared
            .retention_ms
            .store(24 * 3600 * 1000, Ordering::Relaxed);
        tables::create(&db, &path)?;
        let log = match checkpoint_every {
            Some(every) => {
                let dir = path.parent().unwrap_or(Path::new("."));
                Some((every, recover::recover(&db, dir, &path, shared.clone())?))
            }
            None => None,
        };
        let requeued = verify::prepare(&db, &path)?;
        if requeued > 0 {
            tracing::info!(path = %path.display(), requeued, "tasks in flight at the last stop are due again");
        }
        let writer = match log {
            Some((every, (seq, log))) => {
                Writer::start(db.clone(), path.clone(), shared.clone(), (log, seq), every)?
            }
            None => Writer::inline(db.clone(), shared.clone()),
        };
        Ok(FileStore {
            db,
            writer,
            shared,
            path,
            durable,
            _lock: lock,
        })
    }

    /// How long delivered, dead and cancelled tasks stay readable (default 24 h).
    pub fn with_retention(self, retention: Duration) -> Self {
        self.shared
            .retention_ms
            .store(retention.as_millis() as u64, Ordering::Relaxed);
        self
    }

    /// Path of the database file.
    pub fn db_path(&self) -> &Path {
        &self.path
    }

    /// Drops every final task past retention at `now_ms` now (a sweep runs
    /// with every write anyway, a bounded number of tasks at a time).
    /// Returns how many were dropped.
    pub async fn purge(&self, now_ms: u64) -> Result<usize> {
        // A bounded number per call: each call's changes are held in
        // memory until the next checkpoint, as every write's are.
        const PER_CALL: usize = 10_000;
        let mut total = 0;
        loop {
            let op = Op::Purge {
                now_ms,
                max: PER_CALL,
            };
            let n = match self.writer.call(op).await? {
                Out::Purged(n) => n,
                o => unreachable!("purge answered {o:?}"),
            };
            total += n;
            if n < PER_CALL {
                return Ok(total);
            }
        }
    }

    /// Waits until the state a read saw (up to group `seq`) is durable: a
    /// read never answers with a write the log could still lose.
    async fn durable(&self, seq: u64) -> Result<()> {
        if self.shared.durable() < seq {
            self.writer.call(Op::Barrier).await?;
        }
        Ok(())
    }
}

impl Drop for FileStore {
    /// Closes the database before the directory lock is released, so the
    /// directory can be opened again as soon as the store is dropped.
    fn drop(&mut self) {
        self.writer.close();
        // The background verification holds the database for at most one
        // chunk of its walk at a time.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while Arc::strong_count(&self.db) > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Store for FileStore {
    fn name(&self) -> &'static str {
        if self.durable {
            "file"
        } else {
            "memory"
        }
    }

    fn create(&self, tasks: Vec<Task>) -> BoxFuture<'_, Result<Vec<crate::task::CreateOutcome>>> {
        // Encoded here, on the callers' threads, not on the one writer; a
        // very large batch goes as several calls (bounded log records).
        let mut calls: Vec<Vec<(Task, Vec<u8>)>> = vec![Vec::new()];
        let mut bytes = 0;
        for t in tasks {
            let enc = tables::encode_task(&t);
            if bytes + enc.len() > writer::MAX_GROUP_BYTES && bytes > 0 {
                calls.push(Vec::new());
                bytes = 0;
            }
            bytes += enc.len();
            calls.last_mut().expect("one call at least").push((t, enc));
        }
        async move {
            let mut out = Vec::new();
            for call in calls {
                match self.writer.call(Op::Create(call)).await? {
                    Out::Created(o) => out.extend(o),
                    o => unreachable!("create answered {o:?}"),
                }
            }
            Ok(out)
        }
        .boxed()
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Task>>> {
        async move {
            let (task, seq) = read::get(&self.db, &self.path, &self.shared, id)?;
            self.durable(seq).await?;
            Ok(task)
        }
        .boxed()
    }

    fn cancel<'a>(&'a self, id: &'a str, now_ms: u64) -> BoxFuture<'a, Result<CancelOutcome>> {
        async move {
            let op = Op::Cancel {
                id: id.to_string(),
                now_ms,
            };
            match self.writer.call(op).await? {
                Out::Cancelled(o) => Ok(o),
                o => unreachable!("cancel answered {o:?}"),
            }
        }
        .boxed()
    }

    fn list<'a>(&'a self, query: &'a ListQuery) -> BoxFuture<'a, Result<Page>> {
        // A filtered listing may scan many tasks: off the async workers.
        let (db, path, q) = (self.db.clone(), self.path.clone(), query.clone());
        let shared = self.shared.clone();
        async move {
            let (page, seq) =
                tokio::task::spawn_blocking(move || read::list(&db, &path, &shared, &q))
                    .await
                    .map_err(|e| Error::WriterStopped(format!("list task panicked: {e}")))??;
            self.durable(seq).await?;
            Ok(page)
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
            let until_ms = now_ms + lease.as_millis() as u64;
            let op = Op::Claim {
                now_ms,
                limit,
                until_ms,
            };
            match self.writer.call(op).await? {
                Out::Claimed(c) => Ok(c),
                o => unreachable!("claim answered {o:?}"),
            }
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
            let op = Op::Finish {
                claim: Box::new(claim.clone()),
                finish,
                now_ms,
            };
            match self.writer.call(op).await? {
                Out::Finished(b) => Ok(b),
                o => unreachable!("finish answered {o:?}"),
            }
        }
        .boxed()
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<u64>>> {
        async move {
            match self.writer.call(Op::NextDue).await? {
                Out::NextDue(n) => Ok(n),
                o => unreachable!("next_due answered {o:?}"),
            }
        }
        .boxed()
    }

    fn poll_interval(&self) -> Option<Duration> {
        None
    }

    fn health(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            self.shared.check()?;
            self.writer.call(Op::Barrier).await.map(|_| ())
        }
        .boxed()
    }
}
