//! The contract on both databases: rows written in transactions reach
//! Kafka exactly as written, with a unique outbox id; rolled-back rows never
//! do; published rows are deleted, or kept for the retention and stamped.

use std::time::Duration;

use rebound_outbox::{enqueue_pg, enqueue_sqlite, Message};
use sqlx::Connection;

use crate::common::{by_outbox_id, pg_pool, pg_rows_left, spawn, wait_until_zero, Bed};

fn message(topic: &str, i: usize) -> Message {
    let mut m = Message::new(topic, format!("payload-{i}")).with_header("n", i.to_string());
    if !i.is_multiple_of(3) {
        m = m.with_key(format!("key-{}", i % 7));
    }
    if i.is_multiple_of(10) {
        m.payload = None;
    }
    m
}

fn check_published(bed: &Bed, n: usize) {
    let recs = bed.read();
    let ids = by_outbox_id(&recs);
    assert_eq!(recs.len(), n, "every row once");
    assert_eq!(ids.len(), n, "unique outbox ids");
    for r in &recs {
        let i: usize = r.header("n").unwrap().parse().unwrap();
        let want = message(&bed.topic, i);
        assert_eq!(r.key, want.key.map(String::into_bytes), "key of {i}");
        assert_eq!(r.value, want.payload, "payload of {i}");
        assert!(i.is_multiple_of(2), "row {i} was rolled back but published");
    }
    // Per key, insert order (one writer: commit order) in one partition.
    let mut last: std::collections::HashMap<Vec<u8>, (i32, usize)> = Default::default();
    let mut sorted: Vec<_> = recs.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    for r in sorted {
        let i: usize = r.header("n").unwrap().parse().unwrap();
        if let Some(k) = &r.key {
            if let Some((p, prev)) = last.insert(k.clone(), (r.partition, i)) {
                assert_eq!(p, r.partition, "one key, one partition");
                assert!(prev < i, "key order: {prev} then {i}");
            }
        }
    }
}

#[tokio::test]
async fn postgres_rows_are_published_as_written_and_deleted() {
    let bed = Bed::pg(3).await;
    let pool = pg_pool(4).await;
    // Even rows commit (in transactions of 10), odd rows roll back.
    for chunk in (0..400).collect::<Vec<_>>().chunks(10) {
        let mut keep = pool.begin().await.unwrap();
        let mut drop = pool.begin().await.unwrap();
        for &i in chunk {
            let tx = if i % 2 == 0 { &mut keep } else { &mut drop };
            enqueue_pg(tx, &bed.table, &message(&bed.topic, i))
                .await
                .unwrap();
        }
        keep.commit().await.unwrap();
        drop.rollback().await.unwrap();
    }
    let relay = spawn(bed.relay_config().with_batch_size(64));
    wait_until_zero("rows left", Duration::from_secs(30), || {
        pg_rows_left(&pool, &bed.table)
    })
    .await;
    relay.stop().await;
    check_published(&bed, 200);
    let commits: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}_commits\"", bed.table))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(commits, 0, "commit entries are removed with their rows");
}

#[tokio::test]
async fn postgres_retention_keeps_published_rows_stamped() {
    let bed = Bed::pg(1).await;
    let pool = pg_pool(2).await;
    let mut tx = pool.begin().await.unwrap();
    for i in (0..20).step_by(2) {
        enqueue_pg(&mut tx, &bed.table, &message(&bed.topic, i))
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
    let relay = spawn(bed.relay_config().with_retention(Duration::from_secs(3600)));
    let t = bed.table.clone();
    wait_until_zero("pending rows", Duration::from_secs(30), || {
        let pool = pool.clone();
        let t = t.clone();
        async move {
            sqlx::query_scalar(&format!(
                "SELECT count(*) FROM \"{t}\" WHERE published_at IS NULL"
            ))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    })
    .await;
    relay.stop().await;
    let kept: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{t}\""))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 10, "kept for the retention period");
    check_published(&bed, 10);
}

#[tokio::test]
async fn sqlite_rows_are_published_as_written_and_deleted() {
    let dir = std::env::temp_dir().join(rebound_testkit::unique_name("outbox-sqlite"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("outbox.db").display());
    let bed = Bed::new(&url, 3).await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    for chunk in (0..400).collect::<Vec<_>>().chunks(10) {
        for keep in [true, false] {
            let mut tx = conn.begin().await.unwrap();
            for &i in chunk.iter().filter(|i| (*i % 2 == 0) == keep) {
                enqueue_sqlite(&mut tx, &bed.table, &message(&bed.topic, i))
                    .await
                    .unwrap();
            }
            if keep {
                tx.commit().await.unwrap();
            } else {
                tx.rollback().await.unwrap();
            }
        }
    }
    let relay = spawn(bed.relay_config().with_batch_size(64));
    let t = bed.table.clone();
    wait_until_zero("rows left", Duration::from_secs(30), || {
        let url = url.clone();
        let t = t.clone();
        async move {
            let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query_scalar(&format!("SELECT count(*) FROM \"{t}\""))
                .fetch_one(&mut c)
                .await
                .unwrap()
        }
    })
    .await;
    relay.stop().await;
    check_published(&bed, 200);
    let _ = std::fs::remove_dir_all(dir);
}
