//! Liveness and readiness of a stream application, answered as the
//! worker's [`HealthReport`] (the one health shape of rebound services).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;

use rebound_core::epoch_ms;
use rebound_worker::HealthReport;

/// A loop silent this long is not ready (a restore counts as activity).
const READY_LOOP_MS: i64 = 30_000;

/// Shared health state, updated by the processing loop.
#[derive(Debug, Default)]
pub struct StreamHealth {
    assigned: AtomicBool,
    restoring: AtomicUsize,
    last_loop_ms: AtomicI64,
    stopping: AtomicBool,
    fatal: Mutex<Option<String>>,
}

impl StreamHealth {
    pub(crate) fn looped(&self) {
        self.last_loop_ms.store(epoch_ms(), Ordering::Relaxed);
    }
    pub(crate) fn set_assigned(&self) {
        self.assigned.store(true, Ordering::Relaxed);
    }
    pub(crate) fn restoring(&self, n: usize) {
        self.restoring.store(n, Ordering::Relaxed);
    }
    pub(crate) fn set_stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }
    pub(crate) fn set_fatal(&self, why: String) {
        *self.fatal.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }

    /// Live unless the loop failed; ready when assigned, not restoring,
    /// looping and not stopping.
    pub fn report(&self) -> HealthReport {
        let silent = epoch_ms() - self.last_loop_ms.load(Ordering::Relaxed);
        let restoring = self.restoring.load(Ordering::Relaxed);
        let fatal = self.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut report = HealthReport::from_checks([
            (
                "group",
                if self.assigned.load(Ordering::Relaxed) {
                    Ok(())
                } else {
                    Err("not yet assigned by the consumer group".to_string())
                },
            ),
            (
                "state",
                if restoring == 0 {
                    Ok(())
                } else {
                    Err(format!("restoring {restoring} partition(s)"))
                },
            ),
            (
                "loop",
                if restoring > 0 || silent <= READY_LOOP_MS {
                    Ok(())
                } else {
                    Err(format!("processing loop silent for {silent} ms"))
                },
            ),
            (
                "shutdown",
                if self.stopping.load(Ordering::Relaxed) {
                    Err("shutting down".to_string())
                } else {
                    Ok(())
                },
            ),
            ("fatal", fatal.clone().map_or(Ok(()), Err)),
        ]);
        if fatal.is_some() {
            report.live = false;
            report.ready = false;
        }
        report
    }
}
