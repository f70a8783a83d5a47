//! Producing for rebound: an idempotent producer that waits for
//! acknowledgements, with errors classified as retriable or final. The DLQ,
//! retry tiers, replay and the scheduler's Kafka destination use it.
//!
//! # Layout
//!
//! - [`admin`]: partition counts and creating missing topics.
//! - [`record`]: [`OutRecord`], what to send.
//! - [`producer`]: [`Producer`] and its [`ProducerConfig`].
//! - [`error`]: [`ProduceError`] and the retriable / final classification.
//! - [`transaction`]: [`TransactionalProducer`]: begin / send / send offsets / commit / abort.

pub mod admin;
pub mod error;
pub mod producer;
pub mod record;
pub mod transaction;

pub use error::{is_retriable, ProduceError};
pub use producer::{Delivered, Producer, ProducerConfig};
pub use record::OutRecord;
pub use transaction::{PendingDelivery, TransactionalProducer, TxnError, TxnErrorKind};
