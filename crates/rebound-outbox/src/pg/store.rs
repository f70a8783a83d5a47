//! The relay's PostgreSQL connection.
//!
//! Everything the active relay does goes through one dedicated session: it
//! holds the table's session advisory lock, so when the session breaks the
//! lock is gone and so is this instance's ability to mark rows.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Row};

use super::ddl;
use super::notify::Wakeup;
use crate::error::{db, Error, Result};
use crate::row::PendingRow;
use crate::store::{FailedRow, Finished, Stats};
use crate::table::TableName;

/// A relay's session on a PostgreSQL outbox.
#[derive(Debug)]
pub struct PgStore {
    table: TableName,
    conn: PgConnection,
    wakeup: Wakeup,
    fetch_sql: String,
    orphans_sql: String,
}

const COLUMNS: &str = "o.id, o.outbox_id::text, o.topic, o.key, o.payload, o.headers::text, \
     (extract(epoch FROM o.created_at) * 1000)::bigint, o.txid::text";

const PENDING: &str = "o.published_at IS NULL AND o.failed_at IS NULL";

impl PgStore {
    /// Opens the relay's session (no lock taken yet).
    pub async fn connect(url: &str, table: &TableName) -> Result<Self> {
        let opts: PgConnectOptions = url.parse().map_err(db("parse the URL", table.as_str()))?;
        let conn = opts
            .connect()
            .await
            .map_err(db("connect", table.as_str()))?;
        let t = table.quoted("");
        let c = table.quoted("_commits");
        Ok(PgStore {
            table: table.clone(),
            conn,
            wakeup: Wakeup::new(url, table.as_str()),
            // Per key, seq order is commit order (see `ddl`); within one
            // transaction, id order is insert order. Walks the commit
            // entries in seq order and each one's rows by the pending index,
            // stopping at the limit (a plain join sorted every pending row:
            // 465 ms instead of 6 ms for 5,000 of 200,000 pending rows).
            // Entries whose rows are all gone (deleted by hand, or inserted
            // and deleted in one transaction) are skipped, not counted
            // against the limit: `limit` stale entries would otherwise
            // stall the relay until the next purge. The check is a LATERAL
            // probe of one pending row per entry, walked in seq order: an
            // EXISTS was planned as a semi-join that sorts every pending
            // row when the table has no statistics yet (118 ms instead of
            // 11 ms a batch with 200,000 pending: the relay bench fell from
            // 110,000 to 22,000 rows/s).
            fetch_sql: format!(
                "SELECT {COLUMNS} FROM (SELECT e.txid, e.seq FROM {c} e CROSS JOIN LATERAL \
                 (SELECT 1 FROM {t} o WHERE o.txid = e.txid AND {PENDING} LIMIT 1) p \
                 ORDER BY e.seq LIMIT $1) c \
                 CROSS JOIN LATERAL (SELECT * FROM {t} o WHERE o.txid = c.txid AND {PENDING} \
                 ORDER BY o.id) o ORDER BY c.seq, o.id LIMIT $1"
            ),
            // Rows written while the trigger was disabled have no commit
            // entry: published after the ordered ones, in id order.
            orphans_sql: format!(
                "SELECT {COLUMNS} FROM {t} o WHERE {PENDING} \
                 AND NOT EXISTS (SELECT 1 FROM {c} c WHERE c.txid = o.txid) \
                 ORDER BY o.id LIMIT $1"
            ),
        })
    }

    fn name(&self) -> &str {
        self.table.as_str()
    }

    pub(crate) async fn init(&mut self) -> Result<()> {
        let name = self.table.as_str().to_string();
        let mut tx = self.conn.begin().await.map_err(db("init", &name))?;
        // Concurrent inits would race on CREATE ... IF NOT EXISTS.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('rebound_outbox_init'))")
            .execute(&mut *tx)
            .await
            .map_err(db("init", &name))?;
        for stmt in ddl::statements(&self.table) {
            sqlx::query(&stmt)
                .execute(&mut *tx)
                .await
                .map_err(db("init", &name))?;
        }
        tx.commit().await.map_err(db("init", &name))
    }

    pub(crate) async fn try_acquire(&mut self) -> Result<bool> {
        self.wakeup.listen().await;
        let sql = format!("SELECT pg_try_advisory_lock({})", ddl::relay_lock_sql());
        let name = self.name().to_string();
        sqlx::query_scalar::<_, bool>(&sql)
            .bind(&name)
            .fetch_one(&mut self.conn)
            .await
            .map_err(db("take the relay lock", &name))
    }

    pub(crate) async fn release(&mut self) -> Result<()> {
        let sql = format!("SELECT pg_advisory_unlock({})", ddl::relay_lock_sql());
        let name = self.name().to_string();
        sqlx::query(&sql)
            .bind(&name)
            .execute(&mut self.conn)
            .await
            .map_err(db("release the relay lock", &name))?;
        Ok(())
    }

    pub(crate) async fn check_active(&mut self) -> Result<()> {
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' \
             AND pid = pg_backend_pid() AND granted AND objsubid = 1 \
             AND ((classid::bigint << 32) | objid::bigint) = {})",
            ddl::relay_lock_sql()
        );
        let name = self.name().to_string();
        let held = sqlx::query_scalar::<_, bool>(&sql)
            .bind(&name)
            .fetch_one(&mut self.conn)
            .await
            .map_err(|_| Error::LostLock(name.clone()))?;
        if held {
            Ok(())
        } else {
            Err(Error::LostLock(name))
        }
    }

    pub(crate) async fn fetch(&mut self, limit: usize) -> Result<Vec<PendingRow>> {
        let name = self.name().to_string();
        let mut rows = query_rows(&mut self.conn, &self.fetch_sql, limit as i64)
            .await
            .map_err(db("fetch pending rows", &name))?;
        if rows.len() < limit {
            let more = query_rows(
                &mut self.conn,
                &self.orphans_sql,
                (limit - rows.len()) as i64,
            )
            .await
            .map_err(db("fetch pending rows", &name))?;
            rows.extend(more);
        }
        Ok(rows)
    }

    pub(crate) async fn finish(&mut self, done: &Finished, retention: Duration) -> Result<()> {
        let name = self.name().to_string();
        let t = self.table.quoted("");
        let c = self.table.quoted("_commits");
        let mut tx = self
            .conn
            .begin()
            .await
            .map_err(db("finish a batch", &name))?;
        let published = if retention.is_zero() {
            format!("DELETE FROM {t} WHERE id = ANY($1)")
        } else {
            format!("UPDATE {t} SET published_at = now() WHERE id = ANY($1)")
        };
        sqlx::query(&published)
            .bind(&done.published)
            .execute(&mut *tx)
            .await
            .map_err(db("mark rows published", &name))?;
        if !done.failed.is_empty() {
            let (ids, errors): (Vec<i64>, Vec<String>) = done.failed.iter().cloned().unzip();
            sqlx::query(&format!(
                "UPDATE {t} o SET failed_at = now(), error = f.error \
                 FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE o.id = f.id"
            ))
            .bind(&ids)
            .bind(&errors)
            .execute(&mut *tx)
            .await
            .map_err(db("mark rows failed", &name))?;
        }
        // Only transactions with no pending row left (see
        // `Finished::set_done_txids`); an anti-join here instead cost up to
        // half a second per batch on a large backlog.
        sqlx::query(&format!(
            "DELETE FROM {c} WHERE txid = ANY($1::text[]::xid8[])"
        ))
        .bind(&done.txids)
        .execute(&mut *tx)
        .await
        .map_err(db("remove commit entries", &name))?;
        if let Some(last) = &done.last_txid {
            sqlx::query(&format!(
                "DELETE FROM {c} c WHERE c.txid = $1::text::xid8 \
                 AND NOT EXISTS (SELECT 1 FROM {t} o WHERE o.txid = c.txid AND {PENDING})"
            ))
            .bind(last)
            .execute(&mut *tx)
            .await
            .map_err(db("remove commit entries", &name))?;
        }
        tx.commit().await.map_err(db("finish a batch", &name))
    }

    pub(crate) async fn purge(&mut self, retention: Duration) -> Result<u64> {
        let name = self.name().to_string();
        let t = self.table.quoted("");
        let c = self.table.quoted("_commits");
        let deleted = sqlx::query(&format!(
            "DELETE FROM {t} WHERE published_at < now() - make_interval(secs => $1)"
        ))
        .bind(retention.as_secs_f64())
        .execute(&mut self.conn)
        .await
        .map_err(db("purge published rows", &name))?
        .rows_affected();
        // Commit entries whose rows are gone by other means (deleted by hand).
        sqlx::query(&format!(
            "DELETE FROM {c} c WHERE NOT EXISTS \
             (SELECT 1 FROM {t} o WHERE o.txid = c.txid AND {PENDING})"
        ))
        .execute(&mut self.conn)
        .await
        .map_err(db("purge commit entries", &name))?;
        Ok(deleted)
    }

    pub(crate) async fn stats(&mut self) -> Result<Stats> {
        let name = self.name().to_string();
        let t = self.table.quoted("");
        let row = sqlx::query(&format!(
            "SELECT (SELECT count(*) FROM {t} o WHERE {PENDING}), \
             (SELECT (extract(epoch FROM clock_timestamp() - min(o.created_at)) * 1000)::bigint \
                FROM {t} o WHERE {PENDING}), \
             (SELECT count(*) FROM {t} WHERE failed_at IS NOT NULL), \
             (SELECT count(*) FROM {t} WHERE published_at IS NOT NULL)"
        ))
        .fetch_one(&mut self.conn)
        .await
        .map_err(db("read stats", &name))?;
        Ok(Stats {
            pending: row.get(0),
            oldest_pending: row
                .get::<Option<i64>, _>(1)
                .map(|ms| Duration::from_millis(ms.max(0) as u64)),
            failed: row.get(2),
            published_kept: row.get(3),
        })
    }

    pub(crate) async fn failed_rows(&mut self, limit: usize) -> Result<Vec<FailedRow>> {
        let name = self.name().to_string();
        let rows: Vec<(i64, String, Option<String>)> = sqlx::query_as(&format!(
            "SELECT id, topic, error FROM {} WHERE failed_at IS NOT NULL \
             ORDER BY failed_at DESC, id DESC LIMIT $1",
            self.table.quoted("")
        ))
        .bind(limit as i64)
        .fetch_all(&mut self.conn)
        .await
        .map_err(db("read failed rows", &name))?;
        Ok(rows.into_iter().map(FailedRow::from).collect())
    }

    pub(crate) async fn active_relay(&mut self) -> Result<Option<String>> {
        let sql = format!(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
             AND ((classid::bigint << 32) | objid::bigint) = {} LIMIT 1",
            ddl::relay_lock_sql()
        );
        let name = self.name().to_string();
        let pid: Option<i32> = sqlx::query_scalar(&sql)
            .bind(&name)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(db("look up the active relay", &name))?;
        Ok(pid.map(|p| format!("PostgreSQL backend pid {p}")))
    }

    pub(crate) async fn wait_for_rows(&mut self, timeout: Duration) {
        self.wakeup.wait(timeout).await;
    }
}

async fn query_rows(
    conn: &mut PgConnection,
    sql: &str,
    limit: i64,
) -> Result<Vec<PendingRow>, sqlx::Error> {
    let rows = sqlx::query(sql).bind(limit).fetch_all(conn).await?;
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
                txid: r.try_get(7)?,
            })
        })
        .collect()
}
