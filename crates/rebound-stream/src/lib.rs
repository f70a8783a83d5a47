//! Stream processing on Kafka: a typed topology of stateless operators and
//! stateful aggregations, with durable local state per input partition,
//! compacted changelog topics, restore on start and on rebalance, and
//! at-least-once or exactly-once processing.
//!
//! # Guarantees
//!
//! - **At-least-once** (default): records are processed as they arrive
//!   (their outputs sent at once); every commit interval (default 1 s, or
//!   50,000 records) the changelog records of the keys changed are sent,
//!   every output and changelog record is acknowledged, the state files
//!   written, then the input offsets committed. A crash processes records
//!   again (their output repeats); the state skips input below its own
//!   checkpoint, so counts stay exact as long as the state file survives.
//!   A cooperative revoke (the default `cooperative-sticky` assignor)
//!   commits before the partitions are given up. An eager revoke, or a
//!   lost partition (session timeout, poll interval exceeded, fenced),
//!   drops its uncommitted work
//!   (state and offsets): its new owner processes those records again, as
//!   after a crash (outputs repeat; a count behind a repartition topic
//!   counts the repeated repartition records again).
//! - **Exactly-once** ([`Guarantee::ExactlyOnce`]): output, changelog
//!   records and input offsets commit in one Kafka transaction
//!   (`send_offsets_to_transaction`, generation-fenced); the state file is
//!   written after the commit. A `read_committed` reader sees each input's
//!   effect once, however the process is killed. An aborted transaction
//!   reads its batch again; after
//!   [`with_max_aborts`](StreamConfigBuilder::with_max_aborts) aborts in a
//!   row lasting [`with_max_abort_time`](StreamConfigBuilder::with_max_abort_time)
//!   (an output that refuses a record for good) the application stops
//!   with [`StreamError::Aborted`], naming the record's topic when the
//!   failure says which record it was.
//!
//! # State
//!
//! Each input partition with stores has a redb file (the embedded database
//! of the scheduler's `file://` store) in `<state_dir>/<application>/`,
//! with a write-back cache: a commit writes one changelog record per key
//! changed, not per record. Each changelog record carries the input offset
//! that wrote it (header `rebound.stream.offset`); the file keeps the next
//! input offset it reflects (the checkpoint) and the next changelog offset.
//!
//! On assignment, before any record of the partition is processed, the
//! store is brought to `max(checkpoint, committed input offset)` by reading
//! its changelog partition from the file's position to the end and applying
//! only entries tagged below that target. With the file deleted, the whole
//! changelog is read. **Why the tag and not just `read_committed`:** the
//! test broker (tansu) shows records of aborted transactions to
//! `read_committed` readers. An aborted entry's input offset was not
//! committed, so it is at or above the target and skipped; the input is
//! processed again and writes a new entry. On Apache Kafka the filter never
//! drops anything (aborted records are hidden anyway), so the design is the
//! same on both. What the tag cannot fix on tansu (Apache Kafka hides
//! both): a fenced zombie's aborted transaction that re-processed offsets
//! below the new owner's commit, and aborted records in a *repartition*
//! topic, which its reader would count again (the re-keying test on tansu
//! sees no abort; the kill test's topology does not re-key). A re-keying
//! count killed with SIGKILL mid-batch is tested on Apache Kafka
//! (`apache_kafka_rekey`): exact.
//!
//! # Limits
//!
//! Closed time windows are deleted from the store, and sessions once stream
//! time is past their end plus grace plus twice the gap (until then a late
//! record can still bridge two sessions; checked at each multiple of the
//! gap, see `window::session`); sessions written before that index existed
//! are deleted only when their key gets a record again. A session merge
//! forwards the merged session without retracting the ones it replaced.
//! Global tables live in memory.
//!
//! Why not the worker's exactly-once `Pipeline`: its per-record `Transform`
//! has no place to restore a partition's state when it is assigned, to
//! flush a write-back cache into the transaction before the offsets, or to
//! drop uncommitted state on abort; and at-least-once needs the same loop.
//! The loop here reuses its pieces: the group consumer settings, the
//! transactional producer, batches collected between rebalances, rewind on
//! abort.
//!
//! # Layout
//!
//! - [`topology`]: [`StreamBuilder`], [`KStream`], [`KGroupedStream`], [`KTable`].
//! - [`table`]: [`GlobalTable`] from a compacted topic; `join`, `left_join`.
//! - [`window`]: [`Windows`] (tumbling, hopping, session; grace), [`Windowed`] keys.
//! - [`codec`]: [`Codec`]: keys, values and aggregates as bytes.
//! - [`config`]: [`StreamConfig`], [`Guarantee`].
//! - `runtime`: [`StreamApp::start`], the loop, commits, assignments.
//! - `state`: per-partition redb files, the write-back cache, restore.
//! - [`metrics`], [`health`]: Prometheus metrics and readiness.
//! - [`error`]: [`StreamError`] and [`Result`].
//!
//! # Example
//!
//! ```no_run
//! use rebound_stream::{StreamApp, StreamBuilder, StreamConfig};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let b = StreamBuilder::new("word-count");
//! b.stream::<String, String>("words")
//!     .group_by_key()
//!     .count("counts")
//!     .to_stream()
//!     .to("word-counts");
//! let cfg = StreamConfig::builder()
//!     .with_brokers("127.0.0.1:9092")
//!     .with_state_dir("/var/lib/word-count")
//!     .build()?;
//! let app = StreamApp::start(cfg, b.build()?).await?;
//! tokio::signal::ctrl_c().await?;
//! app.stop().await?;
//! # Ok(()) }
//! ```

pub mod codec;
pub mod config;
pub mod error;
pub mod health;
pub mod metrics;
mod runtime;
mod state;
pub mod table;
pub mod topology;
pub mod window;

pub use codec::{Codec, Json};
pub use config::{Guarantee, StreamConfig, StreamConfigBuilder};
pub use error::{FailedOutput, Result, StreamError};
pub use health::StreamHealth;
pub use metrics::StreamMetrics;
pub use runtime::{StreamApp, StreamHandle};
pub use table::GlobalTable;
pub use topology::{KGroupedStream, KStream, KTable, Predicate, StreamBuilder, Topology};
pub use window::{Windowed, WindowedStream, Windows};
