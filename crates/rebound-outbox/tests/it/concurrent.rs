//! The gap problem and per-key commit order, under load: 8 writers with
//! random commit delays and one transaction held open 5 s write 100,000
//! rows while the relay runs. Every row must be published exactly as
//! written, none skipped, and each key's rows in commit order.
//!
//! The commit order of a key is known independently of the outbox: each
//! transaction increments a per-key counter row (`UPDATE … RETURNING n`),
//! whose row lock is held to commit, so `n` is the key's commit order. Half
//! the time a transaction inserts its outbox rows *before* taking the
//! counter lock, so a transaction that got its ids (and xid) first often
//! commits second: id order and xid order are not commit order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rebound_outbox::{enqueue_pg, Message, TableName};
use sqlx::PgPool;

use crate::common::{by_outbox_id, pg_pool, pg_rows_left, spawn, wait_until_zero, Bed};

pub const ROWS: usize = 100_000;
const WRITERS: usize = 8;
const KEYS: usize = 64;

/// The test's own bookkeeping tables next to the outbox.
pub async fn create_bookkeeping(pool: &PgPool, t: &TableName) {
    for sql in [
        format!("CREATE TABLE \"{t}_counters\" (key text PRIMARY KEY, n bigint NOT NULL)"),
        format!(
            "CREATE TABLE \"{t}_log\" (key text NOT NULL, n bigint NOT NULL, txn text NOT NULL)"
        ),
        format!(
            "INSERT INTO \"{t}_counters\" SELECT 'k' || i, 0 FROM generate_series(0, {KEYS}) i"
        ),
        format!("INSERT INTO \"{t}_counters\" VALUES ('long', 0)"),
    ] {
        sqlx::query(&sql).execute(pool).await.unwrap();
    }
}

/// One writer transaction: 1–3 keys, 1–6 rows each, counters taken before
/// or after the inserts, random pauses, then commit. Returns rows written.
async fn write_txn(
    pool: &PgPool,
    t: &TableName,
    topic: &str,
    txn: &str,
    max_delay_ms: u64,
) -> usize {
    let (keys, plan) = {
        let mut rng = rand::rng();
        let mut keys: Vec<usize> = (0..rng.random_range(1..=3))
            .map(|_| rng.random_range(0..KEYS))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let plan: Vec<(usize, bool)> = keys
            .iter()
            .map(|_| (rng.random_range(1..=6), rng.random_bool(0.5)))
            .collect();
        (keys, plan)
    };
    let mut tx = pool.begin().await.unwrap();
    // Take an xid at once: xid order then differs from commit order too.
    sqlx::query("SELECT pg_current_xact_id()")
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut written = 0;
    for (key, (rows, insert_first)) in keys.iter().zip(plan) {
        let key = format!("k{key}");
        let msg = |i: usize| {
            Message::new(topic, format!("{txn}/{key}/{i}"))
                .with_key(key.clone())
                .with_header("txn", txn)
        };
        if insert_first {
            for i in 0..rows {
                enqueue_pg(&mut tx, t, &msg(i)).await.unwrap();
            }
        }
        let n: i64 = sqlx::query_scalar(&format!(
            "UPDATE \"{t}_counters\" SET n = n + 1 WHERE key = $1 RETURNING n"
        ))
        .bind(&key)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
        sqlx::query(&format!("INSERT INTO \"{t}_log\" VALUES ($1, $2, $3)"))
            .bind(&key)
            .bind(n)
            .bind(txn)
            .execute(&mut *tx)
            .await
            .unwrap();
        if !insert_first {
            for i in 0..rows {
                enqueue_pg(&mut tx, t, &msg(i)).await.unwrap();
            }
        }
        written += rows;
    }
    let delay = rand::rng().random_range(0..=max_delay_ms);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    tx.commit().await.unwrap();
    written
}

/// Runs `WRITERS` writers until `total` rows are written, plus one
/// transaction (key `long`, 50 rows) held open 5 s from the start.
pub async fn write_load(
    pool: &PgPool,
    t: &TableName,
    topic: &str,
    total: usize,
    max_delay_ms: u64,
) -> usize {
    let written = Arc::new(AtomicUsize::new(0));
    let long = {
        let (pool, t, topic) = (pool.clone(), t.clone(), topic.to_string());
        tokio::spawn(async move {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query(&format!(
                "UPDATE \"{t}_counters\" SET n = n + 1 WHERE key = 'long'"
            ))
            .execute(&mut *tx)
            .await
            .unwrap();
            sqlx::query(&format!(
                "INSERT INTO \"{t}_log\" VALUES ('long', 1, 'long')"
            ))
            .execute(&mut *tx)
            .await
            .unwrap();
            for i in 0..50 {
                let m = Message::new(&topic, format!("long/long/{i}"))
                    .with_key("long")
                    .with_header("txn", "long");
                enqueue_pg(&mut tx, &t, &m).await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            tx.commit().await.unwrap();
            50
        })
    };
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (pool, t, topic, written) =
                (pool.clone(), t.clone(), topic.to_string(), written.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while written.load(Ordering::Relaxed) < total {
                    let rows =
                        write_txn(&pool, &t, &topic, &format!("w{w}-{n}"), max_delay_ms).await;
                    written.fetch_add(rows, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    written.load(Ordering::Relaxed) + long.await.unwrap()
}

/// Commit order of each (key, txn) from the log.
pub async fn commit_order(pool: &PgPool, t: &TableName) -> HashMap<(String, String), i64> {
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as(&format!("SELECT key, n, txn FROM \"{t}_log\""))
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter().map(|(k, n, txn)| ((k, txn), n)).collect()
}

/// Asserts every key's records, in partition order, follow commit order
/// (then insert order within a transaction); duplicates (a re-published
/// batch) may repeat earlier positions and are skipped.
pub fn assert_key_order(
    recs: &[rebound_testkit::ReadRecord],
    order: &HashMap<(String, String), i64>,
) {
    let mut sorted: Vec<_> = recs.iter().collect();
    sorted.sort_by_key(|r| (r.partition, r.offset));
    let mut seen = std::collections::HashSet::new();
    let mut last: HashMap<String, (i32, i64, usize)> = HashMap::new();
    for r in sorted {
        let value = String::from_utf8(r.value.clone().unwrap()).unwrap();
        if !seen.insert(value.clone()) {
            continue;
        }
        let mut parts = value.split('/');
        let (txn, key, i) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        assert_eq!(r.key.as_deref(), Some(key.as_bytes()), "key of {value}");
        assert_eq!(r.header("txn"), Some(txn), "headers of {value}");
        let n = order[&(key.to_string(), txn.to_string())];
        let pos = (r.partition, n, i.parse::<usize>().unwrap());
        if let Some(prev) = last.insert(key.to_string(), pos) {
            assert_eq!(prev.0, pos.0, "key {key} in two partitions");
            assert!(
                (prev.1, prev.2) < (pos.1, pos.2),
                "key {key}: commit #{} row {} published before commit #{} row {}",
                prev.1,
                prev.2,
                pos.1,
                pos.2
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_late_commits_and_key_order() {
    let bed = Bed::pg(4).await;
    let pool = pg_pool(16).await;
    create_bookkeeping(&pool, &bed.table).await;
    let relay = spawn(bed.relay_config().with_batch_size(2000));
    let started = Instant::now();
    let written = write_load(&pool, &bed.table, &bed.topic, ROWS, 10).await;
    eprintln!("{written} rows written in {:?}", started.elapsed());
    assert!(written >= ROWS + 50);
    wait_until_zero("rows left", Duration::from_secs(120), || {
        pg_rows_left(&pool, &bed.table)
    })
    .await;
    eprintln!("all published {:?} after the start", started.elapsed());
    relay.stop().await;

    let recs = bed.read();
    let ids = by_outbox_id(&recs);
    assert_eq!(ids.len(), written, "every row published");
    assert_eq!(recs.len(), written, "and only once (no crash here)");
    let values: std::collections::HashSet<_> = recs.iter().map(|r| r.value.clone()).collect();
    assert_eq!(values.len(), written, "each row's payload exactly once");
    let long = recs
        .iter()
        .filter(|r| r.key.as_deref() == Some(&b"long"[..]))
        .count();
    assert_eq!(
        long, 50,
        "the transaction held open 5 s is published, not skipped"
    );
    assert_key_order(&recs, &commit_order(&pool, &bed.table).await);
    let entries: i64 =
        sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}_commits\"", bed.table))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        entries, 0,
        "commit entries removed with their transactions' rows"
    );
    bed.drop_pg().await;
}
