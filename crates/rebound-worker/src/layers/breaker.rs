//! Circuit breaker: after `consecutive_failures` failures in a row, or a
//! failure ratio over a sliding window, the breaker opens for `cooldown`;
//! then it half-opens and lets one trial call through: success closes it,
//! failure reopens it.
//!
//! While open, calls wait (they are neither skipped nor failed), and the
//! worker given [`Breaker::pause_signal`] stops starting records and pauses
//! fetching. Only transient and throttled errors count as failures: a
//! permanent error is the record's fault, not the downstream's.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rebound_core::{ErrorKind, HandlerResult, Record};
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use super::Layer;
use crate::{Handler, Metrics};

/// When the breaker opens and for how long.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker (0: off).
    pub consecutive_failures: u32,
    /// Failure ratio over `window` that opens it (`None`: off).
    pub failure_ratio: Option<f64>,
    /// The sliding window of the ratio.
    pub window: Duration,
    /// Calls needed in the window before the ratio applies.
    pub min_calls: u32,
    /// How long it stays open before a trial.
    pub cooldown: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            failure_ratio: None,
            window: Duration::from_secs(30),
            min_calls: 20,
            cooldown: Duration::from_secs(10),
        }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls wait for the cooldown.
    Open,
    /// One trial call is let through.
    HalfOpen,
}

impl BreakerState {
    fn name(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
    fn gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

struct Inner {
    state: BreakerState,
    /// Bumped on every opening, so a stale cooldown timer does nothing.
    epoch: u64,
    consecutive: u32,
    window: VecDeque<(Instant, bool)>,
    trial_in_flight: bool,
    /// What the last failure counted said, for the log when it opens.
    last_failure: Option<String>,
}

/// A circuit breaker shared by the handlers of a worker.
pub struct Breaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
    state_tx: watch::Sender<BreakerState>,
    paused_tx: watch::Sender<bool>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Breaker")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

/// A call the breaker counts, recorded exactly once however the call ends:
/// by [`Ticket::finish`], or on drop. A panic counts as a transient failure;
/// a cancelled call (worker stop, abort, a timeout around it) gives no
/// verdict but gives the half-open trial back, so the next call takes it.
struct Ticket {
    breaker: Arc<Breaker>,
    trial: bool,
    recorded: bool,
}

impl Ticket {
    /// `why`: what a failure said, named when it opens the breaker.
    fn finish(mut self, failure: Option<bool>, why: Option<String>) {
        self.recorded = true;
        self.breaker.record_why(self.trial, failure, why);
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.recorded {
            return;
        }
        if std::thread::panicking() {
            let why = Some("the handler panicked".to_string());
            self.breaker.record_why(self.trial, Some(true), why);
        } else if self.trial {
            self.breaker.lock().trial_in_flight = false;
            // Wake the callers waiting for the trial.
            self.breaker.state_tx.send_modify(|_| {});
        }
    }
}

impl Breaker {
    /// A closed breaker.
    pub fn new(config: BreakerConfig, metrics: Option<Arc<Metrics>>) -> Arc<Self> {
        Arc::new(Breaker {
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                epoch: 0,
                consecutive: 0,
                window: VecDeque::new(),
                trial_in_flight: false,
                last_failure: None,
            }),
            state_tx: watch::channel(BreakerState::Closed).0,
            paused_tx: watch::channel(false).0,
            metrics,
        })
    }

    /// The current state.
    pub fn state(&self) -> BreakerState {
        self.lock().state
    }

    /// The state lock. No handler code runs under it, so a poisoned lock
    /// still holds consistent state (and a ticket dropped while a panic
    /// unwinds must not panic again).
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// State changes.
    pub fn subscribe(&self) -> watch::Receiver<BreakerState> {
        self.state_tx.subscribe()
    }

    /// `true` while open: give it to the worker (`with_pause_signal`) so it
    /// stops starting records and pauses fetching.
    pub fn pause_signal(&self) -> watch::Receiver<bool> {
        self.paused_tx.subscribe()
    }

    fn transition(self: &Arc<Self>, inner: &mut Inner, to: BreakerState) {
        if inner.state == to {
            return;
        }
        inner.state = to;
        match to {
            BreakerState::Open => {
                inner.epoch += 1;
                inner.trial_in_flight = false;
                warn!(
                    cooldown = ?self.config.cooldown,
                    last_failure = inner.last_failure.as_deref().unwrap_or("none recorded"),
                    "circuit breaker open: pausing"
                );
                let (me, epoch, cooldown) = (Arc::clone(self), inner.epoch, self.config.cooldown);
                tokio::spawn(async move {
                    tokio::time::sleep(cooldown).await;
                    let mut inner = me.lock();
                    if inner.state == BreakerState::Open && inner.epoch == epoch {
                        me.transition(&mut inner, BreakerState::HalfOpen);
                    }
                });
            }
            BreakerState::HalfOpen => info!("circuit breaker half-open: one trial call"),
            BreakerState::Closed => {
                inner.consecutive = 0;
                inner.window.clear();
                inner.last_failure = None;
                info!("circuit breaker closed");
            }
        }
        if let Some(m) = &self.metrics {
            m.breaker_transition(to.name(), to.gauge());
        }
        self.state_tx.send_replace(to);
        self.paused_tx.send_replace(to == BreakerState::Open);
    }

    async fn acquire(self: &Arc<Self>) -> Ticket {
        let ticket = |trial| Ticket {
            breaker: Arc::clone(self),
            trial,
            recorded: false,
        };
        let mut rx = self.state_tx.subscribe();
        loop {
            {
                let mut inner = self.lock();
                match inner.state {
                    BreakerState::Closed => return ticket(false),
                    BreakerState::HalfOpen if !inner.trial_in_flight => {
                        inner.trial_in_flight = true;
                        return ticket(true);
                    }
                    _ => {}
                }
                rx.borrow_and_update();
            }
            if rx.changed().await.is_err() {
                return ticket(false);
            }
        }
    }

    #[cfg(test)]
    fn record(self: &Arc<Self>, trial: bool, failure: Option<bool>) {
        self.record_why(trial, failure, None)
    }

    /// Counts a call's outcome (`None`: no verdict); `why` is kept, under
    /// the same lock, when the failure is counted, for the warning that
    /// the breaker opened.
    fn record_why(self: &Arc<Self>, trial: bool, failure: Option<bool>, why: Option<String>) {
        let mut inner = self.lock();
        if trial {
            inner.trial_in_flight = false;
            match failure {
                Some(true) => {
                    inner.last_failure = why;
                    self.transition(&mut inner, BreakerState::Open)
                }
                _ => self.transition(&mut inner, BreakerState::Closed),
            }
            return;
        }
        let Some(failed) = failure else {
            return;
        };
        if inner.state != BreakerState::Closed {
            return;
        }
        if failed {
            inner.last_failure = why;
        }
        let now = Instant::now();
        inner.consecutive = if failed { inner.consecutive + 1 } else { 0 };
        inner.window.push_back((now, failed));
        while inner
            .window
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > self.config.window)
        {
            inner.window.pop_front();
        }
        let by_count = self.config.consecutive_failures > 0
            && inner.consecutive >= self.config.consecutive_failures;
        let by_ratio = self.config.failure_ratio.is_some_and(|r| {
            let calls = inner.window.len();
            let fails = inner.window.iter().filter(|(_, f)| *f).count();
            calls >= self.config.min_calls as usize && fails as f64 / calls as f64 >= r
        });
        if by_count || by_ratio {
            self.transition(&mut inner, BreakerState::Open);
        }
    }
}

/// Builds [`BreakerHandler`]s sharing one [`Breaker`].
#[derive(Clone, Debug)]
pub struct BreakerLayer {
    breaker: Arc<Breaker>,
}

impl BreakerLayer {
    /// Guards handlers with `breaker`.
    pub fn new(breaker: Arc<Breaker>) -> Self {
        BreakerLayer { breaker }
    }
}

impl<H: Handler> Layer<H> for BreakerLayer {
    type Handler = BreakerHandler<H>;
    fn layer(&self, inner: H) -> BreakerHandler<H> {
        BreakerHandler {
            inner,
            breaker: self.breaker.clone(),
        }
    }
}

/// A handler guarded by a circuit breaker.
pub struct BreakerHandler<H> {
    inner: H,
    breaker: Arc<Breaker>,
}

impl<H: Handler> Handler for BreakerHandler<H> {
    async fn handle(&self, record: &Record) -> HandlerResult {
        let ticket = self.breaker.acquire().await;
        let result = self.inner.handle(record).await;
        let (failure, why) = match &result {
            Ok(()) => (Some(false), None),
            Err(e) if e.kind == ErrorKind::Permanent => (None, None),
            Err(e) => (Some(true), Some(e.to_string())),
        };
        ticket.finish(failure, why);
        result
    }
}

#[cfg(test)]
mod tests;
