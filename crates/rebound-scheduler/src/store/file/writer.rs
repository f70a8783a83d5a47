//! Group commit: one writer thread owns every write transaction. Callers
//! queue operations on a channel; the thread takes all that are waiting,
//! applies them in order in ONE redb write transaction, commits it once
//! (`Durability::Immediate`: durable when `commit` returns) and only then
//! answers each caller. Fifty concurrent creates cost one commit, not fifty.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use redb::{Database, Durability};
use tokio::sync::{mpsc, oneshot};

use super::ops::{clock_of, Op, Out, Tx};
use super::tables::db_err;
use crate::error::{Error, Result};

/// Most tasks one transaction takes: bounds the latency a large backlog of
/// queued calls adds to the first of them.
const MAX_BATCH: usize = 16_384;

/// State shared by the store handle and its writer thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// How long final tasks stay readable.
    pub(crate) retention_ms: AtomicU64,
    /// Set once a write failed or damage was found: every later write and
    /// health check reports it (the file needs an operator, not retries).
    pub(crate) failed: Mutex<Option<String>>,
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
    tx: Option<mpsc::UnboundedSender<Job>>,
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

    pub(crate) fn start(db: Arc<Database>, path: PathBuf, shared: Arc<Shared>) -> Result<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name("rebound-store-writer".into())
            .spawn(move || run(&db, &path, &shared, rx))
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

    /// Queues `op`; resolves once the transaction holding it is durable.
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

fn run(db: &Database, path: &Path, shared: &Shared, mut rx: mpsc::UnboundedReceiver<Job>) {
    // Tokens only need to differ from those of this process's earlier
    // leases: leases die with the process (they are requeued at open).
    let mut next_token = 0u64;
    while let Some(first) = rx.blocking_recv() {
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
        let result = shared.check().and_then(|()| {
            if jobs.iter().all(|j| matches!(j.op, Op::Barrier)) {
                return Ok(jobs.iter().map(|_| Out::Done).collect());
            }
            let retention = shared.retention_ms.load(Ordering::Relaxed);
            // redb may panic on a damaged page; that is damage to report,
            // not a reason to lose the thread and hang every caller.
            let ops: Vec<&Op> = jobs.iter().map(|j| &j.op).collect();
            std::panic::catch_unwind(AssertUnwindSafe(|| {
                commit(db, path, &ops, &mut next_token, retention)
            }))
            .unwrap_or_else(|p| {
                let why = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                Err(Error::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!("the database engine panicked: {why}"),
                })
            })
        });
        match result {
            Ok(outs) => {
                for (j, o) in jobs.into_iter().zip(outs) {
                    let _ = j.reply.send(Ok(o));
                }
            }
            Err(e) => {
                let why = rebound_core::DisplayChain(&e).to_string();
                if !matches!(e, Error::WriterStopped(_)) {
                    tracing::error!(error = %why, "store write failed; the store stops accepting writes");
                }
                shared.fail(why);
                for j in jobs {
                    let _ = j.reply.send(Err(copy(&e)));
                }
            }
        }
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

fn commit(
    db: &Database,
    path: &Path,
    ops: &[&Op],
    next_token: &mut u64,
    retention_ms: u64,
) -> Result<Vec<Out>> {
    let mut txn = db.begin_write().map_err(|x| db_err(path, x))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|x| db_err(path, x))?;
    // Quick repair commits in two phases and records the allocator state: a
    // restart after a crash needs no walk of the whole file (start-up stays
    // fast at any size), and a damaged newest commit is reported as
    // corruption instead of being rolled back to the one before it.
    txn.set_quick_repair(true);
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
