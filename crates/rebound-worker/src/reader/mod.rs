//! Consumers for tooling: read a topic without being part of the work.
//!
//! - [`PartitionReader`]: manual partition assignment, no consumer group,
//!   never commits. Starts each partition at the beginning, the end, an
//!   offset or a timestamp ([`StartAt`]) and reads either up to the end as
//!   of opening or on and on ([`ReaderConfig::with_follow`]).
//! - [`GroupReader`]: subscribes as a member of a consumer group; the caller
//!   [`acks`](GroupReader::ack) what it has handled and
//!   [`commits`](GroupReader::commit) it (at-least-once: a crash before the
//!   commit shows those records again to the next member).
//!
//! Both yield [`Record`](rebound_core::Record)s and block: call them from a
//! blocking thread.
//!
//! **Where the end is.** The high watermark a broker reports is not trusted
//! alone (tansu 0.6 reports a batch's base offset + 1 after a multi-record
//! batch, and resolves `OFFSET_END` from it). At open, each partition is
//! fetched from its last reported record until the broker signals the end of
//! the partition (librdkafka's partition EOF, computed from the fetch
//! response); the offset after the last record seen then is the end as of
//! now ([`PartitionSpan::end`]). Records written after that are not read
//! unless following.
//!
//! **Timestamps.** A start by timestamp asks the broker (`offsets_for_times`)
//! and then also skips, per partition, records older than the timestamp
//! until the first one that is not: tansu 0.6 answers with the start of an
//! earlier batch, or with offset 0 for a time after every record.
//!
//! # Layout
//!
//! - `config`: [`ReaderConfig`] and [`StartAt`].
//! - `error`: [`ReaderError`].
//! - `client`: client settings, topic metadata, the end probe.
//! - `plan`: where each partition starts and stops ([`PartitionSpan`]).
//! - `cursor`: per-partition progress: what to yield, when a partition is done.
//! - `partition`: [`PartitionReader`].
//! - `group`: [`GroupReader`].
//! - `rebalance`: a group member's assignments, revokes and commits.

mod client;
mod config;
mod cursor;
mod error;
mod group;
mod partition;
mod plan;
mod rebalance;

pub use config::{ReaderConfig, StartAt};
pub use error::{ReaderError, Result};
pub use group::GroupReader;
pub use partition::PartitionReader;
pub use plan::{spans, PartitionSpan};

/// What a poll brought.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Polled {
    /// A record to hand on.
    Record(rebound_core::Record),
    /// Nothing within the poll timeout; not finished yet.
    Idle,
    /// Every partition reached its end (never when following).
    End,
}
