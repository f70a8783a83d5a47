//! Reader errors, each naming the topic (and partition when known).

use std::time::Duration;

use rdkafka::error::KafkaError;

/// Errors of [`PartitionReader`](super::PartitionReader) and
/// [`GroupReader`](super::GroupReader).
#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    /// The configuration cannot be used.
    #[error("invalid reader configuration for {topic}: {reason}")]
    Config {
        /// The topic.
        topic: String,
        /// What is wrong.
        reason: String,
    },
    /// The client could not be created (bad client property).
    #[error("cannot create the Kafka client for {topic}")]
    Client {
        /// The topic.
        topic: String,
        /// The client error.
        #[source]
        source: Box<KafkaError>,
    },
    /// No metadata came back from the brokers.
    #[error("could not reach Kafka brokers at {brokers} within {}: {last_error}", secs(*.timeout))]
    Unreachable {
        /// The bootstrap list.
        brokers: String,
        /// How long we waited.
        timeout: Duration,
        /// What librdkafka last logged as an error (why it failed).
        last_error: String,
        /// The last client error.
        #[source]
        source: Box<KafkaError>,
    },
    /// The topic does not exist (or cannot be described).
    #[error("topic {topic} does not exist")]
    UnknownTopic {
        /// The topic.
        topic: String,
    },
    /// A partition that the topic does not have was asked for.
    #[error("topic {topic} has no partition {partition} (it has {count})")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition asked for.
        partition: i32,
        /// How many partitions the topic has.
        count: usize,
    },
    /// A start offset below the first offset still stored.
    #[error("offset {offset} of {topic} partition {partition} was deleted (the partition starts at {low})")]
    OffsetDeleted {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The offset asked for.
        offset: i64,
        /// The first offset still stored.
        low: i64,
    },
    /// A client call about one partition failed.
    #[error("{op} of {topic} partition {partition} failed")]
    Partition {
        /// What the reader was doing.
        op: &'static str,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The client error.
        #[source]
        source: Box<KafkaError>,
    },
    /// A client call about the topic failed.
    #[error("{op} of {topic} failed")]
    Topic {
        /// What the reader was doing.
        op: &'static str,
        /// The topic.
        topic: String,
        /// The client error.
        #[source]
        source: Box<KafkaError>,
    },
    /// Nothing arrived for the timeout while some partitions were unfinished.
    #[error("timed out after {} {what} of {topic}: nothing arrived from partitions {partitions:?}", secs(*.timeout))]
    Timeout {
        /// What the reader was waiting for.
        what: &'static str,
        /// The topic.
        topic: String,
        /// The partitions still unfinished.
        partitions: Vec<i32>,
        /// How long it waited.
        timeout: Duration,
    },
    /// A group member got no partition of the topic within the timeout.
    #[error("no partition of {topic} was assigned to this member of group {group} within {}", secs(*.timeout))]
    NotAssigned {
        /// The topic.
        topic: String,
        /// The consumer group.
        group: String,
        /// How long it waited.
        timeout: Duration,
    },
}

/// Result alias for readers.
pub type Result<T, E = ReaderError> = std::result::Result<T, E>;

/// `30s`, `1.5s`, `250ms`.
fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
