//! Group commit through a redo log, with redb written behind.
//!
//! One writer thread applies every write. Callers queue operations on a
//! channel; the thread takes all that are waiting (a group), applies them
//! in order to the active memtable ([`super::memtable`], read through
//! [`super::view`]) and hands the group's changes ([`super::redo`]) and
//! answers to the log thread ([`super::log`]), which answers once the
//! record is `fdatasync`ed. Meanwhile the writer goes on with the next
//! group: fifty concurrent creates cost one append and one sync, and no
//! redb write at all.
//!
//! The flusher thread makes the checkpoints: `checkpoint_every` after the
//! last one (or at once when the active memtable reaches [`FREEZE_BYTES`])
//! it freezes the active memtable, writes it into redb in one durable
//! commit once the log holds all of it, and then drops it and the log
//! files it covered. While it does, writes
//! go on into a new active memtable; they wait only when that one reaches
//! [`ACTIVE_MAX_BYTES`] (the flusher is behind). After a crash redb is back
//! at its last checkpoint and the open replays the log from there
//! ([`super::recover`]).

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use redb::Database;
use tokio::sync::oneshot;

use super::log::{Log, Msg};
use super::memtable::Memtable;
use super::ops::{Op, Out};
use super::shared::{copy_error, Shared};
use super::view::{Stored, Tx};
use crate::error::{Error, Result};

/// Most tasks one group takes: bounds the latency a large backlog of
/// queued calls adds to the first of them.
const MAX_BATCH: usize = 16_384;

/// Most encoded task bytes one group takes (a single create call may be
/// larger: [`super::FileStore`] splits those).
pub(crate) const MAX_GROUP_BYTES: usize = 64 * 1024 * 1024;

/// The active memtable is frozen and written to redb at once when it
/// reaches this size, without waiting for `checkpoint_every`.
pub(crate) const FREEZE_BYTES: usize = 8 * 1024 * 1024;

/// Writes wait while the active memtable holds this much and the frozen
/// one is still being written: the memory of the store's unwritten
/// changes stays below twice this (plus one group).
pub(crate) const ACTIVE_MAX_BYTES: usize = 32 * 1024 * 1024;

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
    /// Writes on the caller's thread, one redb commit per call.
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
    /// checkpoint at least every `checkpoint_every`.
    pub(crate) fn start(
        db: Arc<Database>,
        path: PathBuf,
        shared: Arc<Shared>,
        (log, seq): (Log, u64),
        checkpoint_every: Duration,
    ) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        shared.overlay.lock().seq = seq;
        shared.set_durable(seq);
        let stored = Stored::open(&db, &path)?;
        let thread = std::thread::Builder::new()
            .name("rebound-store-writer".into())
            .spawn(move || {
                let w = Run {
                    db: &db,
                    path: &path,
                    shared: &shared,
                    log: &log,
                    seq,
                    next_token: 0,
                    stored,
                    stored_at: 0,
                };
                w.run(rx, checkpoint_every);
                log.close();
            })
            .map_err(Error::io("<store writer thread>"))?;
        Ok(Writer {
            tx: Some(tx),
            thread: Some(thread),
            inline: None,
        })
    }

    /// Stops the thread after the operations already queued, and waits for
    /// it: everything is in redb and its handle on the database is gone
    /// when this returns.
    pub(crate) fn close(&mut self) {
        self.inline.take();
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Queues `op`; resolves once it is durable (`NextDue`: at once).
    pub(crate) async fn call(&self, op: Op) -> Result<Out> {
        if let Some(i) = &self.inline {
            let mut token = i.next_token.lock().unwrap_or_else(|p| p.into_inner());
            return commit(&i.db, &i.shared, &op, &mut token);
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
/// [`MAX_GROUP_BYTES`]: one group.
fn gather(first: Job, rx: &mpsc::Receiver<Job>) -> Vec<Job> {
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
    jobs
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
    /// redb as of checkpoint number `stored_at`.
    stored: Stored,
    stored_at: u64,
}

impl Run<'_> {
    fn run(mut self, rx: mpsc::Receiver<Job>, every: Duration) {
        std::thread::scope(|s| {
            let (db, path, shared, log) = (self.db, self.path, self.shared, self.log);
            let flusher = std::thread::Builder::new()
                .name("rebound-store-flush".into())
                .spawn_scoped(s, move || flush(db, path, shared, log, every));
            if let Err(e) = &flusher {
                self.shared
                    .fail(format!("could not start the store flusher thread: {e}"));
            }
            while let Ok(first) = rx.recv() {
                let jobs = gather(first, &rx);
                self.group(jobs);
            }
            // Closing: the flusher writes what is left, then stops.
            self.shared.overlay.lock().closing = true;
            self.shared.overlay.changed.notify_all();
            if let Ok(f) = flusher {
                let _ = f.join();
            }
        });
    }

    /// Applies one group to the active memtable and hands its changes and
    /// answers to the log. On failure the group's callers get the error,
    /// and the store stops.
    fn group(&mut self, jobs: Vec<Job>) {
        let retention = self.shared.retention_ms.load(Ordering::Relaxed);
        let overlay = &self.shared.overlay;
        let mut layers = overlay.lock();
        // The flusher is behind: wait for it to take the active memtable.
        while layers.active.bytes() >= ACTIVE_MAX_BYTES && self.shared.check().is_ok() {
            overlay.changed.notify_all();
            layers = overlay.wait(layers, Duration::from_millis(10));
        }
        // redb may panic on a damaged file: caught here, so the failure is
        // recorded before the lock goes (the flusher and the readers check
        // it under the lock and never see part of a group).
        let applied = std::panic::catch_unwind(AssertUnwindSafe(|| {
            self.shared.check()?;
            if layers.checkpoints != self.stored_at {
                // redb now holds what the frozen memtable held.
                self.stored = Stored::open(self.db, self.path)?;
                self.stored_at = layers.checkpoints;
            }
            let frozen = layers.frozen.clone();
            let mut tx = Tx::new(
                self.path,
                &self.stored,
                frozen.as_deref(),
                &mut layers.active,
            );
            let outs =
                tx.apply_group(jobs.iter().map(|j| &j.op), &mut self.next_token, retention)?;
            Ok((outs, tx.take_redo()))
        }))
        .unwrap_or_else(|p| Err(panicked(self.path, "applying writes", &*p)));
        let (outs, redo) = match applied {
            Ok(done) => done,
            Err(e) => {
                // The active memtable may hold part of the group: failing
                // the store (before the lock goes) keeps it from readers
                // and from redb.
                let why = rebound_core::DisplayChain(&e).to_string();
                if !matches!(e, Error::WriterStopped(_)) {
                    tracing::error!(error = %why, "store write failed; the store stops accepting writes");
                }
                // (Waiters are woken by the failure itself.)
                self.shared.fail_with(&e);
                drop(layers);
                for j in jobs {
                    let _ = j.reply.send(Err(copy_error(&e)));
                }
                return;
            }
        };
        let mut replies = Vec::with_capacity(jobs.len());
        for (j, o) in jobs.into_iter().zip(outs) {
            match j.op {
                // A read of the current state: needs nothing durable.
                Op::NextDue => {
                    let _ = j.reply.send(Ok(o));
                }
                _ => replies.push((j.reply, Ok(o))),
            }
        }
        if redo.is_empty() {
            drop(layers);
            if !replies.is_empty() {
                self.log.send(Msg::Reply(replies));
            }
            return;
        }
        self.seq += 1;
        layers.seq = self.seq;
        // Under the lock: the log has the groups in sequence order.
        self.log.send(Msg::Append(self.seq, redo, replies));
        let full = layers.active.bytes() >= FREEZE_BYTES;
        drop(layers);
        if full {
            overlay.changed.notify_all();
        }
    }
}

/// The flusher thread: checkpoints, until the store closes (then one last
/// checkpoint of what is left) or fails.
fn flush(db: &Database, path: &Path, shared: &Shared, log: &Log, every: Duration) {
    let overlay = &shared.overlay;
    let mut last = Instant::now();
    loop {
        let (mem, seq) = {
            let mut layers = overlay.lock();
            loop {
                if shared.check().is_err() {
                    return;
                }
                let waiting = !layers.active.is_empty();
                if waiting
                    && (layers.closing
                        || layers.active.bytes() >= FREEZE_BYTES
                        || last.elapsed() >= every)
                {
                    break;
                }
                if layers.closing {
                    return;
                }
                let wait = if waiting {
                    every.saturating_sub(last.elapsed())
                } else {
                    every
                };
                layers = overlay.wait(layers, wait.max(Duration::from_millis(1)));
            }
            let mem = Arc::new(std::mem::take(&mut layers.active));
            layers.frozen = Some(mem.clone());
            (mem, layers.seq)
        };
        last = Instant::now();
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| {
            // redb's durable state never holds a change the log could lose.
            shared.wait_durable(seq)?;
            mem.checkpoint(db, path, Some(seq))
        }))
        .unwrap_or_else(|p| Err(panicked(path, "the database engine", &*p)));
        if let Err(e) = r {
            let why = rebound_core::DisplayChain(&e).to_string();
            if !matches!(e, Error::WriterStopped(_)) {
                tracing::error!(error = %why, "store checkpoint failed; the store stops accepting writes");
            }
            // Wakes a writer waiting for room.
            shared.fail_with(&e);
            return;
        }
        let mut layers = overlay.lock();
        layers.frozen = None;
        layers.checkpoints += 1;
        drop(layers);
        overlay.changed.notify_all();
        log.send(Msg::Retire(seq));
    }
}

/// A panic (redb panics on some damage) as an error: `during` says where.
fn panicked(path: &Path, during: &str, p: &(dyn std::any::Any + Send)) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("panicked in {during}: {}", super::verify::panic_reason(p)),
    }
}

/// `memory://`: the call applied and written to redb at once; nothing to
/// log or sync.
fn commit(db: &Database, shared: &Shared, op: &Op, next_token: &mut u64) -> Result<Out> {
    let path = Path::new("");
    let retention = shared.retention_ms.load(Ordering::Relaxed);
    shared.check()?;
    let stored = Stored::open(db, path)?;
    let mut mem = Memtable::default();
    let mut outs = Tx::new(path, &stored, None, &mut mem).apply_group([op], next_token, retention);
    drop(stored);
    if outs.is_ok() && !mem.is_empty() {
        outs = mem.checkpoint(db, path, None).and(outs);
    }
    Ok(outs?.pop().expect("one operation, one answer"))
}
