//! The demo's outbox stage, on SQLite (no database server): orders written
//! to the outbox table in transactions (one rolled back, one row with
//! malformed headers), relayed to a topic, read back: every committed row
//! once, per key in commit order, the rolled-back rows never, the bad row
//! failed with its error.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use comfy_table::{presets::UTF8_FULL, Table};
use indicatif::ProgressBar;
use rebound_outbox::{enqueue_sqlite, Message, Relay, RelayConfig, Store, TableName};
use rebound_producer::admin::create_topic;
use rebound_producer::ProducerConfig;
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

const KEYS: usize = 20;

/// Runs the stage; prints its own table. Fails if a row was lost,
/// duplicated, reordered within its key, or a rolled-back row was published.
pub async fn run(brokers: &str, topic_prefix: &str, rows: usize) -> anyhow::Result<()> {
    let topic = format!("{topic_prefix}.outbox");
    create_topic(brokers, &topic, 4).await?;
    let dir = std::env::temp_dir().join(format!("rebound-demo-outbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let url = format!("sqlite://{}", dir.join("outbox.db").display());
    let table = TableName::default();
    rebound_outbox::init(&url, &table).await?;
    let config = RelayConfig::new(&url, ProducerConfig::new(brokers))?
        .with_poll_interval(Duration::from_millis(50));
    let metrics = config.metrics().clone();
    let stop = CancellationToken::new();
    let relay = tokio::spawn(Relay::new(config)?.run(stop.clone()));

    let started = Instant::now();
    let bar = ProgressBar::new(rows as u64);
    bar.set_message("outbox: writing orders");
    let mut conn = sqlx::SqliteConnection::connect(&url).await?;
    for first in (0..rows).step_by(10) {
        let mut tx = conn.begin().await?;
        for i in first..(first + 10).min(rows) {
            let m = Message::new(&topic, i.to_string()).with_key(format!("order-{}", i % KEYS));
            enqueue_sqlite(&mut tx, &table, &m).await?;
        }
        tx.commit().await?;
        bar.inc((first + 10).min(rows) as u64 - first as u64);
    }
    let mut tx = conn.begin().await?;
    enqueue_sqlite(&mut tx, &table, &Message::new(&topic, "rolled-back")).await?;
    tx.rollback().await?;
    sqlx::query(
        "INSERT INTO rebound_outbox (topic, key, payload, headers) VALUES (?, 'bad', 'x', '[1]')",
    )
    .bind(&topic)
    .execute(&mut conn)
    .await?;
    bar.finish_with_message(format!(
        "outbox: wrote {rows} rows in transactions of 10 (+1 rolled back, +1 bad)"
    ));

    let deadline = Instant::now() + Duration::from_secs(60);
    while metrics.published.get() < rows as u64 || metrics.failed("headers") < 1 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the outbox relay did not finish within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    stop.cancel();
    relay.await??;
    let mut store = Store::connect(&rebound_outbox::DatabaseUrl::parse(&url)?, &table).await?;
    let failed = store.failed_rows(1).await?;

    let (b, t) = (brokers.to_string(), topic.clone());
    let read = tokio::task::spawn_blocking(move || {
        let reader =
            crate::cmd::dlq::read::TopicReader::open(&b, &[], &t, Duration::from_secs(30))?;
        let mut per_key: HashMap<Vec<u8>, Vec<usize>> = HashMap::new();
        reader.read_all(|r| {
            let v = r
                .value_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(usize::MAX);
            per_key
                .entry(r.key.unwrap_or_default())
                .or_default()
                .push(v);
        })?;
        anyhow::Ok(per_key)
    })
    .await??;
    let published: usize = read.values().map(Vec::len).sum();
    let out_of_order = read
        .values()
        .filter(|v| v.windows(2).any(|w| w[0] >= w[1]))
        .count();

    let mut t = Table::new();
    t.load_preset(UTF8_FULL).set_header(vec![
        "outbox (SQLite)",
        "rows committed",
        "published",
        "keys out of order",
        "failed rows",
        "time",
    ]);
    t.add_row(vec![
        "rebound_outbox".to_string(),
        rows.to_string(),
        published.to_string(),
        out_of_order.to_string(),
        failed
            .first()
            .map_or("0".into(), |f| format!("1 ({})", f.error)),
        format!("{:.2}s", elapsed.as_secs_f64()),
    ]);
    println!("\n{t}");
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(
        published == rows && out_of_order == 0 && failed.len() == 1,
        "the outbox stage lost, duplicated or reordered rows (see the table)"
    );
    println!("Every committed outbox row published once, per key in commit order; the rolled-back row never; the bad row failed with its error.");
    Ok(())
}
