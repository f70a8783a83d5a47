//! Group commit through a redo log. One writer thread owns every redb write
//! transaction. Callers queue operations on a channel; the thread takes all
//! that are waiting (a group), applies them in order in the open
//! transaction and hands the group's changes ([`super::redo`]) and answers
//! to the log thread ([`super::log`]), which answers once the record is
//! `fdatasync`ed. Meanwhile the writer goes on with the next group: fifty
//! concurrent creates cost one append and one sync, and redb's per-commit
//! cost is paid once per transaction, not once per group.
//!
//! The transaction is committed without sync (`Durability::None`) only when
//! a reader needs to see what was acknowledged (an [`Op::Barrier`]) or after
//! [`MAX_ROWS`] tasks; `checkpoint_every` after its first change (or after
//! [`CHECKPOINT_BYTES`] of log) the commit is durable instead (a checkpoint),
//! and the log files it covers are removed. No commit happens before the
//! log has synced every group in it, so readers and redb's durable state
//! never hold a change the log could lose. A transaction that changed
//! nothing is dropped. After a crash redb is back at its last checkpoint and
//! the open replays the log from there ([`super::recover`]).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use redb::{Database, Durability};
use tokio::sync::oneshot;

use super::log::{Log, Msg, Reply};
use super::ops::{Op, Out};
use super::redo::Tx;
use super::shared::Shared;
use super::tables::db_err;
use crate::error::{Error, Result};

/// Most tasks one group takes: bounds the latency a large backlog of
/// queued calls adds to the first of them.
const MAX_BATCH: usize = 16_384;

/// Most encoded task bytes one group takes (a single create call may be
/// larger: [`super::FileStore`] splits those).
pub(crate) const MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// Most tasks one transaction takes before it is committed.
pub(crate) const MAX_ROWS: usize = 32_768;

/// Most log bytes between durable commits.
pub(crate) const CHECKPOINT_BYTES: usize = 32 * 1024 * 1024;

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
        shared.set_durable(seq);
        let thread = std::thread::Builder::new()
            .name("rebound-store-writer".into())
            .spawn(move || run(&db, &path, &shared, rx, (log, seq), checkpoint_every))
            .map_err(Error::io("<store writer thread>"))?;
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
            return commit(&i.db, &op, &mut token, retention);
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

/// Tasks and encoded bytes of an operation.
fn weight(op: &Op) -> (usize, usize) {
    match op {
        Op::Create(t) => (t.len().max(1), t.iter().map(|(_, e)| e.len()).sum()),
        _ => (1, 0),
    }
}

/// Everything queued after `first`, up to [`MAX_BATCH`] tasks or
/// [`MAX_GROUP_BYTES`]: one group. Adds its tasks to `total_rows`.
fn gather(first: Job, rx: &mpsc::Receiver<Job>, total_rows: &mut usize) -> Vec<Job> {
    let (mut rows, mut bytes) = weight(&first.op);
    let mut jobs = vec![first];
    while rows < MAX_BATCH && bytes < MAX_GROUP_BYTES {
        match rx.try_recv() {
            Ok(j) => {
                let (r, b) = weight(&j.op);
                rows += r;
                bytes += b;
                jobs.push(j);
            }
            Err(_) => break,
        }
    }
    *total_rows += rows;
    jobs
}

/// How a transaction ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Dropped: it changed nothing.
    None,
    /// Committed without sync: visible to readers.
    Visible,
    /// Committed durably: a checkpoint.
    Checkpoint,
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
    /// When the first group after the last checkpoint was applied.
    since_checkpoint: Instant,
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
        since_checkpoint: Instant::now(),
        checkpoint_every,
        logged_since_checkpoint: 0,
        dirty: false,
    };
    let mut open = true;
    while open {
        let first = if r.dirty {
            let left = r
                .checkpoint_every
                .saturating_sub(r.since_checkpoint.elapsed());
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
        if !self.dirty {
            // The log replayed after a crash starts with this transaction.
            self.since_checkpoint = Instant::now();
        }
        // Barrier answers: sent after the commit, so what they promise is
        // visible to readers (and durable: see below).
        let mut held: Vec<Reply> = Vec::new();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| -> Result<Commit> {
            let mut txn = self.db.begin_write().map_err(|x| db_err(self.path, x))?;
            let mut logged = false;
            {
                let mut tx = Tx::open(self.path, &txn)?;
                let deadline = self
                    .since_checkpoint
                    .checked_add(self.checkpoint_every)
                    .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
                let mut rows = 0;
                let mut next = first;
                while let Some(j) = next.take() {
                    let jobs = gather(j, rx, &mut rows);
                    logged |= self.group(&mut tx, jobs, &mut held)?;
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
            if !logged && !self.dirty {
                return Ok(Commit::None); // nothing changed: the transaction is dropped
            }
            let checkpoint = checkpoint_only
                || !open
                || self.since_checkpoint.elapsed() >= self.checkpoint_every
                || self.logged_since_checkpoint >= CHECKPOINT_BYTES;
            if !checkpoint && !logged {
                return Ok(Commit::None);
            }
            // Nothing reaches readers or redb's durable state before its
            // record is synced: a failed log leaves the transaction
            // uncommitted and the store stopped.
            self.shared.wait_durable(self.seq)?;
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
            Ok(if checkpoint {
                Commit::Checkpoint
            } else {
                Commit::Visible
            })
        }))
        .unwrap_or_else(|p| {
            Err(Error::Corrupt {
                path: self.path.to_path_buf(),
                reason: format!(
                    "the database engine panicked: {}",
                    super::verify::panic_reason(&*p)
                ),
            })
        });
        match r {
            Ok(commit) => {
                if commit != Commit::None {
                    self.shared.visible.store(self.seq, Ordering::Release);
                }
                if commit == Commit::Checkpoint {
                    self.log.send(Msg::Retire);
                    self.logged_since_checkpoint = 0;
                    self.dirty = false;
                } else if commit == Commit::Visible {
                    self.dirty = true;
                }
                for (tx, out) in held {
                    let _ = tx.send(out);
                }
            }
            Err(e) => {
                let why = rebound_core::DisplayChain(&e).to_string();
                if !matches!(e, Error::WriterStopped(_)) {
                    tracing::error!(error = %why, "store write failed; the store stops accepting writes");
                }
                self.shared.fail(why);
                // Failed for good: wait for calls (each answered with the
                // failure), not for a checkpoint that cannot come.
                self.dirty = false;
                for (tx, _) in held {
                    let _ = tx.send(Err(copy(&e)));
                }
            }
        }
        open
    }

    /// Applies one group in the open transaction and hands its changes and
    /// answers to the log; `true` if it changed anything. On failure the
    /// group's callers get the error.
    fn group(&mut self, tx: &mut Tx, jobs: Vec<Job>, held: &mut Vec<Reply>) -> Result<bool> {
        let retention = self.shared.retention_ms.load(Ordering::Relaxed);
        let applied = self.shared.check().and_then(|()| {
            tx.apply_group(jobs.iter().map(|j| &j.op), &mut self.next_token, retention)
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
            return Ok(false);
        }
        self.seq += 1;
        // Before any answer can go out: a reader that sees this group
        // acknowledged must also see that it is not yet visible.
        self.shared.applied.store(self.seq, Ordering::Release);
        self.logged_since_checkpoint += redo.len();
        self.log.send(Msg::Append(self.seq, redo, replies));
        Ok(true)
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
fn commit(db: &Database, op: &Op, next_token: &mut u64, retention_ms: u64) -> Result<Out> {
    let path = Path::new("");
    let txn = db.begin_write().map_err(|x| db_err(path, x))?;
    let mut outs = Tx::open(path, &txn)?.apply_group([op], next_token, retention_ms)?;
    txn.commit().map_err(|x| db_err(path, x))?;
    Ok(outs.pop().expect("one operation, one answer"))
}
