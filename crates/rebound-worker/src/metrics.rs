//! Prometheus metrics of one worker.

use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};
use rebound_core::ErrorKind;

/// The worker's metrics, registered in their own [`Registry`].
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    processed: IntCounterVec,
    failed: IntCounterVec,
    /// Records (or batches) being handled now.
    pub in_flight: IntGauge,
    /// Fetched records waiting to start.
    pub buffered: IntGauge,
    /// Bytes of records fetched and not finished.
    pub buffered_bytes: IntGauge,
    /// Partitions halted by a failure.
    pub frozen_partitions: IntGauge,
    committed: IntGaugeVec,
    lag: IntGaugeVec,
    lag_seconds: GaugeVec,
    /// Commit round-trip latency.
    pub commit_latency: Histogram,
    commit_failures: IntCounter,
    rebalances: IntCounterVec,
    retried_to_tier: IntCounterVec,
    dead_lettered: IntCounterVec,
    /// Circuit breaker state: 0 closed, 1 open, 2 half-open.
    pub breaker_state: IntGauge,
    /// 1 once the DLQ flood guard tripped (the worker is freezing).
    pub flood_guard_tripped: IntGauge,
    breaker_transitions: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

pub(crate) fn register<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: &C) {
    r.register(Box::new(c.clone()))
        .expect("unique metric names");
}

pub(crate) fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(r, &c);
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    register(r, &g);
    g
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    let g = IntGauge::new(name, help).expect("valid metric");
    register(r, &g);
    g
}

impl Metrics {
    /// Creates and registers every metric in a registry of their own.
    pub fn new() -> Self {
        Self::in_registry(Registry::new())
    }

    /// Creates every metric in `r`, the process's one registry (give the
    /// same registry to the producers the worker's layers use, e.g.
    /// `ProducerMetrics::in_registry`, and one `/metrics` shows them all).
    pub fn in_registry(r: Registry) -> Self {
        let processed = counter_vec(
            &r,
            "rebound_records_processed_total",
            "Records handled successfully",
            &["topic"],
        );
        let failed = counter_vec(
            &r,
            "rebound_records_failed_total",
            "Handler failures that reached the runtime",
            &["topic", "kind"],
        );
        let in_flight = gauge(&r, "rebound_in_flight", "Records or batches being handled");
        let buffered = gauge(&r, "rebound_buffered", "Fetched records waiting to start");
        let buffered_bytes = gauge(
            &r,
            "rebound_buffered_bytes",
            "Bytes of records fetched and not finished (the byte budget's measure)",
        );
        let frozen_partitions = gauge(
            &r,
            "rebound_frozen_partitions",
            "Partitions halted by a failure",
        );
        let committed = gauge_vec(
            &r,
            "rebound_committed_offset",
            "Last committed offset per partition",
            &["topic", "partition"],
        );
        let lag = gauge_vec(
            &r,
            "rebound_consumer_lag",
            "High watermark minus committed offset per partition",
            &["topic", "partition"],
        );
        let lag_seconds = GaugeVec::new(
            Opts::new(
                "rebound_consumer_lag_seconds",
                "Age of the oldest record fetched and not finished per partition (0 when none)",
            ),
            &["topic", "partition"],
        )
        .expect("valid metric");
        register(&r, &lag_seconds);
        let commit_latency = Histogram::with_opts(
            HistogramOpts::new("rebound_commit_latency_seconds", "Offset commit latency").buckets(
                vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
                ],
            ),
        )
        .expect("valid metric");
        register(&r, &commit_latency);
        let commit_failures = IntCounter::new(
            "rebound_commit_failures_total",
            "Offset commits that failed",
        )
        .expect("valid metric");
        register(&r, &commit_failures);
        let rebalances = counter_vec(
            &r,
            "rebound_rebalances_total",
            "Partitions assigned or revoked",
            &["kind"],
        );
        let retried_to_tier = counter_vec(
            &r,
            "rebound_retried_to_tier_total",
            "Records written to a retry tier",
            &["tier"],
        );
        let dead_lettered = counter_vec(
            &r,
            "rebound_dead_lettered_total",
            "Records written to the DLQ",
            &["kind"],
        );
        let breaker_state = gauge(
            &r,
            "rebound_breaker_state",
            "Circuit breaker state: 0 closed, 1 open, 2 half-open",
        );
        let breaker_transitions = counter_vec(
            &r,
            "rebound_breaker_transitions_total",
            "Circuit breaker transitions",
            &["to"],
        );
        let flood_guard_tripped = gauge(
            &r,
            "rebound_dlq_flood_guard_tripped",
            "1 once the DLQ flood guard tripped: records freeze instead of going to the DLQ",
        );
        Metrics {
            registry: r,
            flood_guard_tripped,
            processed,
            failed,
            in_flight,
            buffered,
            buffered_bytes,
            frozen_partitions,
            committed,
            lag,
            lag_seconds,
            commit_latency,
            commit_failures,
            rebalances,
            retried_to_tier,
            dead_lettered,
            breaker_state,
            breaker_transitions,
        }
    }

    /// Counts a record written to retry tier `tier` (1-based).
    pub fn retried_to_tier(&self, tier: usize) {
        self.retried_to_tier
            .with_label_values(&[&tier.to_string()])
            .inc();
    }

    /// Records written to retry tier `tier`.
    pub fn retried_to_tier_count(&self, tier: usize) -> u64 {
        self.retried_to_tier
            .with_label_values(&[&tier.to_string()])
            .get()
    }

    /// Counts a record written to the DLQ.
    pub fn dead_lettered(&self, kind: ErrorKind) {
        self.dead_lettered.with_label_values(&[kind.as_str()]).inc();
    }

    /// Records dead-lettered with `kind`.
    pub fn dead_lettered_count(&self, kind: ErrorKind) -> u64 {
        self.dead_lettered.with_label_values(&[kind.as_str()]).get()
    }

    /// Counts a breaker transition to `to` (`open`, `half_open`, `closed`).
    pub fn breaker_transition(&self, to: &str, state: i64) {
        self.breaker_transitions.with_label_values(&[to]).inc();
        self.breaker_state.set(state);
    }

    /// Breaker transitions to `to` so far.
    pub fn breaker_transitions(&self, to: &str) -> u64 {
        self.breaker_transitions.with_label_values(&[to]).get()
    }

    /// The registry, to add more collectors or to gather.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        encode(&self.registry)
    }

    /// The processed counter of a topic (cache it: label lookup hashes).
    pub fn processed_counter(&self, topic: &str) -> IntCounter {
        self.processed.with_label_values(&[topic])
    }

    /// Total records processed for `topic`.
    pub fn processed(&self, topic: &str) -> u64 {
        self.processed.with_label_values(&[topic]).get()
    }

    /// Counts a failure.
    pub fn record_failure(&self, topic: &str, kind: ErrorKind) {
        self.failed.with_label_values(&[topic, kind.as_str()]).inc();
    }

    /// Records a successful commit position.
    pub fn set_committed(&self, topic: &str, partition: i32, offset: i64) {
        self.committed
            .with_label_values(&[topic, &partition.to_string()])
            .set(offset);
    }

    /// Last committed offset known for a partition.
    pub fn committed(&self, topic: &str, partition: i32) -> i64 {
        self.committed
            .with_label_values(&[topic, &partition.to_string()])
            .get()
    }

    /// The last `rebound_consumer_lag_seconds` of a partition.
    pub fn lag_seconds(&self, topic: &str, partition: i32) -> f64 {
        self.lag_seconds
            .with_label_values(&[topic, &partition.to_string()])
            .get()
    }

    /// Sets the lag of a partition.
    pub fn set_lag(&self, topic: &str, partition: i32, lag: i64) {
        self.lag
            .with_label_values(&[topic, &partition.to_string()])
            .set(lag);
    }

    /// Sets how far behind a partition's processing is, in seconds.
    pub fn set_lag_seconds(&self, topic: &str, partition: i32, seconds: f64) {
        self.lag_seconds
            .with_label_values(&[topic, &partition.to_string()])
            .set(seconds);
    }

    /// Counts a failed commit.
    pub fn commit_failed(&self) {
        self.commit_failures.inc();
    }

    /// Counts partitions assigned (`assign`) or revoked (`revoke`).
    pub fn rebalanced(&self, kind: &str, partitions: usize) {
        self.rebalances
            .with_label_values(&[kind])
            .inc_by(partitions as u64);
    }
}

pub(crate) use rebound_producer::metrics::encode;
