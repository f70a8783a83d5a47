//! Where handled ids are kept: a table `(id, handled_at)` in PostgreSQL or
//! SQLite, purged after the retention window.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rebound_core::epoch_ms;
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool, SqlitePool};

use crate::error::{db, Result};
use crate::table::{DatabaseUrl, TableName};

/// The handled-id store of a [`DedupeLayer`](super::DedupeLayer).
#[derive(Debug)]
pub struct DedupeStore {
    pool: Pool,
    table: TableName,
    retention: Duration,
    last_purge: Mutex<Instant>,
}

#[derive(Debug)]
enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

impl DedupeStore {
    /// Connects to `url` (`postgres://…` or `sqlite://PATH`) and creates
    /// `table` if missing; ids are kept for `retention`.
    pub async fn connect(url: &str, table: TableName, retention: Duration) -> Result<Self> {
        let name = table.as_str();
        let t = table.quoted("");
        let pool = match DatabaseUrl::parse(url)? {
            DatabaseUrl::Postgres(u) => {
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .connect(&u)
                    .await
                    .map_err(db("connect", name))?;
                for stmt in [
                    format!("CREATE TABLE IF NOT EXISTS {t} (id text PRIMARY KEY, handled_at timestamptz NOT NULL DEFAULT now())"),
                    format!("CREATE INDEX IF NOT EXISTS {} ON {t} (handled_at)", table.quoted("_at")),
                ] {
                    sqlx::query(&stmt).execute(&pool).await.map_err(db("init", name))?;
                }
                Pool::Postgres(pool)
            }
            DatabaseUrl::Sqlite(u) => {
                let pool = crate::sqlite::open_pool(&u, name).await?;
                for stmt in [
                    format!("CREATE TABLE IF NOT EXISTS {t} (id TEXT PRIMARY KEY, handled_at INTEGER NOT NULL)"),
                    format!("CREATE INDEX IF NOT EXISTS {} ON {t} (handled_at)", table.quoted("_at")),
                ] {
                    sqlx::query(&stmt).execute(&pool).await.map_err(db("init", name))?;
                }
                Pool::Sqlite(pool)
            }
        };
        Ok(DedupeStore {
            pool,
            table,
            retention,
            last_purge: Mutex::new(Instant::now()),
        })
    }

    /// Whether `id` was handled within the retention window.
    pub async fn seen(&self, id: &str) -> Result<bool> {
        let t = self.table.quoted("");
        let name = self.table.as_str();
        match &self.pool {
            Pool::Postgres(p) => sqlx::query_scalar(&format!(
                "SELECT EXISTS (SELECT 1 FROM {t} WHERE id = $1 \
                 AND handled_at > now() - make_interval(secs => $2))"
            ))
            .bind(id)
            .bind(self.retention.as_secs_f64())
            .fetch_one(p)
            .await
            .map_err(db("look up an id", name)),
            Pool::Sqlite(p) => sqlx::query_scalar(&format!(
                "SELECT EXISTS (SELECT 1 FROM {t} WHERE id = ?1 AND handled_at > ?2)"
            ))
            .bind(id)
            .bind(epoch_ms() - self.retention.as_millis() as i64)
            .fetch_one(p)
            .await
            .map_err(db("look up an id", name)),
        }
    }

    /// Records `id` as handled now; purges expired ids now and then.
    pub async fn mark(&self, id: &str) -> Result<()> {
        let t = self.table.quoted("");
        let name = self.table.as_str();
        match &self.pool {
            Pool::Postgres(p) => sqlx::query(&format!(
                "INSERT INTO {t} (id) VALUES ($1) ON CONFLICT (id) DO UPDATE SET handled_at = now()"
            ))
            .bind(id)
            .execute(p)
            .await
            .map(drop),
            Pool::Sqlite(p) => sqlx::query(&format!(
                "INSERT INTO {t} (id, handled_at) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET handled_at = excluded.handled_at"
            ))
            .bind(id)
            .bind(epoch_ms())
            .execute(p)
            .await
            .map(drop),
        }
        .map_err(db("record an id", name))?;
        self.purge_now_and_then().await
    }

    /// Deletes ids older than the retention window; returns how many.
    pub async fn purge(&self) -> Result<u64> {
        let t = self.table.quoted("");
        let r = match &self.pool {
            Pool::Postgres(p) => sqlx::query(&format!(
                "DELETE FROM {t} WHERE handled_at < now() - make_interval(secs => $1)"
            ))
            .bind(self.retention.as_secs_f64())
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
            Pool::Sqlite(p) => sqlx::query(&format!("DELETE FROM {t} WHERE handled_at < ?1"))
                .bind(epoch_ms() - self.retention.as_millis() as i64)
                .execute(p)
                .await
                .map(|r| r.rows_affected()),
        };
        r.map_err(db("purge ids", self.table.as_str()))
    }

    async fn purge_now_and_then(&self) -> Result<()> {
        let every = (self.retention / 10).max(Duration::from_secs(1));
        {
            let mut last = self.last_purge.lock().expect("purge lock");
            if last.elapsed() < every {
                return Ok(());
            }
            *last = Instant::now();
        }
        self.purge().await.map(drop)
    }
}

/// Claims `id` in `table` (a dedupe table made by [`DedupeStore::connect`])
/// inside the caller's transaction: `true` the first time. Call it in the
/// transaction that applies the handler's effect, and skip the effect when
/// it returns `false`: the effect and the mark commit together.
pub async fn claim_pg(conn: &mut PgConnection, table: &TableName, id: &str) -> Result<bool> {
    let r = sqlx::query(&format!(
        "INSERT INTO {} (id) VALUES ($1) ON CONFLICT (id) DO NOTHING",
        table.quoted("")
    ))
    .bind(id)
    .execute(conn)
    .await
    .map_err(db("claim an id", table.as_str()))?;
    Ok(r.rows_affected() == 1)
}
