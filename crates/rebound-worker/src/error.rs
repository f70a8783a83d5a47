//! Worker errors.

use rdkafka::error::KafkaError;

/// A configuration value is missing or invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A required field was not set.
    #[error("{0} is required")]
    Missing(&'static str),
    /// A field has an unusable value.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field name.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
}

/// Errors of the worker runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Invalid configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The brokers could not be reached within the connect timeout.
    #[error("could not reach Kafka brokers at {brokers} within {timeout:?}: {last_error}")]
    Unreachable {
        /// The bootstrap list.
        brokers: String,
        /// How long we waited.
        timeout: std::time::Duration,
        /// The last error the client reported (librdkafka's words: a refused
        /// connection, a failed TLS handshake or SASL login).
        last_error: String,
        /// The metadata request's error.
        #[source]
        source: Box<KafkaError>,
    },
    /// A subscribed topic does not exist on the cluster.
    #[error("topic {topic:?} does not exist on {brokers}")]
    UnknownTopic {
        /// The topic.
        topic: String,
        /// The bootstrap list.
        brokers: String,
    },
    /// A Kafka client call failed.
    #[error("kafka error ({context})")]
    Kafka {
        /// What the worker was doing.
        context: &'static str,
        /// The client error.
        #[source]
        source: KafkaError,
    },
    /// The worker's internal tasks stopped unexpectedly.
    #[error("worker runtime stopped: {0}")]
    Stopped(String),
}

/// Result alias for the worker.
pub type Result<T, E = Error> = std::result::Result<T, E>;
