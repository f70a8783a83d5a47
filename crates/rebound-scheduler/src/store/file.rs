//! The embedded store (`file://PATH`): crash-safe without a server.
//!
//! State lives in memory (`file_state`); every change is appended to
//! `PATH/tasks.log` and acknowledged only after `fsync` (`file_log`:
//! concurrent writes share one `fsync`). Opening replays the log; the log is
//! compacted to a snapshot when it has grown to several times the live data.
//! Leases are in memory only: the directory is locked to one process, so a
//! restart means every lease holder is gone and unfinished tasks are due again.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::file_log::{self, frame, LogWriter};
use super::file_state::{Event, State};
use super::{Claimed, Finish, ListQuery, Page, Store};
use crate::error::{Error, Result};
use crate::task::{CancelOutcome, CreateOutcome, Task};

/// Log size below which no compaction happens.
const MIN_COMPACT_BYTES: u64 = 64 * 1024 * 1024;

/// The embedded, fsync'd store.
#[derive(Debug)]
pub struct FileStore {
    state: Mutex<State>,
    /// `None` for the non-durable in-memory store (`memory://`).
    log: Option<LogWriter>,
    log_bytes: AtomicU64,
    snapshot_bytes: AtomicU64,
    retention: Duration,
    path: PathBuf,
    _lock: Option<File>,
}

fn encode(ev: &Event, out: &mut Vec<u8>) {
    let json = serde_json::to_vec(ev).expect("events serialize");
    frame(&json, out);
}

impl FileStore {
    /// Opens (creating if needed) the store in directory `dir`, replaying its
    /// log. Fails if another process holds the directory.
    pub async fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&dir))
            .await
            .map_err(|e| Error::WriterStopped(format!("open task panicked: {e}")))?
    }

    fn open_blocking(dir: &Path) -> Result<Self> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("LOCK");
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        lock.try_lock().map_err(|e| Error::Io {
            path: lock_path.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!("store directory is in use by another process: {e}"),
            ),
        })?;
        let path = dir.join("tasks.log");
        let mut state = State::default();
        let mut bytes = 0u64;
        for (i, rec) in file_log::replay(&path)?.into_iter().enumerate() {
            bytes += rec.len() as u64 + 8;
            let ev: Event = serde_json::from_slice(&rec).map_err(|e| Error::Corrupt {
                path: path.clone(),
                offset: i as u64,
                reason: format!("record {i}: {e}"),
            })?;
            state.replay(ev);
        }
        tracing::info!(path = %path.display(), tasks = state.len(), bytes, "store replayed");
        Ok(FileStore {
            state: Mutex::new(state),
            log: Some(LogWriter::start(path.clone())?),
            log_bytes: AtomicU64::new(bytes),
            snapshot_bytes: AtomicU64::new(bytes),
            retention: Duration::from_secs(24 * 3600),
            path,
            _lock: Some(lock),
        })
    }

    /// The same store without a log (`memory://`): nothing survives the
    /// process. For tests (deterministic on paused time) and benchmarks.
    pub fn in_memory() -> Self {
        FileStore {
            state: Mutex::new(State::default()),
            log: None,
            log_bytes: AtomicU64::new(0),
            snapshot_bytes: AtomicU64::new(0),
            retention: Duration::from_secs(24 * 3600),
            path: PathBuf::new(),
            _lock: None,
        }
    }

    /// How long delivered, dead and cancelled tasks stay readable (default 24 h).
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// Path of the log file.
    pub fn log_path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn append_locked(&self, bytes: Vec<u8>) -> file_log::Pending {
        self.log_bytes
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        match &self.log {
            Some(log) => log.append(bytes),
            None => file_log::ready(),
        }
    }

    /// Rewrites the log as a snapshot of the live tasks now.
    pub async fn compact(&self, now_ms: u64) -> Result<()> {
        let pending = {
            let mut st = self.lock();
            let cutoff = now_ms.saturating_sub(self.retention.as_millis() as u64);
            let mut snap = Vec::new();
            for t in st.retain_and_snapshot(cutoff) {
                encode(
                    &Event::Put {
                        task: Box::new(t.clone()),
                    },
                    &mut snap,
                );
            }
            self.log_bytes.store(snap.len() as u64, Ordering::Relaxed);
            self.snapshot_bytes
                .store(snap.len() as u64, Ordering::Relaxed);
            match &self.log {
                Some(log) => log.compact(snap),
                None => file_log::ready(),
            }
        };
        file_log::wait(pending).await
    }

    async fn maybe_compact(&self, now_ms: u64) -> Result<()> {
        let size = self.log_bytes.load(Ordering::Relaxed);
        let snap = self.snapshot_bytes.load(Ordering::Relaxed);
        if size > MIN_COMPACT_BYTES && size > snap.saturating_mul(4) {
            self.compact(now_ms).await?;
        }
        Ok(())
    }
}

impl Store for FileStore {
    fn name(&self) -> &'static str {
        if self.log.is_some() {
            "file"
        } else {
            "memory"
        }
    }

    fn create(&self, tasks: Vec<Task>) -> BoxFuture<'_, Result<Vec<CreateOutcome>>> {
        async move {
            let (outcomes, pending) = {
                let mut st = self.lock();
                let mut buf = Vec::new();
                let mut outcomes = Vec::with_capacity(tasks.len());
                for task in tasks {
                    let o = st.create(&task);
                    if o == CreateOutcome::Created {
                        encode(
                            &Event::Put {
                                task: Box::new(task),
                            },
                            &mut buf,
                        );
                    }
                    outcomes.push(o);
                }
                // Always a write, even an empty barrier: a duplicate is only
                // acknowledged once the original's record is durable.
                (outcomes, self.append_locked(buf))
            };
            file_log::wait(pending).await?;
            Ok(outcomes)
        }
        .boxed()
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Task>>> {
        let t = self.lock().get(id);
        async move { Ok(t) }.boxed()
    }

    fn cancel<'a>(&'a self, id: &'a str, now_ms: u64) -> BoxFuture<'a, Result<CancelOutcome>> {
        async move {
            let (outcome, pending) = {
                let mut st = self.lock();
                let (outcome, ev) = st.cancel(id, now_ms);
                let mut buf = Vec::new();
                if let Some(ev) = ev {
                    encode(&ev, &mut buf);
                }
                (outcome, self.append_locked(buf))
            };
            file_log::wait(pending).await?;
            Ok(outcome)
        }
        .boxed()
    }

    fn list<'a>(&'a self, query: &'a ListQuery) -> BoxFuture<'a, Result<Page>> {
        let page = self.lock().list(query);
        async move { Ok(page) }.boxed()
    }

    fn claim(
        &self,
        now_ms: u64,
        limit: usize,
        lease: Duration,
    ) -> BoxFuture<'_, Result<Vec<Claimed>>> {
        let until = now_ms + lease.as_millis() as u64;
        let claimed = self.lock().claim(now_ms, limit, until);
        async move { Ok(claimed) }.boxed()
    }

    fn finish<'a>(
        &'a self,
        claim: &'a Claimed,
        finish: Finish,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<bool>> {
        async move {
            let pending = {
                let mut st = self.lock();
                match st.finish(claim, finish, now_ms) {
                    None => return Ok(false),
                    Some(ev) => {
                        let mut buf = Vec::new();
                        encode(&ev, &mut buf);
                        self.append_locked(buf)
                    }
                }
            };
            file_log::wait(pending).await?;
            self.maybe_compact(now_ms).await?;
            Ok(true)
        }
        .boxed()
    }

    fn next_due(&self) -> BoxFuture<'_, Result<Option<u64>>> {
        let next = self.lock().next_due();
        async move { Ok(next) }.boxed()
    }

    fn poll_interval(&self) -> Option<Duration> {
        None
    }

    fn health(&self) -> BoxFuture<'_, Result<()>> {
        async move {
            let pending = match &self.log {
                Some(log) => log.append(Vec::new()),
                None => file_log::ready(),
            };
            file_log::wait(pending).await
        }
        .boxed()
    }
}
