//! The relay's view of a database: one active instance per table, pending
//! rows in publish order, and what happened to them. [`Store`] dispatches to
//! the PostgreSQL or SQLite implementation chosen by the URL's scheme; both
//! pass the same contract tests.

use std::time::Duration;

use crate::error::Result;
use crate::pg::PgStore;
use crate::row::PendingRow;
use crate::sqlite::SqliteStore;
use crate::table::{DatabaseUrl, TableName};

/// What became of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Finished {
    /// Rows Kafka acknowledged.
    pub published: Vec<i64>,
    /// Rows that can never be published as they are, with the error.
    pub failed: Vec<(i64, String)>,
    /// PostgreSQL: the writing transactions none of whose rows is pending
    /// any more (their commit-order entries are removed).
    pub txids: Vec<String>,
    /// The last transaction of a full batch: more of its rows may be
    /// pending; its entry is removed only if none is.
    pub last_txid: Option<String>,
}

impl Finished {
    /// Sets [`txids`](Self::txids) from the batch: `rows` in fetch order,
    /// each transaction's pending rows together. A transaction is done when
    /// every one of its rows in the batch is published or failed, unless it
    /// is the last one of a full batch (more of its rows may follow).
    pub fn set_done_txids(&mut self, rows: &[PendingRow], batch_full: bool) {
        let finished: std::collections::HashSet<i64> = self
            .published
            .iter()
            .copied()
            .chain(self.failed.iter().map(|(id, _)| *id))
            .collect();
        let mut done: Vec<String> = Vec::new();
        let mut open: std::collections::HashSet<&str> = Default::default();
        for r in rows {
            let Some(t) = r.txid.as_deref() else { continue };
            if !finished.contains(&r.id) {
                open.insert(t);
            }
            if done.last().map(String::as_str) != Some(t) {
                done.push(t.to_string());
            }
        }
        self.last_txid = None;
        if batch_full {
            self.last_txid = done.pop().filter(|t| !open.contains(t.as_str()));
        }
        done.retain(|t| !open.contains(t.as_str()));
        self.txids = done;
    }
}

/// The table's state, for metrics and `rebound outbox status`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    /// Rows not yet published nor failed (committed ones only).
    pub pending: i64,
    /// Age of the oldest pending row.
    pub oldest_pending: Option<Duration>,
    /// Rows marked failed.
    pub failed: i64,
    /// Published rows kept for the retention period.
    pub published_kept: i64,
}

/// A row marked failed, for `rebound outbox status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedRow {
    /// Row id.
    pub id: i64,
    /// Its topic.
    pub topic: String,
    /// Why it failed.
    pub error: String,
}

impl From<(i64, String, Option<String>)> for FailedRow {
    /// A row as both databases return it: `id, topic, error`.
    fn from((id, topic, error): (i64, String, Option<String>)) -> Self {
        FailedRow {
            id,
            topic,
            error: error.unwrap_or_default(),
        }
    }
}

/// An outbox database.
#[derive(Debug)]
pub enum Store {
    /// PostgreSQL.
    Postgres(PgStore),
    /// SQLite.
    Sqlite(SqliteStore),
}

macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Postgres($s) => $e,
            Store::Sqlite($s) => $e,
        }
    };
}

impl Store {
    /// Connects to `url`'s database for relaying `table` (nothing is
    /// locked yet).
    pub async fn connect(url: &DatabaseUrl, table: &TableName) -> Result<Store> {
        Ok(match url {
            DatabaseUrl::Postgres(u) => Store::Postgres(PgStore::connect(u, table).await?),
            DatabaseUrl::Sqlite(u) => Store::Sqlite(SqliteStore::connect(u, table).await?),
        })
    }

    /// The DDL `init` runs, as one script.
    pub fn ddl(url: &DatabaseUrl, table: &TableName) -> String {
        match url {
            DatabaseUrl::Postgres(_) => crate::pg::ddl::script(table),
            DatabaseUrl::Sqlite(_) => crate::sqlite::ddl::script(table),
        }
    }

    /// Creates the table and the relay's objects (idempotent).
    pub async fn init(&mut self) -> Result<()> {
        each!(self, s => s.init().await)
    }

    /// Tries to become the table's one active relay; `false` while another
    /// instance is.
    pub async fn try_acquire(&mut self) -> Result<bool> {
        each!(self, s => s.try_acquire().await)
    }

    /// Gives up being the active relay (a graceful stop: a standby takes
    /// over at its next try instead of when a lease expires).
    pub async fn release(&mut self) -> Result<()> {
        each!(self, s => s.release().await)
    }

    /// Confirms this instance is still the active one (before each batch);
    /// [`Error::LostLock`](crate::Error::LostLock) when not.
    pub async fn check_active(&mut self) -> Result<()> {
        each!(self, s => s.check_active().await)
    }

    /// Up to `limit` pending rows in publish order: per key, commit order.
    pub async fn fetch(&mut self, limit: usize) -> Result<Vec<PendingRow>> {
        each!(self, s => s.fetch(limit).await)
    }

    /// Records a batch's outcome in one transaction. With a zero
    /// `retention`, published rows are deleted; otherwise stamped and
    /// deleted later by [`purge`](Self::purge).
    pub async fn finish(&mut self, done: &Finished, retention: Duration) -> Result<()> {
        each!(self, s => s.finish(done, retention).await)
    }

    /// Deletes published rows older than `retention`; returns how many.
    pub async fn purge(&mut self, retention: Duration) -> Result<u64> {
        each!(self, s => s.purge(retention).await)
    }

    /// Counts for metrics and status.
    pub async fn stats(&mut self) -> Result<Stats> {
        each!(self, s => s.stats().await)
    }

    /// The most recently failed rows, newest first.
    pub async fn failed_rows(&mut self, limit: usize) -> Result<Vec<FailedRow>> {
        each!(self, s => s.failed_rows(limit).await)
    }

    /// Who is the active relay now (PostgreSQL: the backend pid holding the
    /// lock; SQLite: the lease owner), if any.
    pub async fn active_relay(&mut self) -> Result<Option<String>> {
        each!(self, s => s.active_relay().await)
    }

    /// Waits until rows may have been committed (PostgreSQL: a
    /// notification) or `timeout` passes.
    pub async fn wait_for_rows(&mut self, timeout: Duration) {
        each!(self, s => s.wait_for_rows(timeout).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, txid: &str) -> PendingRow {
        PendingRow {
            id,
            outbox_id: id.to_string(),
            topic: "t".into(),
            key: None,
            payload: None,
            headers: None,
            created_at_ms: 0,
            txid: Some(txid.into()),
        }
    }

    #[test]
    fn a_transaction_is_done_when_none_of_its_rows_is_pending() {
        let rows = [
            row(1, "a"),
            row(2, "a"),
            row(3, "b"),
            row(4, "c"),
            row(5, "d"),
        ];
        let mut f = Finished {
            published: vec![1, 2, 4, 5],
            failed: vec![(3, "bad".into())],
            ..Default::default()
        };
        f.set_done_txids(&rows, false);
        assert_eq!(f.txids, ["a", "b", "c", "d"]);
        f.set_done_txids(&rows, true);
        assert_eq!(
            f.txids,
            ["a", "b", "c"],
            "the last one of a full batch may go on"
        );
        assert_eq!(f.last_txid.as_deref(), Some("d"), "checked on its own");
        f.published = vec![1, 4, 5];
        f.set_done_txids(&rows, false);
        assert_eq!(f.txids, ["b", "c", "d"], "row 2 is still pending");
        assert_eq!(f.last_txid, None);
    }
}
