//! `rebound outbox status`.

use clap::Args;
use comfy_table::Table;
use rebound_outbox::{DatabaseUrl, Store};

use super::TableArgs;

/// Flags of `rebound outbox status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    db: TableArgs,
    /// How many of the latest failed rows to list.
    #[arg(long, default_value_t = 10)]
    failed: usize,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    json: bool,
}

pub async fn run(a: StatusArgs) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(&a.db.database_url)?;
    let mut store = Store::connect(&url, &a.db.table).await?;
    let stats = store.stats().await?;
    let active = store.active_relay().await?;
    let failed = store.failed_rows(a.failed).await?;
    let oldest = stats.oldest_pending.map(|d| d.as_secs_f64());
    if a.json {
        let failed: Vec<_> = failed
            .iter()
            .map(|f| serde_json::json!({"id": f.id, "topic": f.topic, "error": f.error}))
            .collect();
        let v = serde_json::json!({
            "table": a.db.table.as_str(),
            "pending": stats.pending,
            "oldest_pending_seconds": oldest,
            "failed": stats.failed,
            "published_kept": stats.published_kept,
            "active_relay": active,
            "latest_failed": failed,
        });
        println!("{v}");
        return Ok(());
    }
    let mut t = Table::new();
    t.set_header(vec![
        "table",
        "pending",
        "oldest pending",
        "failed",
        "published (kept)",
        "active relay",
    ]);
    t.add_row(vec![
        a.db.table.to_string(),
        stats.pending.to_string(),
        oldest.map_or("-".into(), |s| format!("{s:.1} s")),
        stats.failed.to_string(),
        stats.published_kept.to_string(),
        active.unwrap_or_else(|| "none".into()),
    ]);
    println!("{t}");
    if !failed.is_empty() {
        let mut t = Table::new();
        t.set_header(vec!["failed row", "topic", "error"]);
        for f in failed {
            t.add_row(vec![f.id.to_string(), f.topic, f.error]);
        }
        println!("{t}");
    }
    Ok(())
}
