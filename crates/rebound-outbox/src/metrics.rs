//! Prometheus metrics of one relay, in the process's shared registry
//! (encode with `rebound_producer::metrics::encode`, like the worker).

use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::store::Stats;

/// The relay's metrics.
#[derive(Debug, Clone)]
pub struct RelayMetrics {
    registry: Registry,
    /// Committed rows not yet published nor failed.
    pub pending: IntGauge,
    /// Age of the oldest pending row, seconds.
    pub oldest_pending_seconds: Gauge,
    /// Rows published (`rate()` of it: published per second).
    pub published: IntCounter,
    failed: IntCounterVec,
    /// Batches whose publish or bookkeeping failed and will be retried.
    pub batch_errors: IntCounter,
    /// 1 while this instance is the table's active relay, 0 on standby.
    pub active: IntGauge,
}

impl Default for RelayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn register<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("unique metric names");
    c
}

impl RelayMetrics {
    /// Metrics in a registry of their own.
    pub fn new() -> Self {
        Self::in_registry(Registry::new())
    }

    /// Metrics in `r`, the process's one registry.
    pub fn in_registry(r: Registry) -> Self {
        let g = |n: &str, h: &str| register(&r, IntGauge::new(n, h).expect("valid metric"));
        let c = |n: &str, h: &str| register(&r, IntCounter::new(n, h).expect("valid metric"));
        RelayMetrics {
            pending: g(
                "rebound_outbox_pending_rows",
                "Committed outbox rows not yet published",
            ),
            oldest_pending_seconds: register(
                &r,
                Gauge::new(
                    "rebound_outbox_oldest_pending_seconds",
                    "Age of the oldest pending outbox row",
                )
                .expect("valid metric"),
            ),
            published: c("rebound_outbox_published_total", "Outbox rows published"),
            failed: register(
                &r,
                IntCounterVec::new(
                    Opts::new("rebound_outbox_failed_total", "Outbox rows marked failed"),
                    &["reason"],
                )
                .expect("valid metric"),
            ),
            batch_errors: c(
                "rebound_outbox_batch_errors_total",
                "Batches that failed and are tried again",
            ),
            active: g(
                "rebound_outbox_active",
                "1 while this instance is the active relay",
            ),
            registry: r,
        }
    }

    /// Counts a row marked failed for `reason` (`headers`, `oversized`,
    /// `unknown_topic`, `empty_topic`).
    pub fn record_failed(&self, reason: &str) {
        self.failed.with_label_values(&[reason]).inc();
    }

    /// Rows failed for `reason` so far.
    pub fn failed(&self, reason: &str) -> u64 {
        self.failed.with_label_values(&[reason]).get()
    }

    /// Sets the table gauges.
    pub fn observe(&self, s: &Stats) {
        self.pending.set(s.pending);
        self.oldest_pending_seconds
            .set(s.oldest_pending.map_or(0.0, |d| d.as_secs_f64()));
    }

    /// The registry these metrics are in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text of the whole registry.
    pub fn encode(&self) -> String {
        rebound_producer::metrics::encode(&self.registry)
    }
}
