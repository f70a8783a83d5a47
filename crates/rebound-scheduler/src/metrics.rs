//! Prometheus metrics of the scheduler (text format at `/metrics`).

use std::sync::Arc;

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};
use rebound_producer::ProducerMetrics;

/// The scheduler's metrics, in the process's one registry: its own, its
/// producers' (Kafka delivery and the ingress's dead-letter writes) and the
/// ingress worker's all show on one `/metrics`.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Shared by every producer of the process (one set of producer
    /// metrics per registry).
    pub producer: Arc<ProducerMetrics>,
    /// Tasks created.
    pub created: IntCounter,
    /// Deliveries by result (`ok`, `error`).
    pub deliveries: IntCounterVec,
    /// Exhausted tasks by outcome (`sent`, `dropped`, `error`).
    pub dead_letters: IntCounterVec,
    /// Seconds between a task's due time and its dispatch.
    pub dispatch_lag: Histogram,
    /// Deliveries in flight.
    pub in_flight: IntGauge,
    /// HTTP API responses by status code.
    pub http_responses: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric in a registry of its own.
    pub fn new() -> Self {
        Self::in_registry(Registry::new())
    }

    /// Creates every metric, the producers' included, in `registry`.
    pub fn in_registry(registry: Registry) -> Self {
        let producer = Arc::new(ProducerMetrics::in_registry(registry.clone()));
        let created = IntCounter::new("rebound_scheduler_tasks_created_total", "Tasks created")
            .expect("valid metric");
        let deliveries = IntCounterVec::new(
            Opts::new(
                "rebound_scheduler_deliveries_total",
                "Delivery attempts by result",
            ),
            &["result"],
        )
        .expect("valid metric");
        let dead_letters = IntCounterVec::new(
            Opts::new(
                "rebound_scheduler_dead_letters_total",
                "Exhausted tasks by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let dispatch_lag = Histogram::with_opts(
            HistogramOpts::new(
                "rebound_scheduler_dispatch_lag_seconds",
                "Delay between due time and dispatch",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
            ]),
        )
        .expect("valid metric");
        let in_flight = IntGauge::new("rebound_scheduler_in_flight", "Deliveries in flight")
            .expect("valid metric");
        let http_responses = IntCounterVec::new(
            Opts::new(
                "rebound_scheduler_http_responses_total",
                "API responses by status",
            ),
            &["status"],
        )
        .expect("valid metric");
        for c in [
            Box::new(created.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(deliveries.clone()),
            Box::new(dead_letters.clone()),
            Box::new(dispatch_lag.clone()),
            Box::new(in_flight.clone()),
            Box::new(http_responses.clone()),
        ] {
            registry.register(c).expect("unique metric names");
        }
        Metrics {
            registry,
            producer,
            created,
            deliveries,
            dead_letters,
            dispatch_lag,
            in_flight,
            http_responses,
        }
    }

    /// The registry every metric of the process is in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        rebound_producer::metrics::encode(&self.registry)
    }
}
