//! Exactly-once consume-transform-produce.
//!
//! **Guarantee.** Each input record's output records and its consumed
//! offset commit in one Kafka transaction (`send_offsets_to_transaction`),
//! so a `read_committed` reader of the output sees every input record's
//! output exactly once, however the pipeline is stopped, crashed or
//! rebalanced. A transform may *run* more than once for a record (after an
//! abort or a crash); only its Kafka output is exactly once.
//!
//! **How.** The loop collects a batch (up to `max_batch_size` records or
//! `linger` after the first), begins a transaction, runs the transform over
//! the batch in lanes (same key in offset order, different keys
//! concurrently, up to `max_in_flight`), sends each output as soon as it is
//! ready, adds the batch's next offsets with the consumer's group metadata,
//! and commits. Records that fail for good go to the dead-letter topic in
//! the same transaction. A failed transaction is aborted and the consumer
//! rewound to the batch's first records.
//!
//! **Fencing.** The transactional id is per instance and stable across
//! restarts: registering it aborts whatever the previous incarnation left
//! open and fences it. The group metadata carries the member's generation:
//! on Kafka ≥ 2.5 a member that lost its partitions in a rebalance cannot
//! commit offsets for them. Rebalances are only served between
//! transactions; records fetched from a partition that was then revoked
//! are dropped from the batch (the new owner reads them from the last
//! commit).
//!
//! # Layout
//!
//! - [`config`]: [`PipelineConfig`] and its builder.
//! - [`transform`]: the [`Transform`] trait and [`transform_fn`].
//! - [`observer`]: [`CommitObserver`], told about each transaction.
//! - [`metrics`]: [`PipelineMetrics`] (Prometheus) and [`PipelineStats`].
//! - `pipeline`: [`Pipeline::start`], the loop and the [`PipelineHandle`].
//! - `txn`: one transaction: transform, send, commit or abort and rewind.
//! - `batch`: a transaction's input, its lanes and offset ranges.

mod batch;
pub mod config;
mod error;
pub mod metrics;
pub mod observer;
mod pipeline;
mod shared;
pub mod transform;
mod txn;

pub use config::{PipelineBuilder, PipelineConfig};
pub use error::PipelineError;
pub use metrics::{PipelineMetrics, PipelineStats};
pub use observer::{CommitObserver, InputRange};
pub use pipeline::{Pipeline, PipelineHandle};
pub use transform::{transform_fn, FnTransform, Transform, TransformResult};
