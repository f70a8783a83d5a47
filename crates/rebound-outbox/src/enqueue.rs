//! Writing to the outbox from Rust, inside the caller's transaction: the
//! row commits (or rolls back) with the caller's own changes. Any other
//! language writes the same row with plain SQL:
//! `INSERT INTO rebound_outbox (topic, key, payload, headers) VALUES ($1, $2, $3, $4)`.

use sqlx::{PgConnection, SqliteConnection};

use crate::error::{db, Result};
use crate::table::TableName;

/// One record to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Destination topic.
    pub topic: String,
    /// Key: records with the same key are published in commit order to
    /// the same partition.
    pub key: Option<String>,
    /// Value; `None` publishes a tombstone.
    pub payload: Option<Vec<u8>>,
    /// Headers (UTF-8 name to UTF-8 value).
    pub headers: Vec<(String, String)>,
}

impl Message {
    /// A message for `topic` with a payload, no key, no headers.
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>) -> Self {
        Message {
            topic: topic.into(),
            payload: Some(payload.into()),
            ..Default::default()
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    fn headers_json(&self) -> Option<serde_json::Value> {
        if self.headers.is_empty() {
            return None;
        }
        let map = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        Some(serde_json::Value::Object(map))
    }
}

/// Inserts `msg` into `table` on `conn`, typically `&mut *tx` of the
/// caller's open PostgreSQL transaction.
///
/// ```no_run
/// # async fn f(pool: sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
/// use rebound_outbox::{enqueue_pg, Message, TableName};
/// let mut tx = pool.begin().await?;
/// sqlx::query("UPDATE accounts SET balance = balance - 10 WHERE id = 1")
///     .execute(&mut *tx).await?;
/// enqueue_pg(&mut tx, &TableName::default(),
///     &Message::new("payments", "{\"account\":1,\"amount\":-10}").with_key("1")).await?;
/// tx.commit().await?; // the row is published only if this commits
/// # Ok(()) }
/// ```
pub async fn enqueue_pg(conn: &mut PgConnection, table: &TableName, msg: &Message) -> Result<()> {
    let sql = format!(
        "INSERT INTO {} (topic, key, payload, headers) VALUES ($1, $2, $3, $4)",
        table.quoted("")
    );
    sqlx::query(&sql)
        .bind(&msg.topic)
        .bind(&msg.key)
        .bind(&msg.payload)
        .bind(msg.headers_json())
        .execute(conn)
        .await
        .map_err(db("enqueue", table.as_str()))?;
    Ok(())
}

/// [`enqueue_pg`] for SQLite (`headers` is JSON text there).
pub async fn enqueue_sqlite(
    conn: &mut SqliteConnection,
    table: &TableName,
    msg: &Message,
) -> Result<()> {
    let sql = format!(
        "INSERT INTO {} (topic, key, payload, headers) VALUES (?, ?, ?, ?)",
        table.quoted("")
    );
    sqlx::query(&sql)
        .bind(&msg.topic)
        .bind(&msg.key)
        .bind(&msg.payload)
        .bind(msg.headers_json().map(|v| v.to_string()))
        .execute(conn)
        .await
        .map_err(db("enqueue", table.as_str()))?;
    Ok(())
}
