//! The relay's SQLite connection pool and its lease.
//!
//! One active relay per table: a lease row (owner, expiry) taken when free
//! or expired and renewed before each batch. A relay that stops renewing
//! (killed) is replaced once its lease expires.

use std::str::FromStr;
use std::time::Duration;

use rebound_core::epoch_ms;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::Row;

use super::ddl;
use crate::error::{db, Error, Result};
use crate::row::PendingRow;
use crate::store::{FailedRow, Finished, Stats};
use crate::table::TableName;

/// Opens (and creates) the database file at `url` for `table`'s users:
/// WAL journal, a 10 s busy timeout, two connections. The relay and the
/// dedupe store open SQLite this one way.
pub(crate) async fn open_pool(url: &str, table: &str) -> Result<SqlitePool> {
    let opts = SqliteConnectOptions::from_str(url)
        .map_err(db("parse the URL", table))?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(2)
        .connect_with(opts)
        .await
        .map_err(db("connect", table))
}

/// How long a lease lasts without renewal.
pub const LEASE: Duration = Duration::from_secs(5);

/// A relay's pool on a SQLite outbox.
#[derive(Debug)]
pub struct SqliteStore {
    table: TableName,
    pool: SqlitePool,
    owner: String,
}

impl SqliteStore {
    /// Opens (and creates) the database file.
    pub async fn connect(url: &str, table: &TableName) -> Result<Self> {
        let pool = open_pool(url, table.as_str()).await?;
        Ok(SqliteStore {
            table: table.clone(),
            pool,
            owner: format!("{}-{}", std::process::id(), epoch_ms()),
        })
    }

    /// The pool, for writers sharing this process.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) async fn init(&mut self) -> Result<()> {
        let name = self.table.as_str();
        for stmt in ddl::statements(&self.table) {
            sqlx::query(&stmt)
                .execute(&self.pool)
                .await
                .map_err(db("init", name))?;
        }
        Ok(())
    }

    /// Takes or renews the lease; `false` while another owner's is live.
    async fn lease(&mut self) -> Result<bool> {
        let now = epoch_ms();
        let sql = format!(
            "INSERT INTO {l} (name, owner, expires_at) VALUES ('relay', ?1, ?2) \
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE {l}.owner = excluded.owner OR {l}.expires_at < ?3",
            l = self.table.quoted("_lease")
        );
        let r = sqlx::query(&sql)
            .bind(&self.owner)
            .bind(now + LEASE.as_millis() as i64)
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(db("take the relay lease", self.table.as_str()))?;
        Ok(r.rows_affected() == 1)
    }

    pub(crate) async fn try_acquire(&mut self) -> Result<bool> {
        self.lease().await
    }

    pub(crate) async fn release(&mut self) -> Result<()> {
        let sql = format!(
            "DELETE FROM {} WHERE name = 'relay' AND owner = ?",
            self.table.quoted("_lease")
        );
        sqlx::query(&sql)
            .bind(&self.owner)
            .execute(&self.pool)
            .await
            .map_err(db("release the relay lease", self.table.as_str()))?;
        Ok(())
    }

    pub(crate) async fn check_active(&mut self) -> Result<()> {
        match self.lease().await {
            Ok(true) => Ok(()),
            _ => Err(Error::LostLock(self.table.as_str().to_string())),
        }
    }

    pub(crate) async fn fetch(&mut self, limit: usize) -> Result<Vec<PendingRow>> {
        let sql = format!(
            "SELECT id, outbox_id, topic, key, payload, headers, created_at FROM {} \
             WHERE published_at IS NULL AND failed_at IS NULL ORDER BY id LIMIT ?",
            self.table.quoted("")
        );
        let rows = sqlx::query(&sql)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(db("fetch pending rows", self.table.as_str()))?;
        rows.iter()
            .map(|r| {
                Ok(PendingRow {
                    id: r.try_get(0)?,
                    outbox_id: r.try_get(1)?,
                    topic: r.try_get(2)?,
                    key: r.try_get(3)?,
                    payload: r.try_get(4)?,
                    headers: r.try_get(5)?,
                    created_at_ms: r.try_get(6)?,
                    txid: None,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(db("read pending rows", self.table.as_str()))
    }

    pub(crate) async fn finish(&mut self, done: &Finished, retention: Duration) -> Result<()> {
        let name = self.table.as_str();
        let t = self.table.quoted("");
        let ids = serde_json::to_string(&done.published).expect("ids encode");
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(db("finish a batch", name))?;
        let published = if retention.is_zero() {
            format!("DELETE FROM {t} WHERE id IN (SELECT value FROM json_each(?1))")
        } else {
            format!(
                "UPDATE {t} SET published_at = ?2 WHERE id IN (SELECT value FROM json_each(?1))"
            )
        };
        sqlx::query(&published)
            .bind(&ids)
            .bind(epoch_ms())
            .execute(&mut *tx)
            .await
            .map_err(db("mark rows published", name))?;
        for (id, error) in &done.failed {
            sqlx::query(&format!(
                "UPDATE {t} SET failed_at = ?1, error = ?2 WHERE id = ?3"
            ))
            .bind(epoch_ms())
            .bind(error)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db("mark rows failed", name))?;
        }
        tx.commit().await.map_err(db("finish a batch", name))
    }

    pub(crate) async fn purge(&mut self, retention: Duration) -> Result<u64> {
        let sql = format!(
            "DELETE FROM {} WHERE published_at < ?",
            self.table.quoted("")
        );
        let r = sqlx::query(&sql)
            .bind(epoch_ms() - retention.as_millis() as i64)
            .execute(&self.pool)
            .await
            .map_err(db("purge published rows", self.table.as_str()))?;
        Ok(r.rows_affected())
    }

    pub(crate) async fn stats(&mut self) -> Result<Stats> {
        let t = self.table.quoted("");
        let pending = "published_at IS NULL AND failed_at IS NULL";
        let row = sqlx::query(&format!(
            "SELECT (SELECT count(*) FROM {t} WHERE {pending}), \
             (SELECT min(created_at) FROM {t} WHERE {pending}), \
             (SELECT count(*) FROM {t} WHERE failed_at IS NOT NULL), \
             (SELECT count(*) FROM {t} WHERE published_at IS NOT NULL)"
        ))
        .fetch_one(&self.pool)
        .await
        .map_err(db("read stats", self.table.as_str()))?;
        let oldest: Option<i64> = row.get(1);
        Ok(Stats {
            pending: row.get(0),
            oldest_pending: oldest.map(|ms| Duration::from_millis((epoch_ms() - ms).max(0) as u64)),
            failed: row.get(2),
            published_kept: row.get(3),
        })
    }

    pub(crate) async fn failed_rows(&mut self, limit: usize) -> Result<Vec<FailedRow>> {
        let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(&format!(
            "SELECT id, topic, error FROM {} WHERE failed_at IS NOT NULL \
             ORDER BY failed_at DESC, id DESC LIMIT ?",
            self.table.quoted("")
        ))
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(db("read failed rows", self.table.as_str()))?;
        Ok(rows.into_iter().map(FailedRow::from).collect())
    }

    pub(crate) async fn active_relay(&mut self) -> Result<Option<String>> {
        let owner: Option<String> = sqlx::query_scalar(&format!(
            "SELECT owner FROM {} WHERE name = 'relay' AND expires_at >= ?",
            self.table.quoted("_lease")
        ))
        .bind(epoch_ms())
        .fetch_optional(&self.pool)
        .await
        .map_err(db("look up the active relay", self.table.as_str()))?;
        Ok(owner.map(|o| format!("lease owner {o}")))
    }

    /// SQLite has no notifications: polls, at least every 50 ms.
    pub(crate) async fn wait_for_rows(&mut self, timeout: Duration) {
        tokio::time::sleep(timeout.min(Duration::from_millis(50))).await;
    }
}
