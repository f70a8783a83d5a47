//! The SQLite outbox table: the same columns as PostgreSQL's, in SQLite's
//! types (`headers` is JSON text, times are epoch milliseconds, the outbox
//! id is 32 hex digits).

use crate::table::TableName;

/// The statements `init` runs, in order (each idempotent).
pub fn statements(t: &TableName) -> Vec<String> {
    let table = t.quoted("");
    vec![
        format!(
            "CREATE TABLE IF NOT EXISTS {table} (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    topic        TEXT NOT NULL,
    key          TEXT NULL,
    payload      BLOB NULL,
    headers      TEXT NULL,
    outbox_id    TEXT NOT NULL DEFAULT (lower(hex(randomblob(16)))),
    created_at   INTEGER NOT NULL DEFAULT (CAST(unixepoch('subsec') * 1000 AS INTEGER)),
    published_at INTEGER NULL,
    failed_at    INTEGER NULL,
    error        TEXT NULL
)"
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {table} (id) \
             WHERE published_at IS NULL AND failed_at IS NULL",
            t.quoted("_pending")
        ),
        format!(
            "CREATE INDEX IF NOT EXISTS {} ON {table} (published_at) \
             WHERE published_at IS NOT NULL",
            t.quoted("_published")
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {} (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
)",
            t.quoted("_lease")
        ),
    ]
}

/// The DDL as one printable script.
pub fn script(t: &TableName) -> String {
    statements(t).iter().map(|s| format!("{s};\n\n")).collect()
}
