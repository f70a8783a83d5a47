//! Liveness and readiness of a relay.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;

use rebound_core::epoch_ms;

/// A loop silent this long is not ready (it is stuck on the database or Kafka).
const READY_LOOP_MS: i64 = 30_000;

/// Shared health state, updated by the relay loop.
#[derive(Debug, Default)]
pub struct RelayHealth {
    connected: AtomicBool,
    active: AtomicBool,
    stopping: AtomicBool,
    last_loop_ms: AtomicI64,
    last_error: Mutex<Option<String>>,
}

/// Liveness, readiness and the reasons behind them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayReport {
    /// The process should be kept running.
    pub live: bool,
    /// Connected and looping (active or standby: a standby is ready to take over).
    pub ready: bool,
    /// Whether this instance is the one publishing.
    pub active: bool,
    /// Why it is not ready (empty when it is).
    pub reasons: Vec<String>,
}

impl RelayHealth {
    pub(crate) fn looped(&self, connected: bool, active: bool) {
        self.last_loop_ms.store(epoch_ms(), Ordering::Relaxed);
        self.connected.store(connected, Ordering::Relaxed);
        self.active.store(active, Ordering::Relaxed);
        if connected {
            *self.last_error.lock().expect("health lock") = None;
        }
    }

    pub(crate) fn failed(&self, why: String) {
        self.connected.store(false, Ordering::Relaxed);
        self.active.store(false, Ordering::Relaxed);
        *self.last_error.lock().expect("health lock") = Some(why);
    }

    pub(crate) fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The current report.
    pub fn report(&self) -> RelayReport {
        let mut reasons = Vec::new();
        let silent = epoch_ms() - self.last_loop_ms.load(Ordering::Relaxed);
        if silent > READY_LOOP_MS {
            reasons.push(format!("relay loop silent for {silent} ms"));
        }
        if !self.connected.load(Ordering::Relaxed) {
            let why = self.last_error.lock().expect("health lock").clone();
            reasons.push(match why {
                Some(e) => format!("not connected: {e}"),
                None => "not connected yet".to_string(),
            });
        }
        if self.stopping.load(Ordering::Relaxed) {
            reasons.push("shutting down".into());
        }
        RelayReport {
            live: true,
            ready: reasons.is_empty(),
            active: self.active.load(Ordering::Relaxed),
            reasons,
        }
    }
}
