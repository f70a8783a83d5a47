//! Delivery to Kafka topics and HTTP endpoints behind one [`Deliver`] trait.

use futures::future::BoxFuture;
use futures::FutureExt;

use crate::task::{Destination, DestinationType};

pub mod guard;
pub mod http;
pub mod kafka;

pub use http::HttpOptions;

/// Why a delivery failed. Every failure but a refused destination is retried
/// by the dispatcher until the task's retries are exhausted; see
/// [`DeliveryError::is_final`].
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The producer could not be created (`topic` empty) or producing failed.
    #[error("kafka produce to {topic:?} via {brokers}")]
    Kafka {
        /// Target topic.
        topic: String,
        /// Bootstrap servers.
        brokers: String,
        /// The producer's error (it says how many attempts were made).
        #[source]
        source: Box<rebound_producer::ProduceError>,
    },
    /// The HTTP request could not be made or timed out.
    #[error("http POST {url}")]
    HttpTransport {
        /// Endpoint.
        url: String,
        /// The client error.
        #[source]
        source: reqwest::Error,
    },
    /// The SSRF guard refused the destination (or a redirect hop): final,
    /// the task goes to its dead destination at once.
    #[error("http POST {url}")]
    Refused {
        /// Endpoint.
        url: String,
        /// What was refused and why.
        #[source]
        source: guard::Refused,
    },
    /// The endpoint answered with a non-2xx status.
    #[error("http POST {url}: status {status}")]
    HttpStatus {
        /// Endpoint.
        url: String,
        /// Response status.
        status: u16,
        /// The wait a 429 or 503 asked for with `Retry-After`; the next
        /// attempt is no sooner.
        retry_after: Option<std::time::Duration>,
    },
}

impl DeliveryError {
    /// Whether retrying cannot help (a refused destination).
    pub fn is_final(&self) -> bool {
        matches!(self, DeliveryError::Refused { .. })
    }

    /// The wait the destination asked for, if any.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            DeliveryError::HttpStatus { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// One delivery: where, with which key, what bytes.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// Kafka or HTTP.
    pub kind: DestinationType,
    /// Target.
    pub destination: &'a Destination,
    /// The message id, the same for every attempt of it: the task id for
    /// its deliveries, `<id>|dead` for its dead-letter envelope
    /// (`webhook-id` of signed HTTP deliveries).
    pub id: &'a str,
    /// `<id>|<attempt>` (attempt from 0, as Rebound) or `<id>|dead|<attempts>`: the Kafka
    /// key, `X-Message-Key` and `Idempotency-Key`.
    pub key: &'a str,
    /// Body / record value.
    pub payload: &'a [u8],
}

/// A delivery mechanism. The pluggable part of the dispatcher.
pub trait Deliver: Send + Sync + 'static {
    /// Delivers once; `Ok` means the destination acknowledged it.
    fn deliver<'a>(&'a self, d: Delivery<'a>) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// The standard deliverer: Kafka through cached idempotent producers, HTTP
/// through one pooled client.
#[derive(Debug)]
pub struct Deliverer {
    kafka: kafka::KafkaSink,
    http: http::HttpSink,
}

impl Deliverer {
    /// Kafka destinations without `host` use `default_brokers`; the Kafka
    /// producers' metrics are in a registry of their own.
    pub fn new(default_brokers: impl Into<String>) -> Self {
        Self::with_metrics(
            default_brokers,
            std::sync::Arc::new(rebound_producer::ProducerMetrics::new()),
            Vec::new(),
        )
    }

    /// Like [`Deliverer::new`], the Kafka producers recording into `metrics`
    /// (the scheduler's [`Metrics::producer`](crate::metrics::Metrics::producer),
    /// to show them on its `/metrics`) and taking `kafka_config` (TLS, SASL).
    pub fn with_metrics(
        default_brokers: impl Into<String>,
        metrics: std::sync::Arc<rebound_producer::ProducerMetrics>,
        kafka_config: Vec<(String, String)>,
    ) -> Self {
        Self::with_options(
            default_brokers,
            metrics,
            kafka_config,
            HttpOptions::default(),
        )
    }

    /// Like [`Deliverer::with_metrics`], HTTP deliveries signed and guarded
    /// as `http` says.
    pub fn with_options(
        default_brokers: impl Into<String>,
        metrics: std::sync::Arc<rebound_producer::ProducerMetrics>,
        kafka_config: Vec<(String, String)>,
        http: HttpOptions,
    ) -> Self {
        Deliverer {
            kafka: kafka::KafkaSink::new(default_brokers, metrics, kafka_config),
            http: http::HttpSink::with_options(http),
        }
    }
}

impl Deliver for Deliverer {
    fn deliver<'a>(&'a self, d: Delivery<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        match d.kind {
            DestinationType::Kafka => self.kafka.send(d).boxed(),
            DestinationType::Http => self.http.send(d).boxed(),
        }
    }
}
