//! Non-blocking retry tiers and the dead-letter queue.
//!
//! A record whose (possibly retried) handling fails goes to the next retry
//! tier `<topic>.retry.<n>` with its due time in `rebound.due`, or — when
//! the error is permanent or the tiers are exhausted — to `<topic>.dlq`,
//! with the provenance headers of `rebound_core::headers`. The handler
//! returns only once the write is acknowledged, so the source offset commits
//! only after the record is safely in a tier or the DLQ. A failed write is
//! retried with backoff for as long as it takes: nothing is skipped.
//!
//! Tiers give up per-key order (a retried record is handled after later
//! records of its key); in-place retry ([`super::RetryLayer`]) keeps it.
//!
//! With [`DeadLetterPolicy::with_flood_guard`], the layer stops
//! dead-lettering when too many records would go to the DLQ and freezes
//! instead (see [`super::flood_guard`]).

use std::sync::Arc;
use std::time::Duration;

use rebound_core::{
    epoch_ms, Backoff, ErrorKind, HandlerError, HandlerResult, Jitter, Next, Record,
};
use rebound_producer::{OutRecord, Producer};
use tracing::{error, info, warn};

use super::flood_guard::{FloodGuard, FloodGuardConfig, Verdict};
use super::provenance::{failed_record, History, Route, TopicNames};
use super::Layer;
use crate::{Handler, Metrics};

/// Where failures go.
#[derive(Debug, Clone)]
pub struct DeadLetterPolicy {
    /// Consumer group, written into `rebound.consumer.group`.
    pub group: String,
    /// Delay of each retry tier; empty: failures go straight to the DLQ.
    pub tiers: Vec<Duration>,
    /// Topic naming.
    pub names: TopicNames,
    /// Backoff between attempts to write a tier or DLQ record. Its
    /// `max_attempts` is ignored: the write is tried until it succeeds, as
    /// the record's offset cannot commit before.
    pub write_backoff: Backoff,
    /// When to stop dead-lettering and freeze instead (off by default).
    pub flood_guard: FloodGuardConfig,
}

impl DeadLetterPolicy {
    /// DLQ only, default names.
    pub fn new(group: impl Into<String>) -> Self {
        DeadLetterPolicy {
            group: group.into(),
            tiers: Vec::new(),
            names: TopicNames::default(),
            write_backoff: Backoff::exponential(
                Duration::from_millis(100),
                Duration::from_secs(10),
            )
            .with_max_attempts(None)
            .with_jitter(Jitter::Full),
            flood_guard: FloodGuardConfig::default(),
        }
    }

    /// Freeze instead of dead-lettering when `guard` trips.
    pub fn with_flood_guard(mut self, guard: FloodGuardConfig) -> Self {
        self.flood_guard = guard;
        self
    }

    /// Retry tiers with these delays before the DLQ.
    pub fn with_tiers(mut self, delays: Vec<Duration>) -> Self {
        self.tiers = delays;
        self
    }

    /// Topic naming patterns.
    pub fn with_names(mut self, names: TopicNames) -> Self {
        self.names = names;
        self
    }

    /// The tier topics of `topic`, to subscribe to as delayed topics.
    pub fn tier_topics(&self, topic: &str) -> Vec<String> {
        (1..=self.tiers.len())
            .map(|n| self.names.tier(topic, n))
            .collect()
    }

    /// The DLQ topic of `topic`.
    pub fn dlq_topic(&self, topic: &str) -> String {
        self.names.dlq(topic)
    }
}

/// Builds [`DeadLetter`] handlers.
#[derive(Clone)]
pub struct DeadLetterLayer {
    producer: Producer,
    policy: Arc<DeadLetterPolicy>,
    metrics: Arc<Metrics>,
    guard: Arc<FloodGuard>,
}

impl DeadLetterLayer {
    /// Writes tier and DLQ records with `producer`, counting into `metrics`
    /// (give the worker the same metrics with `with_metrics`).
    pub fn new(producer: Producer, policy: DeadLetterPolicy, metrics: Arc<Metrics>) -> Self {
        DeadLetterLayer {
            producer,
            guard: Arc::new(FloodGuard::new(policy.flood_guard.clone())),
            policy: Arc::new(policy),
            metrics,
        }
    }

    /// Whether the flood guard has tripped (the worker is freezing).
    pub fn flood_guard_tripped(&self) -> bool {
        self.guard.tripped()
    }
}

impl<H: Handler> Layer<H> for DeadLetterLayer {
    type Handler = DeadLetter<H>;
    fn layer(&self, inner: H) -> DeadLetter<H> {
        DeadLetter {
            inner,
            layer: self.clone(),
        }
    }
}

/// A handler whose failures go to retry tiers and the DLQ.
pub struct DeadLetter<H> {
    inner: H,
    layer: DeadLetterLayer,
}

impl<H: Handler> Handler for DeadLetter<H> {
    async fn handle(&self, record: &Record) -> HandlerResult {
        let guard = &self.layer.guard;
        if guard.tripped() {
            return Err(HandlerError::transient(
                "the DLQ flood guard tripped: not taking records until the worker restarts",
            ));
        }
        let err = match self.inner.handle(record).await {
            Ok(()) => {
                guard.passed();
                return Ok(());
            }
            Err(e) => e,
        };
        rebound_core::trace::fail_current(&err);
        let policy = &self.layer.policy;
        let history = History::of(record);
        let tier =
            policy
                .names
                .tier_index(&history.original_topic, &record.topic, policy.tiers.len());
        let route = match (err.kind, policy.tiers.get(tier)) {
            (ErrorKind::Permanent, _) | (_, None) => Route::Dlq,
            (_, Some(delay)) => Route::Tier(tier + 1, *delay),
        };
        let dest = match route {
            Route::Tier(n, _) => policy.names.tier(&history.original_topic, n),
            Route::Dlq => policy.names.dlq(&history.original_topic),
        };
        match route {
            // Not an outcome yet: the record comes back from the tier and
            // counts then (as handled or as dead-lettered).
            Route::Tier(..) => {}
            Route::Dlq => match guard.dead_letter() {
                Verdict::Allow => {}
                Verdict::Trips(why) => {
                    self.layer.metrics.flood_guard_tripped.set(1);
                    error!(
                        topic = %record.topic, partition = record.partition, offset = record.offset,
                        dlq = %dest, error = %err.message,
                        "DLQ flood guard tripped: {why}; not dead-lettering, freezing every partition at its next record (restart once the cause is fixed)"
                    );
                    return Err(err);
                }
                Verdict::Tripped => return Err(err),
            },
        }
        let out = failed_record(record, &err, &policy.group, route, dest, epoch_ms());
        self.write(&out, record).await;
        match route {
            Route::Tier(n, _) => self.layer.metrics.retried_to_tier(n),
            Route::Dlq => {
                self.layer.metrics.dead_lettered(err.kind);
                info!(
                    topic = %record.topic, partition = record.partition, offset = record.offset,
                    dlq = %out.topic, kind = %err.kind, error = %err.message, "record dead-lettered"
                );
            }
        }
        Ok(())
    }
}

impl<H> DeadLetter<H> {
    /// Writes until acknowledged; the caller's offset cannot commit before.
    async fn write(&self, out: &OutRecord, rec: &Record) {
        // Never bounded: giving up would lose the record.
        let backoff = self
            .layer
            .policy
            .write_backoff
            .clone()
            .with_max_attempts(None);
        let written = rebound_core::retry(
            &backoff,
            || self.layer.producer.send(out),
            |e, f| {
                warn!(
                    topic = %rec.topic, partition = rec.partition, offset = rec.offset,
                    to = %out.topic, attempt = f.attempt, delay = ?f.delay,
                    error = %rebound_core::DisplayChain(e),
                    "writing the failed record failed; retrying (its offset will not commit before)"
                );
                Next::Retry
            },
        )
        .await;
        if let Err(gave_up) = written {
            unreachable!(
                "an unbounded backoff gave up after {} attempts",
                gave_up.attempts
            );
        }
    }
}
