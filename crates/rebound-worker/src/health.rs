//! Liveness and readiness of a worker.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

use rebound_core::epoch_ms;

/// A poll loop silent this long is not live.
const LIVE_POLL_MS: i64 = 30_000;
/// A poll loop silent this long is not ready.
const READY_POLL_MS: i64 = 10_000;

/// Shared health state, updated by the poll loop and the dispatcher.
#[derive(Debug, Default)]
pub struct Health {
    joined: AtomicBool,
    brokers_up: AtomicBool,
    stopping: AtomicBool,
    last_poll_ms: AtomicI64,
    fatal: Mutex<Option<String>>,
}

/// A snapshot of [`Health`] with the reasons for not being ready. This is
/// the one health shape of every rebound service: `/healthz` and `/readyz`
/// answer it as JSON, `{"live": true, "ready": false, "reasons": ["..."]}`,
/// with 200 when their probe passes and 503 when it does not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HealthReport {
    /// The process should be kept running.
    pub live: bool,
    /// The worker is assigned, polling and connected.
    pub ready: bool,
    /// Why it is not ready / not live (empty when both hold).
    pub reasons: Vec<String>,
}

/// Which question a probe asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `/healthz`: should the process be kept running?
    Live,
    /// `/readyz`: should it get work (traffic, partitions)?
    Ready,
}

impl HealthReport {
    /// A report from named checks: live, and ready when every check passes;
    /// each failed check is a reason `"<name>: <why>"`.
    pub fn from_checks<'a>(
        checks: impl IntoIterator<Item = (&'a str, Result<(), String>)>,
    ) -> Self {
        let reasons: Vec<String> = checks
            .into_iter()
            .filter_map(|(name, r)| r.err().map(|why| format!("{name}: {why}")))
            .collect();
        HealthReport {
            live: true,
            ready: reasons.is_empty(),
            reasons,
        }
    }

    /// Whether `probe` passes.
    pub fn passes(&self, probe: Probe) -> bool {
        match probe {
            Probe::Live => self.live,
            Probe::Ready => self.ready,
        }
    }

    /// The HTTP status a probe answers with: 200 when it passes, else 503.
    pub fn status(&self, probe: Probe) -> u16 {
        if self.passes(probe) {
            200
        } else {
            503
        }
    }
}

impl Health {
    pub(crate) fn polled(&self) {
        self.last_poll_ms.store(epoch_ms(), Ordering::Relaxed);
    }
    pub(crate) fn set_joined(&self) {
        self.joined.store(true, Ordering::Relaxed);
    }
    pub(crate) fn set_brokers_up(&self, up: bool) {
        self.brokers_up.store(up, Ordering::Relaxed);
    }
    pub(crate) fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
    pub(crate) fn set_fatal(&self, why: String) {
        *self.fatal.lock().expect("health lock") = Some(why);
    }

    /// Whether the worker has joined its group and received an assignment.
    pub fn joined(&self) -> bool {
        self.joined.load(Ordering::Relaxed)
    }

    /// Liveness, readiness and the reasons behind them.
    pub fn report(&self) -> HealthReport {
        let mut reasons = Vec::new();
        let since_poll = epoch_ms().saturating_sub(self.last_poll_ms.load(Ordering::Relaxed));
        let mut live = true;
        if let Some(f) = self.fatal.lock().expect("health lock").clone() {
            live = false;
            reasons.push(format!("fatal: {f}"));
        }
        if since_poll > LIVE_POLL_MS {
            live = false;
            reasons.push(format!("poll loop silent for {since_poll} ms"));
        } else if since_poll > READY_POLL_MS {
            reasons.push(format!("poll loop silent for {since_poll} ms"));
        }
        if !self.joined.load(Ordering::Relaxed) {
            reasons.push("not yet assigned by the consumer group".into());
        }
        if !self.brokers_up.load(Ordering::Relaxed) {
            reasons.push("no broker connection is up".into());
        }
        if self.stopping.load(Ordering::Relaxed) {
            reasons.push("shutting down".into());
        }
        HealthReport {
            live,
            ready: live && reasons.is_empty(),
            reasons,
        }
    }

    /// Shorthand for `report().ready`.
    pub fn is_ready(&self) -> bool {
        self.report().ready
    }

    /// Shorthand for `report().live`.
    pub fn is_live(&self) -> bool {
        self.report().live
    }
}
