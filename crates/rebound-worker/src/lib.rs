//! The rebound consumer runtime: more concurrency than partitions, per-key
//! order, exact offset tracking, backpressure and rebalance-safe commits.
//!
//! **Guarantee (at-least-once, the default):** an offset is committed only
//! when its record and every earlier record of its partition are finished;
//! finished records above that watermark are encoded into the commit
//! metadata and skipped after a restart. A crash can make records run again,
//! never lose them. A record that fails (after whatever retry layers wrap
//! the handler) freezes its partition: nothing past it is committed.
//!
//! # Layout
//!
//! - [`config`]: [`WorkerConfig`] and its builder; [`Ordering`] and [`Delivery`] modes.
//! - [`handler`]: the [`Handler`] and [`BatchHandler`] traits.
//! - [`decode`]: JSON decoding and validation of values (failures are permanent).
//! - [`worker`]: [`Worker::start`] and the [`WorkerHandle`].
//! - `poller`: the thread that owns the rdkafka consumer and serves rebalances.
//! - `runtime`: the dispatcher task (start jobs, commits, revokes, shutdown).
//! - `dispatch`: the dispatcher state: partitions, limits, freezing, backpressure.
//! - `lanes`: ordering lanes inside a partition.
//! - [`tracker`]: per-partition offset tracking and commit metadata.
//! - [`exactly_once`]: consume-transform-produce in Kafka transactions.
//! - [`reader`]: consumers for tooling (manual assignment, group readers).
//! - [`layers`]: middleware around handlers: retry in place, retry tiers and
//!   the DLQ, the circuit breaker.
//! - [`health`], [`metrics`]: readiness and Prometheus metrics.
//!
//! # Example
//!
//! ```no_run
//! use rebound_worker::{handler_fn, Ordering, Record, Worker, WorkerConfig};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = WorkerConfig::builder()
//!     .with_brokers("127.0.0.1:9092")
//!     .with_group("orders")
//!     .with_topic("orders")
//!     .with_ordering(Ordering::Key)
//!     .with_max_in_flight(100)
//!     .build()?;
//! let worker = Worker::start(config, handler_fn(|rec: &Record| {
//!     let offset = rec.offset;
//!     async move { println!("{offset}"); Ok(()) }
//! })).await?;
//! tokio::signal::ctrl_c().await?;
//! worker.stop().await?;
//! # Ok(()) }
//! ```

mod cluster_check;
pub mod config;
pub mod decode;
mod dispatch;
pub mod error;
pub mod exactly_once;
pub mod handler;
pub mod health;
mod lanes;
pub mod layers;
pub mod metrics;
mod poller;
pub mod reader;
mod retained;
mod runtime;
pub mod tracker;
pub mod worker;

pub use config::{Delivery, Ordering, WorkerBuilder, WorkerConfig};
pub use decode::{decode_json, json_handler};
pub use dispatch::{CommitPoint, DispatchStats, FrozenInfo};
pub use error::{ConfigError, Error, Result};
pub use handler::{batch_handler_fn, handler_fn, BatchError, BatchHandler, Handler};
pub use health::{Health, HealthReport, Probe};
pub use layers::{
    Breaker, BreakerConfig, BreakerLayer, BreakerState, DeadLetterLayer, DeadLetterPolicy,
    FloodGuardConfig, Layer, Retry, RetryLayer, TopicNames,
};
pub use metrics::Metrics;
pub use poller::record_from_message;
pub use reader::{GroupReader, PartitionReader, ReaderConfig, ReaderError, StartAt};
pub use rebound_core::{
    Backoff, ErrorKind, HandlerError, HandlerResult, Header, Jitter, Record, Topic, Validate,
    ValidationError,
};
pub use runtime::RunSummary;
pub use worker::{group_consumer_config, Worker, WorkerHandle};

/// The README's Rust examples, compiled as doc tests (`cargo test --doc`).
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
