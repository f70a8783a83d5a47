//! Error types of the scheduler library.

use std::path::PathBuf;

/// A rejected task request: which field is wrong and why (core's type,
/// shared with record validation).
pub use rebound_core::ValidationError;

/// Errors of the scheduler library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request body is not valid JSON or has a field of the wrong type.
    #[error("invalid body: {0}")]
    InvalidBody(String),
    /// The task failed validation.
    #[error("validation failed: {0}")]
    Validation(#[from] ValidationError),
    /// `message_data` exceeds the configured limit.
    #[error("message_data of task {id} is {size} bytes; the limit is {limit} bytes")]
    PayloadTooLarge {
        /// Task id.
        id: String,
        /// Size of the payload in bytes.
        size: usize,
        /// The configured limit in bytes.
        limit: usize,
    },
    /// A task with this id exists with a different body.
    #[error("task {id} already exists with a different body")]
    Conflict {
        /// Task id.
        id: String,
    },
    /// The store URL could not be understood.
    #[error("invalid store url {url:?}: {reason}")]
    StoreUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// An I/O error of the embedded store.
    #[error("store file {path}")]
    Io {
        /// File involved.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The embedded store's directory is held by another process (or another
    /// open store in this one).
    #[error("store directory {dir} is in use by another process (it holds {dir}/LOCK)")]
    Locked {
        /// The store directory.
        dir: PathBuf,
    },
    /// The embedded store's database file is damaged. Nothing is dropped or
    /// repaired automatically: the store refuses to run on it.
    #[error(
        "store file {path} is damaged ({reason}); the store will not run on it: restore it \
         from a backup, or move it aside (mv {path} {path}.damaged) to start with an empty store"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The embedded store's file was written by a newer version, in a
    /// format this one cannot read. It is not damaged.
    #[error(
        "store file {path} was written by a newer version of rebound (store format {found}; \
         this version reads formats up to {known}): run that version or a later one; the file \
         is not damaged, do not move it aside"
    )]
    NewerFormat {
        /// The database file.
        path: PathBuf,
        /// The format the file records.
        found: u64,
        /// The newest format this version reads.
        known: u64,
    },
    /// The embedded store's database engine (redb) failed.
    #[error("store file {path}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// The redb error.
        #[source]
        source: Box<redb::Error>,
    },
    /// The embedded store's writer has stopped (a previous write failed).
    #[error("store writer stopped: {0}")]
    WriterStopped(String),
    /// A Redis command failed.
    #[error("redis {op}")]
    Redis {
        /// The operation attempted.
        op: &'static str,
        /// The Redis error.
        #[source]
        source: redis::RedisError,
    },
    /// A stored record could not be decoded.
    #[error("stored task {id} is unreadable: {reason}")]
    Decode {
        /// Task id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// Configuration is invalid.
    #[error("invalid configuration {name}: {reason}")]
    Config {
        /// Setting name (environment variable or field).
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The Kafka task ingress could not start or stop cleanly.
    #[error("task ingress from {topic}: {reason}")]
    Ingress {
        /// The ingress topic.
        topic: String,
        /// What went wrong, with its causes.
        reason: String,
    },
    /// The HTTP listener failed.
    #[error("http server on {addr}")]
    Http {
        /// Listen address.
        addr: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias of the scheduler library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// For `map_err`: an I/O failure on the store file or directory `path`.
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
