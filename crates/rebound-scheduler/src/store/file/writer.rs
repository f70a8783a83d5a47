//! Group commit through a redo log. One writer thread owns every redb write
//! transaction. Callers queue operations on a channel; the thread takes all
//! that are waiting (a group), applies them in order in the open
//! transaction and hands the group's changes ([`super::redo`]) and answers
//! to the log thread ([`super::log`]), which answers once the record is
//! `fdatasync`ed. Meanwhile the writer goes on with the next group: fifty
//! concurrent creates cost one append and one sync, and redb's per-commit
//! cost is paid once per transaction, not once per group.
//!
//! The transaction is committed without sync (`Durability::None`) every
//! [`COMMIT_EVERY`] or [`MAX_ROWS`] tasks, and at once when a reader needs
//! to see what was acknowledged (an [`Op::Barrier`]); every
//! `checkpoint_every` (or [`CHECKPOINT_BYTES`] of log) the commit is
//! durable instead, and the log files it covers are removed. After a crash
//! redb is back at its last checkpoint and the open replays the log from
//! there ([`super::recover`]).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use redb::{Database, Durability};
use tokio::sync::oneshot;

use super::log::{Log, Msg, Reply};
use super::ops::{clock_of, Op, Out, Tx};
use super::redo::frame;
use super::tables::db_err;
use crate::error::{Error, Result};

/// Most tasks one group takes: bounds the latency a large backlog of
/// queued calls adds to the first of them.
const MAX_BATCH: usize = 16_384;

/// Most tasks one transaction takes before it is committed.
pub(crate) const MAX_ROWS: usize = 32_768;

/// Most log bytes between durable commits.
pub(crate) const CHECKPOINT_BYTES: usize = 32 * 1024 * 1024;

/// State shared by the store handle and its writer thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// How long final tasks stay readable.
    pub(crate) retention_ms: AtomicU64,
    /// Set once a write failed or damage was found: every later write and
    /// health check reports it (the file needs an operator, not retries).
    pub(crate) failed: Mutex<Option<String>>,
    /// The last group applied in the writer's open transaction.
    pub(crate) applied: AtomicU64,
    /// The last group committed, so visible to read transactions.
    pub(crate) visible: AtomicU64,
}

impl Shared {
    pub(crate) fn fail(&self, why: String) {
        let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert(why);
    }

    pub(crate) fn check(&self) -> Result<()> {
        match &*self.failed.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(why) => Err(Error::WriterStopped(why.clone())),
            None => Ok(()),
        }
    }
}

struct Job {
    op: Op,
    reply: oneshot::Sender<Result<Out>>,
}

/// Handle to the writer thread.
#[derive(Debug)]
pub(crate) struct Writer {
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// `memory://`: no thread; each call commits on the caller's thread.
    /// Nothing to share (no fsync), and tests on paused tokio time stay
    /// deterministic: a reply from another OS thread lets paused time jump.
    inline: Option<Inline>,
}

#[derive(Debug)]
struct Inline {
    db: Arc<Database>,
    shared: Arc<Shared>,
    next_token: Mutex<u64>,
}

impl Writer {
    /// Writes on the caller's thread, one transaction per call.
    pub(crate) fn inline(db: Arc<Database>, shared: Arc<Shared>) -> Self {
        Writer {
            tx: None,
            thread: None,
            inline: Some(Inline {
                db,
                shared,
                next_token: Mutex::new(0),
            }),
        }
    }

    /// Starts the writer thread after group `seq`, logging to `log`, with a
    /// durable checkpoint at least every `checkpoint_every`.
    pub(crate) fn start(
        db: Arc<Database>,
        path: PathBuf,
        shared: Arc<Shared>,
        (log, seq): (Log, u64),
        checkpoint_every: Duration,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        shared.applied.store(seq, Ordering::Release);
        shared.visible.store(seq, Ordering::Release);
        let thread = std::thread::Builder::new()
            .name("rebound-store-writer".into())
            .spawn(move || run(&db, &path, &shared, rx, (log, seq), checkpoint_every))
            .map_err(|source| Error::Io {
                path: PathBuf::from("<store writer thread>"),
                source,
            })?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            inline: None,
        })
    }

    /// Stops the thread after the operations already queued, and waits for
    /// it: its handle on the database is gone when this returns.
    pub(crate) fn close(&mut self) {
        self.inline.take();
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Queues `op`; resolves once it is durable (reads: at once).
    pub(crate) async fn call(&self, op: Op) -> Result<Out> {
        if let Some(i) = &self.inline {
            i.shared.check()?;
            let retention = i.shared.retention_ms.load(Ordering::Relaxed);
            let mut token = i.next_token.lock().unwrap_or_else(|p| p.into_inner());
            let mut outs = commit(&i.db, Path::new(""), &[&op], &mut token, retention)?;
            return Ok(outs.pop().expect("one operation, one answer"));
        }
        let (reply, rx) = oneshot::channel();
        self.tx
            .as_ref()
            .and_then(|tx| tx.send(Job { op, reply }).ok())
            .ok_or_else(|| Error::WriterStopped("store writer thread gone".into()))?;
        rx.await
            .map_err(|_| Error::WriterStopped("store writer thread gone".into()))?
    }
}

fn weight(op: &Op) -> usize {
    match op {
        Op::Create(t) => t.len().max(1),
        _ => 1,
    }
}

/// Everything queued after `first`, up to [`MAX_BATCH`] tasks: one group.
fn gather(first: Job, rx: &mpsc::Receiver<Job>, rows: &mut usize) -> Vec<Job> {
    let mut size = weight(&first.op);
    let mut jobs = vec![first];
    while size < MAX_BATCH {
        match rx.try_recv() {
            Ok(j) => {
                size += weight(&j.op);
                jobs.push(j);
            }
            Err(_) => break,
        }
    }
    *rows += size;
    jobs
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// The writer thread's state.
struct Run<'a> {
    db: &'a Database,
    path: &'a Path,
    shared: &'a Shared,
    log: &'a Log,
    /// The last group given a sequence number (logged).
    seq: u64,
    /// Tokens only need to differ from those of this process's earlier
    /// leases: leases die with the process (they are requeued at open).
    next_token: u64,
    last_checkpoint: Instant,
    checkpoint_every: Duration,
    logged_since_checkpoint: usize,
    /// Groups committed since the last checkpoint (non-durably in redb).
    dirty: bool,
}

fn run(
    db: &Database,
    path: &Path,
    shared: &Shared,
    rx: mpsc::Receiver<Job>,
    (log, seq): (Log, u64),
    checkpoint_every: Duration,
) {
    let mut r = Run {
        db,
        path,
        shared,
        log: &log,
        seq,
        next_token: 0,
        last_checkpoint: Instant::now(),
        checkpoint_every,
        logged_since_checkpoint: 0,
        dirty: false,
    };
    let mut open = true;
    while open {
        let first = if r.dirty {
            let left = r
                .checkpoint_every
                .saturating_sub(r.last_checkpoint.elapsed());
            match rx.recv_timeout(left) {
                Ok(j) => Some(j),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        } else {
            match rx.recv() {
                Ok(j) => Some(j),
                Err(_) => break,
            }
        };
        // `None`: nothing came in time, so this transaction is only the
        // checkpoint that was due.
        open = r.transaction(first, &rx);
    }
    if r.dirty {
        r.transaction(None, &rx);
    }
    log.close();
}

impl Run<'_> {
    /// One redb transaction: groups applied until it is time to commit,
    /// then the commit (a durable checkpoint when due). Returns `false`
    /// once the store handle is gone.
    fn transaction(&mut self, first: Option<Job>, rx: &mpsc::Receiver<Job>) -> bool {
        let mut open = true;
        let checkpoint_only = first.is_none();
        // Barrier answers: sent after the commit, so what they promise is
        // visible to readers.
        let mut held: Vec<Reply> = Vec::new();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| -> Result<bool> {
            let mut txn = self.db.begin_write().map_err(|x| db_err(self.path, x))?;
            {
                let mut tx = Tx::open(self.path, &txn)?;
                let deadline = self.last_checkpoint + self.checkpoint_every;
                let mut rows = 0;
                let mut next = first;
                while let Some(j) = next.take() {
                    let jobs = gather(j, rx, &mut rows);
                    self.group(&mut tx, jobs, &mut held)?;
                    let left = deadline.saturating_duration_since(Instant::now());
                    if !held.is_empty() || left.is_zero() || rows >= MAX_ROWS {
                        break;
                    }
                    next = match rx.recv_timeout(left) {
                        Ok(j) => Some(j),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => {
                            open = false;
                            None
                        }
                    };
                }
                tx.set_applied_seq(self.seq)?;
            }
            // A log that failed leaves the transaction uncommitted: the
            // store stops, and the next open replays what the log holds.
            self.shared.check()?;
            let checkpoint = checkpoint_only
                || !open
                || self.last_checkpoint.elapsed() >= self.checkpoint_every
                || self.logged_since_checkpoint >= CHECKPOINT_BYTES;
            if checkpoint {
                // Later records go to a new file; the older ones are
                // retired once this commit is durable.
                self.log.send(Msg::Rotate);
                txn.set_durability(Durability::Immediate)
                    .map_err(|x| db_err(self.path, x))?;
                // Quick repair commits in two phases and records the
                // allocator state: a restart after a crash needs no walk of
                // the whole file, and a damaged newest commit is reported as
                // corruption instead of being rolled back to the one before.
                txn.set_quick_repair(true);
            } else {
                txn.set_durability(Durability::None)
                    .map_err(|x| db_err(self.path, x))?;
            }
            txn.commit().map_err(|x| db_err(self.path, x))?;
            Ok(checkpoint)
        }))
        .unwrap_or_else(|p| {
            Err(Error::Corrupt {
                path: self.path.to_path_buf(),
                reason: format!("the database engine panicked: {}", panic_text(&*p)),
            })
        });
        match r {
            Ok(checkpoint) => {
                self.shared.visible.store(self.seq, Ordering::Release);
                if checkpoint {
                    self.log.send(Msg::Retire);
                    self.last_checkpoint = Instant::now();
                    self.logged_since_checkpoint = 0;
                    self.dirty = false;
                } else {
                    self.dirty = true;
                }
            }
            Err(e) => {
                let why = rebound_core::DisplayChain(&e).to_string();
                if !matches!(e, Error::WriterStopped(_)) {
                    tracing::error!(error = %why, "store write failed; the store stops accepting writes");
                }
                self.shared.fail(why);
                for (tx, _) in held.drain(..) {
                    let _ = tx.send(Err(copy(&e)));
                }
            }
        }
        if !held.is_empty() {
            self.log.send(Msg::Reply(held));
        }
        open
    }

    /// Applies one group in the open transaction and hands its record and
    /// answers to the log. On failure the group's callers get the error.
    fn group(&mut self, tx: &mut Tx, jobs: Vec<Job>, held: &mut Vec<Reply>) -> Result<()> {
        let retention = self.shared.retention_ms.load(Ordering::Relaxed);
        let applied = self.shared.check().and_then(|()| {
            let mut outs = Vec::with_capacity(jobs.len());
            let mut now = None;
            for j in &jobs {
                outs.push(tx.apply(&j.op, &mut self.next_token, retention)?);
                now = now.max(clock_of(&j.op));
            }
            if let Some(now) = now {
                tx.sweep_some(now, retention)?;
            }
            Ok(outs)
        });
        let outs = match applied {
            Ok(outs) => outs,
            Err(e) => {
                for j in jobs {
                    let _ = j.reply.send(Err(copy(&e)));
                }
                return Err(e);
            }
        };
        let mut replies = Vec::with_capacity(jobs.len());
        for (j, o) in jobs.into_iter().zip(outs) {
            match j.op {
                // A read of the transaction's state: needs nothing durable.
                Op::NextDue => {
                    let _ = j.reply.send(Ok(o));
                }
                Op::Barrier => held.push((j.reply, Ok(o))),
                _ => replies.push((j.reply, Ok(o))),
            }
        }
        let redo = tx.take_redo();
        if redo.is_empty() {
            if !replies.is_empty() {
                self.log.send(Msg::Reply(replies));
            }
            return Ok(());
        }
        self.seq += 1;
        // Before any answer can go out: a reader that sees this group
        // acknowledged must also see that it is not yet visible.
        self.shared.applied.store(self.seq, Ordering::Release);
        let mut rec = Vec::with_capacity(redo.len() + 24);
        frame(self.seq, &redo, &mut rec);
        self.logged_since_checkpoint += rec.len();
        self.log.send(Msg::Append(rec, replies));
        Ok(())
    }
}

/// One error for each caller of a failed batch.
fn copy(e: &Error) -> Error {
    match e {
        Error::Corrupt { path, reason } => Error::Corrupt {
            path: path.clone(),
            reason: reason.clone(),
        },
        e => Error::WriterStopped(rebound_core::DisplayChain(e).to_string()),
    }
}

/// `memory://`: one transaction per call; nothing to log or sync.
fn commit(
    db: &Database,
    path: &Path,
    ops: &[&Op],
    next_token: &mut u64,
    retention_ms: u64,
) -> Result<Vec<Out>> {
    let txn = db.begin_write().map_err(|x| db_err(path, x))?;
    let mut outs = Vec::with_capacity(ops.len());
    {
        let mut tx = Tx::open(path, &txn)?;
        let mut now = None;
        for op in ops {
            outs.push(tx.apply(op, next_token, retention_ms)?);
            now = now.max(clock_of(op));
        }
        if let Some(now) = now {
            tx.sweep_some(now, retention_ms)?;
        }
    }
    txn.commit().map_err(|x| db_err(path, x))?;
    Ok(outs)
}
