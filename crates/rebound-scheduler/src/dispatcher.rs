//! The dispatcher loop: claim due tasks with a lease, deliver them
//! concurrently, record the outcome. Between claims it sleeps until the next
//! due time or a local wake-up (mini-redis `purge_expired_tasks` style), or
//! the store's poll interval when other instances share the store.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use rebound_core::trace::FutureExt as _;
use rebound_core::{Backoff, DisplayChain};

use crate::clock::Clock;
use crate::deliver::{Deliver, Delivery};
use crate::envelope::DeadLetter;
use crate::fair;
use crate::metrics::Metrics;
use crate::schedule;
use crate::store::{Claimed, Finish, Store};
use crate::task::TaskState;

/// Dispatcher settings.
#[derive(Debug, Clone)]
pub struct DispatchConfig {
    /// Most tasks claimed at once.
    pub batch: usize,
    /// Most deliveries in flight.
    pub concurrency: usize,
    /// Lease of a claimed task; must exceed the longest delivery (HTTP: 30 s).
    pub lease: Duration,
    /// Backoff between failed deliveries, as a template whose base each
    /// task's `base_delay` replaces ([`schedule::rebound`]: no cap, no jitter).
    pub backoff: Backoff,
    /// Longest wait between attempts to hand an exhausted task to its dead
    /// destination when that fails.
    pub dead_retry_cap: Duration,
    /// How long shutdown waits for deliveries in flight.
    pub shutdown_grace: Duration,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        DispatchConfig {
            batch: 256,
            concurrency: 256,
            lease: Duration::from_secs(90),
            backoff: schedule::rebound(),
            dead_retry_cap: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(35),
        }
    }
}

/// Runs deliveries from a store: claims due tasks, delivers them, records
/// the outcome. It knows the store, the clock, the wake-up that creates and
/// retries signal, and the metrics — not the [`crate::Scheduler`], which
/// builds it ([`crate::Scheduler::dispatcher`]).
pub struct Dispatcher {
    store: Arc<dyn Store>,
    clock: Clock,
    wake: Arc<Notify>,
    metrics: Metrics,
    deliver: Arc<dyn Deliver>,
    config: DispatchConfig,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("config", &self.config)
            .finish()
    }
}

impl Dispatcher {
    /// A dispatcher over `store`; [`crate::Scheduler::dispatcher`] builds
    /// one sharing the scheduler's store, clock, wake-up and metrics.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Clock,
        wake: Arc<Notify>,
        metrics: Metrics,
        deliver: Arc<dyn Deliver>,
        config: DispatchConfig,
    ) -> Self {
        Dispatcher {
            store,
            clock,
            wake,
            metrics,
            deliver,
            config,
        }
    }

    /// Runs until `shutdown` is cancelled, then waits up to the grace period
    /// for deliveries in flight. Unfinished ones are delivered again after
    /// their lease expires (or, on the embedded store, after a restart).
    pub async fn run(self, shutdown: CancellationToken) {
        let me = Arc::new(self);
        let sem = Arc::new(Semaphore::new(me.config.concurrency.max(1)));
        let tracker = TaskTracker::new();
        let store = me.store.clone();
        let clock = me.clock;
        // Claimed tasks waiting for a delivery slot, in fair order. Bounded by
        // `batch`, so a task waits at most about one round of deliveries
        // (well within its lease) before it starts.
        let mut ready: VecDeque<Claimed> = VecDeque::new();
        while !shutdown.is_cancelled() {
            let room = me.config.batch.max(1).saturating_sub(ready.len());
            let mut claimed = false;
            if room > 0 {
                match store.claim(clock.now_ms(), room, me.config.lease).await {
                    Ok(batch) if !batch.is_empty() => {
                        claimed = true;
                        let all: Vec<Claimed> = ready.drain(..).chain(batch).collect();
                        ready.extend(fair::order(all));
                    }
                    Ok(_) => {}
                    Err(e) if ready.is_empty() => {
                        tracing::warn!(error = %DisplayChain(&e), "claim failed; retrying");
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = shutdown.cancelled() => break,
                        }
                        continue;
                    }
                    Err(e) => tracing::warn!(error = %DisplayChain(&e), "claim failed; retrying"),
                }
            }
            while !ready.is_empty() {
                let Ok(permit) = sem.clone().try_acquire_owned() else {
                    break;
                };
                let c = ready.pop_front().expect("non-empty");
                let me = me.clone();
                tracker.spawn(async move {
                    me.handle(c).await;
                    drop(permit);
                });
            }
            if claimed {
                continue;
            }
            if !ready.is_empty() {
                tokio::select! {
                    p = sem.acquire() => drop(p),
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
            let next = store.next_due().await.unwrap_or_else(|e| {
                tracing::warn!(error = %DisplayChain(&e), "next_due failed");
                None
            });
            let mut deadline = next.map(|ms| clock.instant_at(ms));
            if let Some(poll) = store.poll_interval() {
                let p = tokio::time::Instant::now() + poll;
                deadline = Some(deadline.map_or(p, |d| d.min(p)));
            }
            tokio::select! {
                _ = async { match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                } } => {}
                _ = me.wake.notified() => {}
                _ = shutdown.cancelled() => break,
            }
        }
        if !ready.is_empty() {
            tracing::info!(
                waiting = ready.len(),
                "claimed tasks not started at shutdown; delivered after their lease expires"
            );
        }
        tracker.close();
        if tokio::time::timeout(me.config.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                in_flight = tracker.len(),
                "deliveries still in flight at shutdown; they will be delivered again"
            );
        }
    }

    async fn handle(&self, c: Claimed) {
        let metrics = &self.metrics;
        metrics.in_flight.inc();
        let finish = self.attempt(&c).await;
        metrics.in_flight.dec();
        let now = self.clock.now_ms();
        let retry = matches!(finish, Finish::Retry { .. });
        match &self.store.finish(&c, finish, now).await {
            // The loop may be sleeping until this task's lease expiry: wake
            // it to see the earlier retry time.
            Ok(true) if retry => self.wake.notify_one(),
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(task = c.task.id(), "lease lost before the attempt finished")
            }
            Err(e) => tracing::error!(
                task = c.task.id(),
                error = %e,
                "could not record the attempt; it will be retried after the lease expires"
            ),
        }
    }

    async fn attempt(&self, c: &Claimed) -> Finish {
        let t = &c.task;
        let clock = self.clock;
        let metrics = &self.metrics;
        if t.attempts > t.spec.max_retries {
            return self
                .dead_letter(c, t.last_error.clone().unwrap_or_default())
                .await;
        }
        // Rebound's numbering: the first delivery is attempt 0, keyed `<id>|0`.
        let attempt = t.attempts;
        let deliveries = attempt + 1;
        let now = clock.now_ms();
        if let Some(due) = t.next_due_ms {
            metrics
                .dispatch_lag
                .observe(now.saturating_sub(due) as f64 / 1000.0);
        }
        let key = format!("{}|{attempt}", t.spec.id);
        let r = self
            .deliver
            .deliver(Delivery {
                kind: t.spec.destination_type,
                destination: &t.spec.destination,
                id: &t.spec.id,
                key: &key,
                payload: t.spec.message_data.as_bytes(),
            })
            .with_context(t.spec.trace_parent.context())
            .await;
        match r {
            Ok(()) => {
                metrics.deliveries.with_label_values(&["ok"]).inc();
                Finish::Done {
                    state: TaskState::Delivered,
                    attempts: deliveries,
                    error: None,
                }
            }
            Err(e) => {
                metrics.deliveries.with_label_values(&["error"]).inc();
                let error = DisplayChain(&e).to_string();
                tracing::info!(task = t.id(), attempt, error = %error, "delivery failed");
                if deliveries > t.spec.max_retries || e.is_final() {
                    let mut exhausted = c.clone();
                    exhausted.task.attempts = deliveries;
                    exhausted.task.last_error = Some(error.clone());
                    exhausted.task.updated_at_ms = clock.now_ms();
                    self.dead_letter(&exhausted, error).await
                } else {
                    let delay = schedule::delay(
                        &self.config.backoff,
                        Duration::from_secs(t.spec.base_delay.into()),
                        deliveries,
                    )
                    .max(e.retry_after().unwrap_or_default());
                    Finish::Retry {
                        attempts: deliveries,
                        next_due_ms: clock.now_ms().saturating_add(millis(delay)),
                        error,
                    }
                }
            }
        }
    }

    /// Sends an exhausted task's envelope to its dead destination (or drops it
    /// with a warning when there is none). A failed hand-off is retried.
    async fn dead_letter(&self, c: &Claimed, error: String) -> Finish {
        let t = &c.task;
        let metrics = &self.metrics;
        let done = Finish::Done {
            state: TaskState::Dead,
            attempts: t.attempts,
            error: Some(error.clone()),
        };
        let Some(dead) = &t.spec.dead_destination else {
            tracing::warn!(task = t.id(), attempts = t.attempts, error = %error,
                "task exhausted its retries and has no dead_destination; dropping it");
            metrics.dead_letters.with_label_values(&["dropped"]).inc();
            return done;
        };
        let envelope =
            serde_json::to_vec(&DeadLetter::of(t, t.updated_at_ms)).expect("envelopes serialize");
        // Rebound's dead-letter key: `<id>|dead|<failed deliveries>`.
        let key = format!("{}|dead|{}", t.spec.id, t.attempts);
        let id = format!("{}|dead", t.spec.id);
        let r = self
            .deliver
            .deliver(Delivery {
                kind: t.spec.destination_type,
                destination: dead,
                id: &id,
                key: &key,
                payload: &envelope,
            })
            .with_context(t.spec.trace_parent.context())
            .await;
        match r {
            Ok(()) => {
                metrics.dead_letters.with_label_values(&["sent"]).inc();
                done
            }
            Err(e) if e.is_final() => {
                // Retrying cannot help: drop it, loudly.
                metrics.dead_letters.with_label_values(&["dropped"]).inc();
                tracing::error!(task = t.id(), error = %DisplayChain(&e),
                    "the dead destination was refused; dropping the task's envelope");
                done
            }
            Err(e) => {
                metrics.dead_letters.with_label_values(&["error"]).inc();
                tracing::warn!(task = t.id(), error = %DisplayChain(&e), "dead-lettering failed; will retry");
                let dead_tries = t.attempts.saturating_sub(t.spec.max_retries).max(1);
                let delay = schedule::delay(
                    &schedule::rebound().with_cap(self.config.dead_retry_cap),
                    Duration::from_secs(t.spec.base_delay.into()),
                    dead_tries,
                );
                Finish::Retry {
                    attempts: t.attempts,
                    next_due_ms: self.clock.now_ms().saturating_add(millis(delay)),
                    error,
                }
            }
        }
    }
}

/// `d` in whole milliseconds, saturating.
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
