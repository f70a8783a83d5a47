//! The one documented set of header names used by the DLQ, retry topics and
//! replay. Values are UTF-8 strings (numbers in decimal), never raw bytes.

/// Topic the record was first consumed from.
pub const ORIGINAL_TOPIC: &str = "rebound.original.topic";
/// Partition the record was first consumed from.
pub const ORIGINAL_PARTITION: &str = "rebound.original.partition";
/// Offset the record had in its original partition.
pub const ORIGINAL_OFFSET: &str = "rebound.original.offset";
/// Original record timestamp, epoch milliseconds.
pub const ORIGINAL_TIMESTAMP: &str = "rebound.original.timestamp";
/// Original key, when a retry/DLQ write rewrote it.
pub const ORIGINAL_KEY: &str = "rebound.original.key";
/// Consumer group that failed the record.
pub const CONSUMER_GROUP: &str = "rebound.consumer.group";
/// Number of attempts made so far.
pub const ATTEMPT: &str = "rebound.attempt";
/// `transient`, `permanent` or `throttled`.
pub const ERROR_KIND: &str = "rebound.error.kind";
/// The last error message.
pub const ERROR_MESSAGE: &str = "rebound.error.message";
/// Epoch milliseconds of the first failure.
pub const FIRST_FAILURE: &str = "rebound.first.failure";
/// Epoch milliseconds of the last failure.
pub const LAST_FAILURE: &str = "rebound.last.failure";
/// Retry topics: epoch milliseconds when the record may be processed.
pub const DUE: &str = "rebound.due";
/// Set on records written by `rebound dlq replay`.
pub const REPLAYED: &str = "rebound.replayed";
/// Set by the outbox relay on every record it publishes: the row's unique
/// id (a UUID), what the dedupe (inbox) layer recognises duplicates by.
pub const OUTBOX_ID: &str = "rebound.outbox.id";
/// Set by `rebound-stream` on every changelog record: the input offset
/// (of the store's input partition) whose processing wrote it last. A
/// restore applies only entries below the committed input offset.
pub const STREAM_INPUT_OFFSET: &str = "rebound.stream.offset";
/// W3C trace context.
pub const TRACEPARENT: &str = "traceparent";
