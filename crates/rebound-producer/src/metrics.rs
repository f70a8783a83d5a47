//! Prometheus metrics of a producer.

use std::collections::HashMap;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry, TextEncoder,
};
use rdkafka::error::KafkaError;

/// What a producer counts, registered in their own [`Registry`]. Every
/// mode (sync, async, callback, fire-and-forget, transactional) counts here:
/// the delivery report does the counting, so a record is counted even when
/// nobody awaits it.
#[derive(Debug, Clone)]
pub struct ProducerMetrics {
    registry: Registry,
    sent: IntCounter,
    delivered: IntCounter,
    failed: IntCounterVec,
    rejected: IntCounterVec,
    retries: IntCounter,
    transactions: IntCounterVec,
    /// Time from enqueueing a record to its delivery report.
    pub delivery_latency: Histogram,
}

impl Default for ProducerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

fn register<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: &C) {
    r.register(Box::new(c.clone()))
        .expect("unique metric names");
}

fn counter(r: &Registry, cl: &HashMap<String, String>, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::with_opts(Opts::new(name, help).const_labels(cl.clone()))
        .expect("valid metric");
    register(r, &c);
    c
}

fn counter_vec(
    r: &Registry,
    cl: &HashMap<String, String>,
    name: &str,
    help: &str,
    labels: &[&str],
) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help).const_labels(cl.clone()), labels)
        .expect("valid metric");
    register(r, &c);
    c
}

/// The `error` label of a failure: the librdkafka error code's name
/// (`MessageTimedOut`, `MessageSizeTooLarge`, ...), or `other`.
pub fn error_label(e: &KafkaError) -> String {
    match e.rdkafka_error_code() {
        Some(code) => format!("{code:?}"),
        None => "other".to_string(),
    }
}

impl ProducerMetrics {
    /// Creates and registers every metric in a registry of their own.
    pub fn new() -> Self {
        Self::in_registry(Registry::new())
    }

    /// Creates every metric in `r`, the process's one registry (so one
    /// `/metrics` shows the producer beside whatever else registered there).
    pub fn in_registry(r: Registry) -> Self {
        Self::in_registry_labelled(r, HashMap::new())
    }

    /// Like [`ProducerMetrics::in_registry`], every metric carrying
    /// `const_labels` (e.g. `route="orders"`). Call
    /// [`ProducerMetrics::unregister`] before registering the same labels again.
    pub fn in_registry_labelled(r: Registry, const_labels: HashMap<String, String>) -> Self {
        let cl = &const_labels;
        let sent = counter(
            &r,
            cl,
            "rebound_producer_records_sent_total",
            "Records handed to the client (enqueued)",
        );
        let delivered = counter(
            &r,
            cl,
            "rebound_producer_records_delivered_total",
            "Records the broker acknowledged (for acks=0: written to the socket)",
        );
        let failed = counter_vec(
            &r,
            cl,
            "rebound_producer_records_failed_total",
            "Records that failed, by librdkafka error code",
            &["error"],
        );
        let rejected = counter_vec(
            &r,
            cl,
            "rebound_producer_records_rejected_total",
            "Records refused before sending (validation, encoding, size)",
            &["reason"],
        );
        let retries = counter(
            &r,
            cl,
            "rebound_producer_retries_total",
            "Sends tried again after a retriable error",
        );
        let transactions = counter_vec(
            &r,
            cl,
            "rebound_producer_transactions_total",
            "Transactions ended, by outcome (committed, aborted, failed)",
            &["outcome"],
        );
        let delivery_latency = Histogram::with_opts(
            HistogramOpts::new(
                "rebound_producer_delivery_latency_seconds",
                "Time from enqueueing a record to its delivery report",
            )
            .const_labels(cl.clone())
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0,
            ]),
        )
        .expect("valid metric");
        register(&r, &delivery_latency);
        ProducerMetrics {
            registry: r,
            sent,
            delivered,
            failed,
            rejected,
            retries,
            transactions,
            delivery_latency,
        }
    }

    /// Removes every metric from the registry (before registering the same
    /// labels again).
    pub fn unregister(&self) {
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(self.sent.clone()),
            Box::new(self.delivered.clone()),
            Box::new(self.failed.clone()),
            Box::new(self.rejected.clone()),
            Box::new(self.retries.clone()),
            Box::new(self.transactions.clone()),
            Box::new(self.delivery_latency.clone()),
        ];
        for c in collectors {
            let _ = self.registry.unregister(c);
        }
    }

    pub(crate) fn record_sent(&self) {
        self.sent.inc();
    }

    pub(crate) fn record_delivered(&self, latency: Duration) {
        self.delivered.inc();
        self.delivery_latency.observe(latency.as_secs_f64());
    }

    pub(crate) fn record_failed(&self, e: &KafkaError) {
        self.failed.with_label_values(&[&error_label(e)]).inc();
    }

    pub(crate) fn record_rejected(&self, reason: &str) {
        self.rejected.with_label_values(&[reason]).inc();
    }

    pub(crate) fn record_retry(&self) {
        self.retries.inc();
    }

    pub(crate) fn record_transaction(&self, outcome: &str) {
        self.transactions.with_label_values(&[outcome]).inc();
    }

    /// Records enqueued so far.
    pub fn sent(&self) -> u64 {
        self.sent.get()
    }

    /// Records acknowledged so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.get()
    }

    /// Records that failed with `error` (an [`error_label`]).
    pub fn failed(&self, error: &str) -> u64 {
        self.failed.with_label_values(&[error]).get()
    }

    /// Records that failed, whatever the error.
    pub fn failed_total(&self) -> u64 {
        self.registry
            .gather()
            .iter()
            .filter(|f| f.name() == "rebound_producer_records_failed_total")
            .flat_map(|f| {
                f.get_metric()
                    .iter()
                    .map(|m| m.get_counter().get_value() as u64)
            })
            .sum()
    }

    /// Records refused before sending for `reason` (`validation`,
    /// `encoding`, `too_large`).
    pub fn rejected(&self, reason: &str) -> u64 {
        self.rejected.with_label_values(&[reason]).get()
    }

    /// Retries so far.
    pub fn retries(&self) -> u64 {
        self.retries.get()
    }

    /// Transactions that ended with `outcome` (`committed`, `aborted`, `failed`).
    pub fn transactions(&self, outcome: &str) -> u64 {
        self.transactions.with_label_values(&[outcome]).get()
    }

    /// The registry, to gather or to add collectors.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text exposition of every metric in its registry.
    pub fn encode(&self) -> String {
        encode(&self.registry)
    }
}

/// The Prometheus text exposition of `registry`: the one encoder every
/// rebound crate uses.
pub fn encode(registry: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("text encoding cannot fail");
    String::from_utf8(buf).expect("prometheus text is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[test]
    fn counts_and_exposes() {
        let m = ProducerMetrics::new();
        m.record_sent();
        m.record_delivered(Duration::from_millis(3));
        m.record_failed(&KafkaError::MessageProduction(
            RDKafkaErrorCode::MessageSizeTooLarge,
        ));
        m.record_failed(&KafkaError::Canceled);
        assert_eq!(m.sent(), 1);
        assert_eq!(m.delivered(), 1);
        assert_eq!(m.failed("MessageSizeTooLarge"), 1);
        assert_eq!(m.failed("other"), 1);
        assert_eq!(m.failed_total(), 2);
        let text = m.encode();
        assert!(
            text.contains("rebound_producer_records_failed_total{error=\"MessageSizeTooLarge\"} 1")
        );
        assert!(text.contains("rebound_producer_delivery_latency_seconds_count 1"));
    }
}
