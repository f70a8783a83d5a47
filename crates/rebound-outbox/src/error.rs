//! The outbox's errors: what was being done, on which table, and why.

/// An outbox operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database URL names no supported database.
    #[error("unsupported database URL {0:?}: expected postgres://… or sqlite://PATH")]
    UnsupportedUrl(String),
    /// The table name is not a plain SQL identifier.
    #[error("invalid table name {0:?}: use letters, digits and _ (not starting with a digit), at most 48 characters")]
    InvalidTable(String),
    /// A database call failed.
    #[error("{what} on table {table} failed")]
    Database {
        /// What the relay or helper was doing.
        what: &'static str,
        /// The outbox table.
        table: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// This instance no longer holds the table's relay lock (its lock
    /// connection broke, or a lease expired): it stops publishing.
    #[error("lost the relay lock on table {0}: another instance may take over")]
    LostLock(String),
    /// The Kafka producer could not be created.
    #[error("cannot create the Kafka producer")]
    Producer(#[source] rebound_producer::ProduceError),
}

/// Result alias of the outbox.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `map_err` helper: a database error while doing `what` on `table`.
pub(crate) fn db<'a>(what: &'static str, table: &'a str) -> impl FnOnce(sqlx::Error) -> Error + 'a {
    move |source| Error::Database {
        what,
        table: table.to_string(),
        source,
    }
}
