//! Prometheus metrics of a stream application, in one registry (give it
//! the process's registry with [`StreamMetrics::in_registry`]).

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The application's metrics.
#[derive(Debug, Clone)]
pub struct StreamMetrics {
    registry: Registry,
    processed: IntCounterVec,
    restored: IntCounterVec,
    /// Seconds each store of each partition took to restore, from the
    /// start of its changelog reader (partitions that share a reader finish
    /// together, so each observes the reader's whole time).
    pub restore_seconds: Histogram,
    /// Partitions being restored now.
    pub restoring: IntGauge,
    /// Partitions assigned (restored and processing).
    pub active_partitions: IntGauge,
    /// Bytes of the state files of the assigned partitions.
    pub state_bytes: IntGauge,
    /// Keys written to changelogs (one per key changed per commit).
    pub changelog_writes: IntCounter,
    late: IntCounterVec,
    commits: IntCounterVec,
}

impl Default for StreamMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
    r.register(Box::new(c.clone()))
        .expect("unique metric names");
    c
}

fn counters(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    reg(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
    )
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    reg(r, IntGauge::new(name, help).expect("valid metric"))
}

impl StreamMetrics {
    /// Every metric in a registry of its own.
    pub fn new() -> Self {
        Self::in_registry(Registry::new())
    }

    /// Every metric in `r`.
    pub fn in_registry(r: Registry) -> Self {
        StreamMetrics {
            processed: counters(
                &r,
                "rebound_stream_records_processed_total",
                "Input records processed (committed or not)",
                &["topic"],
            ),
            restored: counters(
                &r,
                "rebound_stream_restore_records_total",
                "Changelog records read while restoring state",
                &["changelog"],
            ),
            restore_seconds: reg(
                &r,
                Histogram::with_opts(HistogramOpts::new(
                    "rebound_stream_restore_seconds",
                    "Time to restore one store of one partition, from the start of its changelog reader (partitions sharing a reader observe its whole time)",
                ))
                .expect("valid metric"),
            ),
            restoring: gauge(
                &r,
                "rebound_stream_restoring_partitions",
                "Partitions whose state is being restored",
            ),
            active_partitions: gauge(
                &r,
                "rebound_stream_active_partitions",
                "Partitions assigned, restored and processing",
            ),
            state_bytes: gauge(
                &r,
                "rebound_stream_state_bytes",
                "Bytes of the state files of the assigned partitions",
            ),
            changelog_writes: reg(
                &r,
                IntCounter::new(
                    "rebound_stream_changelog_records_total",
                    "Changelog records written (one per key changed per commit)",
                )
                .expect("valid metric"),
            ),
            late: counters(
                &r,
                "rebound_stream_late_records_dropped_total",
                "Records later than their window's grace period, dropped",
                &["store"],
            ),
            commits: counters(
                &r,
                "rebound_stream_commits_total",
                "Commits by outcome",
                &["outcome"],
            ),
            registry: r,
        }
    }

    /// The registry (serve it on `/metrics`).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub(crate) fn processed(&self, topic: &str, n: u64) {
        self.processed.with_label_values(&[topic]).inc_by(n);
    }

    /// Input records processed from `topic`.
    pub fn processed_total(&self, topic: &str) -> u64 {
        self.processed.with_label_values(&[topic]).get()
    }

    pub(crate) fn restored(&self, changelog: &str, n: u64) {
        self.restored.with_label_values(&[changelog]).inc_by(n);
    }

    /// Changelog records read while restoring from `changelog`.
    pub fn restored_total(&self, changelog: &str) -> u64 {
        self.restored.with_label_values(&[changelog]).get()
    }

    pub(crate) fn restore_finished(&self, took: Duration) {
        self.restore_seconds.observe(took.as_secs_f64());
    }

    pub(crate) fn late(&self, store: &str) {
        self.late.with_label_values(&[store]).inc();
    }

    /// Late records dropped by the windows of `store`.
    pub fn late_total(&self, store: &str) -> u64 {
        self.late.with_label_values(&[store]).get()
    }

    pub(crate) fn commit(&self, outcome: &str) {
        self.commits.with_label_values(&[outcome]).inc();
    }

    /// Commits with `outcome` (`committed`, `aborted`).
    pub fn commits_total(&self, outcome: &str) -> u64 {
        self.commits.with_label_values(&[outcome]).get()
    }
}
