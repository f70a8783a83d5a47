//! The stream library's errors.

use std::path::PathBuf;

use rdkafka::error::KafkaError;

/// What can go wrong building or running a stream application.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// A setting or the topology is invalid.
    #[error("invalid stream configuration: {field}: {reason}")]
    Config {
        /// The setting or topology element.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A key or value could not be decoded.
    #[error("cannot decode the {what} of {topic}/{partition}@{offset}: {reason}")]
    Decode {
        /// `key` or `value` (or `state` for a stored aggregate).
        what: &'static str,
        /// Topic of the record.
        topic: String,
        /// Partition of the record.
        partition: i32,
        /// Offset of the record.
        offset: i64,
        /// The decoder's complaint.
        reason: String,
    },
    /// The state directory is used by another process.
    #[error("state directory {dir} is in use by another process (it holds {dir}/LOCK)")]
    Locked {
        /// The directory.
        dir: PathBuf,
    },
    /// A state file is damaged: the application refuses to run on it.
    #[error(
        "state file {path} is damaged ({reason}); the application will not run on it: \
         delete it (its state is rebuilt from the changelog topic) or restore it from a backup"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The embedded database failed.
    #[error("state file {path}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// The redb error.
        #[source]
        source: redb::Error,
    },
    /// A file system operation failed.
    #[error("{path}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A Kafka client call failed.
    #[error("{context}")]
    Kafka {
        /// What was being done.
        context: String,
        /// The client error.
        #[source]
        source: KafkaError,
    },
    /// Creating or inspecting a topic failed.
    #[error(transparent)]
    Admin(#[from] rebound_producer::admin::AdminError),
    /// Producing output or changelog records failed.
    #[error(transparent)]
    Produce(#[from] rebound_producer::ProduceError),
    /// A transactional call failed for good.
    #[error(transparent)]
    Txn(Box<rebound_producer::TxnError>),
    /// Reading a changelog or table topic failed.
    #[error(transparent)]
    Reader(#[from] rebound_worker::ReaderError),
    /// Exactly-once: transactions kept aborting; the application stopped
    /// instead of reading the same batch again for ever.
    #[error(
        "{aborts} transactions in a row were aborted; the application stopped. Last cause: {last}"
    )]
    Aborted {
        /// Aborts in a row.
        aborts: u32,
        /// The output (or changelog) record whose failure aborted the
        /// last one, when the failure says which record it was.
        failed: Option<FailedOutput>,
        /// Why the last one aborted.
        last: String,
    },
    /// The processing loop stopped (its task ended or panicked).
    #[error("the stream loop stopped: {0}")]
    Stopped(String),
}

impl From<rebound_producer::TxnError> for StreamError {
    fn from(e: rebound_producer::TxnError) -> Self {
        StreamError::Txn(Box::new(e))
    }
}

impl StreamError {
    pub(crate) fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        StreamError::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub(crate) fn kafka(context: impl Into<String>, source: KafkaError) -> Self {
        StreamError::Kafka {
            context: context.into(),
            source,
        }
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = StreamError> = std::result::Result<T, E>;

/// A record that could not be produced: where it was going.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedOutput {
    /// Its topic.
    pub topic: String,
    /// Its partition, when it was chosen (not left to the partitioner).
    pub partition: Option<i32>,
}
