//! Why a pipeline stopped.

use rebound_core::HandlerError;
use rebound_producer::TxnError;

/// A pipeline could not start, or stopped for good. Nothing past the failed
/// transaction is committed: restarting resumes from the last commit.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Bad configuration, unreachable brokers, a missing topic or a failed
    /// client call.
    #[error(transparent)]
    Worker(#[from] crate::Error),
    /// Creating a dead-letter topic failed.
    #[error(transparent)]
    Admin(#[from] rebound_producer::admin::AdminError),
    /// A transactional call failed for good (for instance this instance was
    /// fenced by another producer with the same transactional id).
    #[error(transparent)]
    Txn(#[from] TxnError),
    /// A record failed for good and no dead-letter topic is configured.
    #[error("record {topic}/{partition}@{offset} failed and no dead-letter topic is configured: {error}")]
    Failed {
        /// Input topic.
        topic: String,
        /// Input partition.
        partition: i32,
        /// Input offset.
        offset: i64,
        /// The last error.
        error: HandlerError,
    },
    /// The pipeline task ended without a result (it panicked or was aborted).
    #[error("pipeline task ended: {0}")]
    Stopped(String),
}
