//! Wall-clock time in epoch milliseconds, switchable to tokio's (pausable) clock.

use std::time::Duration;

/// Source of "now" for due times. [`Clock::System`] is the wall clock (what
/// instances sharing a Redis store must use); [`Clock::tokio`] follows tokio's
/// clock from a fixed origin, so tests on paused time are deterministic.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// `SystemTime::now()`.
    System,
    /// `origin_ms` plus the tokio time elapsed since `origin`.
    Tokio {
        /// Epoch milliseconds at `origin`.
        origin_ms: u64,
        /// The tokio instant of `origin_ms`.
        origin: tokio::time::Instant,
    },
}

impl Clock {
    /// A clock following tokio time, starting at the current wall-clock time.
    pub fn tokio() -> Self {
        Clock::Tokio {
            origin_ms: system_ms(),
            origin: tokio::time::Instant::now(),
        }
    }

    /// Now, in epoch milliseconds.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System => system_ms(),
            Clock::Tokio { origin_ms, origin } => origin_ms + origin.elapsed().as_millis() as u64,
        }
    }

    /// The tokio instant at which epoch time `ms` is reached.
    pub fn instant_at(&self, ms: u64) -> tokio::time::Instant {
        let now = self.now_ms();
        tokio::time::Instant::now() + Duration::from_millis(ms.saturating_sub(now))
    }
}

/// Core's wall clock (the one the headers use). The scheduler keeps due
/// times unsigned: they are keys of its embedded store's tables on disk,
/// where a time before 1970 cannot occur.
fn system_ms() -> u64 {
    u64::try_from(rebound_core::epoch_ms()).unwrap_or(0)
}
