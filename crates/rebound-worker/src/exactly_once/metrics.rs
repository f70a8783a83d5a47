//! Prometheus metrics of one exactly-once pipeline; [`PipelineStats`] is a
//! snapshot of the same counters.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Registry};

use crate::metrics::{counter_vec, encode, register};

/// Counts of a pipeline run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Transactions committed.
    pub transactions: u64,
    /// Transactions aborted (their input is read again).
    pub aborted: u64,
    /// Input records committed.
    pub records_in: u64,
    /// Output records sent by the transform (committed or not).
    pub records_out: u64,
    /// Records sent to the dead-letter topic.
    pub dead_lettered: u64,
}

/// The pipeline's metrics, registered in their own [`Registry`].
#[derive(Debug, Clone)]
pub struct PipelineMetrics {
    registry: Registry,
    committed: IntCounter,
    aborted: IntCounter,
    records_in: IntCounter,
    records_out: IntCounter,
    dead_lettered: IntCounter,
    duration: Histogram,
}

impl Default for PipelineMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PipelineMetrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let r = Registry::new();
        let transactions: IntCounterVec = counter_vec(
            &r,
            "rebound_pipeline_transactions_total",
            "Transactions by outcome (committed, aborted)",
            &["outcome"],
        );
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            register(&r, &c);
            c
        };
        let records_in = counter(
            "rebound_pipeline_records_in_total",
            "Input records whose offsets committed with their output",
        );
        let records_out = counter(
            "rebound_pipeline_records_out_total",
            "Output records sent inside transactions (committed or not)",
        );
        let dead_lettered = counter(
            "rebound_pipeline_dead_lettered_total",
            "Input records sent to the dead-letter topic inside transactions",
        );
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "rebound_pipeline_transaction_seconds",
                "From begin to the end of commit, committed transactions",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric");
        register(&r, &duration);
        PipelineMetrics {
            committed: transactions.with_label_values(&["committed"]),
            aborted: transactions.with_label_values(&["aborted"]),
            registry: r,
            records_in,
            records_out,
            dead_lettered,
            duration,
        }
    }

    pub(crate) fn committed(&self, records: usize, took: Duration) {
        self.committed.inc();
        self.records_in.inc_by(records as u64);
        self.duration.observe(took.as_secs_f64());
    }

    pub(crate) fn aborted(&self) {
        self.aborted.inc();
    }

    pub(crate) fn sent(&self, records: usize) {
        self.records_out.inc_by(records as u64);
    }

    pub(crate) fn dead_lettered(&self) {
        self.dead_lettered.inc();
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> PipelineStats {
        PipelineStats {
            transactions: self.committed.get(),
            aborted: self.aborted.get(),
            records_in: self.records_in.get(),
            records_out: self.records_out.get(),
            dead_lettered: self.dead_lettered.get(),
        }
    }

    /// The registry (to merge into a service's `/metrics`).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        encode(&self.registry)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_follow_the_counters() {
        let m = PipelineMetrics::new();
        m.committed(3, Duration::from_millis(7));
        m.sent(4);
        m.aborted();
        m.dead_lettered();
        assert_eq!(
            m.stats(),
            PipelineStats {
                transactions: 1,
                aborted: 1,
                records_in: 3,
                records_out: 4,
                dead_lettered: 1,
            }
        );
        let text = m.encode();
        assert!(
            text.contains("rebound_pipeline_transactions_total{outcome=\"committed\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("rebound_pipeline_transaction_seconds_count 1"),
            "{text}"
        );
    }
}
