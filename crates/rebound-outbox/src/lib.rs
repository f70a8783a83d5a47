//! The transactional outbox: applications write rows to a table inside
//! their own transactions; the relay publishes them to Kafka — per key in
//! commit order, at least once, never skipping a late commit — and the
//! dedupe (inbox) layer turns the relay's rare duplicates into one handling.
//!
//! # Layout
//!
//! - [`table`]: [`TableName`] and [`DatabaseUrl`] (PostgreSQL or SQLite by scheme).
//! - [`enqueue`]: [`Message`], [`enqueue_pg`], [`enqueue_sqlite`]: writing a
//!   row inside the caller's transaction.
//! - [`pg`], [`sqlite`]: each database's DDL and relay store.
//! - [`store`]: [`Store`], what the relay asks of a database.
//! - [`row`]: a pending row and how it becomes a record (bad rows named).
//! - [`relay`]: [`Relay`], [`RelayConfig`]: the loop, one batch at a time.
//! - [`metrics`], [`health`]: Prometheus metrics and readiness.
//! - [`dedupe`]: the worker layer that drops already-handled outbox ids.
//! - [`error`]: [`Error`], what failed and where.

pub mod dedupe;
pub mod enqueue;
pub mod error;
pub mod health;
pub mod metrics;
pub mod pg;
pub mod relay;
pub mod row;
pub mod sqlite;
pub mod store;
pub mod table;

pub use enqueue::{enqueue_pg, enqueue_sqlite, Message};
pub use error::{Error, Result};
pub use health::{RelayHealth, RelayReport};
pub use metrics::RelayMetrics;
pub use relay::{init, BatchReport, Relay, RelayConfig};
pub use store::{FailedRow, Finished, Stats, Store};
pub use table::{DatabaseUrl, TableName, DEFAULT_TABLE};
