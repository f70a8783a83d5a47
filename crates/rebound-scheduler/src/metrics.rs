//! Prometheus metrics of the scheduler (text format at `/metrics`).

use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The scheduler's metrics, registered in their own registry.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
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
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let registry = Registry::new();
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
            created,
            deliveries,
            dead_letters,
            dispatch_lag,
            in_flight,
            http_responses,
        }
    }

    /// Renders the Prometheus text format.
    pub fn render(&self) -> String {
        rebound_producer::metrics::encode(&self.registry)
    }
}
