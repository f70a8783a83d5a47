//! State the store handle, its writer thread and its log thread share:
//! settings, the failure that stopped the store, the memtables, and how
//! far the log has synced.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use super::memtable::Overlay;
use crate::error::{Error, Result};

/// State shared by the store handle, its writer thread and its log thread.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// How long final tasks stay readable.
    pub(crate) retention_ms: AtomicU64,
    /// Set once a write failed or damage was found: every later call and
    /// health check reports it (the file needs an operator, not retries).
    failed: Mutex<Option<Failure>>,
    /// The writes not yet in redb, which every read consults first.
    pub(crate) overlay: Overlay,
    /// The last group synced to the log.
    durable: AtomicU64,
    durable_changed: (Mutex<()>, Condvar),
}

/// Why the store stopped: damage is reported as damage.
#[derive(Debug)]
enum Failure {
    Damaged { path: PathBuf, reason: String },
    Stopped(String),
}

impl Failure {
    fn of(e: &Error) -> Failure {
        match e {
            Error::Corrupt { path, reason } => Failure::Damaged {
                path: path.clone(),
                reason: reason.clone(),
            },
            e => Failure::Stopped(rebound_core::DisplayChain(e).to_string()),
        }
    }

    /// As reported to each later call.
    fn error(&self) -> Error {
        match self {
            Failure::Damaged { path, reason } => Error::Corrupt {
                path: path.clone(),
                reason: reason.clone(),
            },
            Failure::Stopped(why) => Error::WriterStopped(why.clone()),
        }
    }
}

/// `e` as a store stopped by it reports it ([`Shared::check`]): one copy
/// for each caller of a failed group.
pub(crate) fn copy_error(e: &Error) -> Error {
    Failure::of(e).error()
}

impl Shared {
    pub(crate) fn fail(&self, why: String) {
        self.stop(Failure::Stopped(why));
    }

    /// [`Shared::fail`] with `e` itself: a damaged file goes on being
    /// reported as [`Error::Corrupt`].
    pub(crate) fn fail_with(&self, e: &Error) {
        self.stop(Failure::of(e));
    }

    fn stop(&self, failure: Failure) {
        let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
        f.get_or_insert(failure);
        drop(f);
        self.durable_changed.1.notify_all();
        self.overlay.changed.notify_all();
    }

    /// The log thread: groups up to `seq` are synced.
    pub(crate) fn set_durable(&self, seq: u64) {
        self.durable.store(seq, Ordering::Release);
        let _g = self.durable_changed.0.lock();
        self.durable_changed.1.notify_all();
    }

    /// The last group synced to the log.
    pub(crate) fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Waits until groups up to `seq` are synced; fails once the store has.
    pub(crate) fn wait_durable(&self, seq: u64) -> Result<()> {
        let mut g = self
            .durable_changed
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        while self.durable.load(Ordering::Acquire) < seq {
            self.check()?;
            g = self
                .durable_changed
                .1
                .wait_timeout(g, Duration::from_millis(10))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        Ok(())
    }

    pub(crate) fn check(&self) -> Result<()> {
        match &*self.failed.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(f) => Err(f.error()),
            None => Ok(()),
        }
    }
}
