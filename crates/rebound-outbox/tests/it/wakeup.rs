//! PostgreSQL wakes the relay on commit (NOTIFY from the commit-order
//! trigger); polling finds rows that came without a notification (written
//! with triggers off: no commit entry), published after the ordered rows.

use std::time::{Duration, Instant};

use rebound_outbox::{enqueue_pg, Message};
use sqlx::Connection;

use crate::common::{pg_pool, spawn, Bed};

async fn wait_for(bed: &Bed, n: usize, within: Duration) -> Duration {
    let started = Instant::now();
    rebound_testkit::eventually(within, &format!("{n} records published"), || {
        let done = bed.read().len() >= n;
        async move { done }
    })
    .await;
    started.elapsed()
}

#[tokio::test]
async fn a_commit_wakes_the_relay_long_before_its_poll() {
    let bed = Bed::pg(1).await;
    let pool = pg_pool(2).await;
    let relay = spawn(
        bed.relay_config()
            .with_poll_interval(Duration::from_secs(60)),
    );
    // Let it find the table empty and wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tx = pool.begin().await.unwrap();
    enqueue_pg(&mut tx, &bed.table, &Message::new(&bed.topic, "woken"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let took = wait_for(&bed, 1, Duration::from_secs(10)).await;
    eprintln!("published {took:?} after the commit (poll interval 60 s)");
    relay.stop().await;
    bed.drop_pg().await;
}

#[tokio::test]
async fn polling_finds_rows_written_with_triggers_off() {
    let bed = Bed::pg(1).await;
    let mut conn = sqlx::PgConnection::connect(&rebound_testkit::database_url())
        .await
        .unwrap();
    // What a restore or a replication apply does: no trigger, no commit
    // entry, no notification.
    sqlx::query("SET session_replication_role = replica")
        .execute(&mut conn)
        .await
        .unwrap();
    let relay = spawn(
        bed.relay_config()
            .with_poll_interval(Duration::from_millis(300)),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut tx = conn.begin().await.unwrap();
    enqueue_pg(
        &mut tx,
        &bed.table,
        &Message::new(&bed.topic, "orphan").with_key("k"),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    wait_for(&bed, 1, Duration::from_secs(10)).await;
    relay.stop().await;
    assert_eq!(bed.read()[0].value.as_deref(), Some(&b"orphan"[..]));
    bed.drop_pg().await;
}

#[tokio::test]
async fn commit_entries_whose_rows_are_gone_do_not_stall_the_relay() {
    let bed = Bed::pg(1).await;
    let pool = pg_pool(2).await;
    // More transactions than a batch that insert and then delete their own
    // row: each leaves a commit entry with nothing pending behind it.
    for _ in 0..12 {
        let mut tx = pool.begin().await.unwrap();
        enqueue_pg(&mut tx, &bed.table, &Message::new(&bed.topic, "gone"))
            .await
            .unwrap();
        sqlx::query(&format!("DELETE FROM {}", bed.table.as_str()))
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
    let mut tx = pool.begin().await.unwrap();
    enqueue_pg(&mut tx, &bed.table, &Message::new(&bed.topic, "kept"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // The stale entries are purged once a minute; the row behind them must
    // not wait for that.
    let relay = spawn(
        bed.relay_config()
            .with_batch_size(5)
            .with_poll_interval(Duration::from_millis(200)),
    );
    wait_for(&bed, 1, Duration::from_secs(10)).await;
    relay.stop().await;
    let values: Vec<_> = bed.read().into_iter().map(|r| r.value).collect();
    assert_eq!(values, [Some(b"kept".to_vec())]);
    bed.drop_pg().await;
}
