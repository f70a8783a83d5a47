//! Producing for rebound: one producer with synchronous, asynchronous,
//! callback, fire-and-forget and batched sends (idempotent by default), a
//! transactional producer, Java-compatible key partitioning, typed
//! (validated, JSON-encoded) messages, bounded retries of retriable errors,
//! and Prometheus metrics. The DLQ, retry tiers, replay and the scheduler's
//! Kafka destination use it.
//!
//! # Layout
//!
//! - [`config`]: [`ProducerConfig`] and [`Acks`]: what each setting guarantees.
//! - [`producer`]: [`Producer`]: `send`, `enqueue`, `send_with_callback`,
//!   `send_and_forget`, `flush` (the table there says what each promises).
//! - [`delivery`]: delivery reports: [`Delivered`], the [`Pending`] future.
//! - [`record`]: [`OutRecord`], what to send.
//! - [`partitioner`]: Kafka's murmur2 and [`partition_for_key`].
//! - [`typed`]: [`TypedProducer`], `send_json`, [`SendError`].
//! - `flush`: waiting for outstanding records without rdkafka's 100 ms steps.
//! - `retry`: retrying retriable errors with a [`rebound_core::Backoff`].
//! - [`error`]: [`ProduceError`] and the retriable / final classification.
//! - [`metrics`]: [`ProducerMetrics`]: sent, delivered, failed by error, latency.
//! - [`transaction`]: [`TransactionalProducer`]: begin / send / send offsets / commit / abort.
//! - [`admin`]: topics: partition counts, create (with configs), list, describe, delete.

pub mod admin;
pub mod config;
pub mod delivery;
pub mod error;
mod flush;
pub mod metrics;
pub mod partitioner;
pub mod producer;
pub mod record;
mod retry;
pub mod transaction;
pub mod typed;

pub use config::{Acks, ProducerConfig};
pub use delivery::{Delivered, DeliveryOutcome, Pending};
pub use error::{is_retriable, ProduceError};
pub use metrics::ProducerMetrics;
pub use partitioner::{murmur2, partition_for_key};
pub use producer::Producer;
pub use record::OutRecord;
pub use transaction::{PendingDelivery, TransactionalProducer, TxnError, TxnErrorKind};
pub use typed::{Encoder, Json, SendError, TypedProducer};
