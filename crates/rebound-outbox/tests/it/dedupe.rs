//! The dedupe layer turns the relay's duplicates into one handling each,
//! and its store keeps ids for the retention window (both databases).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rebound_core::Record;
use rebound_outbox::dedupe::{claim_pg, DedupeLayer, DedupeStore};
use rebound_testkit::{database_url, unique_name, FAST_SESSION_TIMEOUT_MS};
use rebound_worker::{handler_fn, Handler, Layer, Ordering as Lanes, Worker, WorkerConfig};

use crate::common::{pg_pool, pg_rows_left, spawn, table_name, wait_until_zero, Bed};

const ROWS: usize = 500;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_duplicates_are_handled_once() {
    let bed = Bed::pg(3).await;
    let pool = pg_pool(4).await;
    let t = &bed.table;
    // Every row twice with the same outbox id: what a relay killed after
    // publishing and before marking its batch leaves behind.
    sqlx::query(&format!(
        "INSERT INTO \"{t}\" (topic, key, payload) \
         SELECT $1, 'k' || (i % 17), convert_to('v' || i, 'UTF8') FROM generate_series(1, {ROWS}) i"
    ))
    .bind(&bed.topic)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO \"{t}\" (topic, key, payload, outbox_id) \
         SELECT topic, key, payload, outbox_id FROM \"{t}\""
    ))
    .execute(&pool)
    .await
    .unwrap();
    let relay = spawn(bed.relay_config());
    wait_until_zero("rows left", Duration::from_secs(30), || {
        pg_rows_left(&pool, t)
    })
    .await;
    relay.stop().await;
    assert_eq!(
        bed.read().len(),
        2 * ROWS,
        "the topic holds every duplicate"
    );

    let store = DedupeStore::connect(
        &database_url(),
        table_name("inbox"),
        Duration::from_secs(3600),
    )
    .await
    .unwrap();
    let handled: Arc<Mutex<HashMap<String, usize>>> = Default::default();
    let inner = {
        let handled = handled.clone();
        handler_fn(move |rec: &Record| {
            let id = rec.header_str("rebound.outbox.id").unwrap().to_string();
            *handled.lock().unwrap().entry(id).or_default() += 1;
            async { Ok(()) }
        })
    };
    let deduped = Arc::new(DedupeLayer::new(Arc::new(store)).layer(inner));
    let seen = Arc::new(AtomicUsize::new(0));
    let outer = {
        let seen = seen.clone();
        handler_fn(move |rec: &Record| {
            let (deduped, seen, rec) = (deduped.clone(), seen.clone(), rec.clone());
            async move {
                let r = deduped.handle(&rec).await;
                seen.fetch_add(1, Ordering::SeqCst);
                r
            }
        })
    };
    let config = WorkerConfig::builder()
        .with_brokers(bed.bootstrap())
        .with_group(unique_name("dedupe"))
        .with_topic(&bed.topic)
        .with_ordering(Lanes::Key)
        .with_session_timeout(Duration::from_millis(FAST_SESSION_TIMEOUT_MS as u64))
        .build()
        .unwrap();
    let worker = Worker::start(config, outer).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.load(Ordering::SeqCst) < 2 * ROWS {
        assert!(
            Instant::now() < deadline,
            "worker saw {} records",
            seen.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.stop().await.unwrap();
    {
        let handled = handled.lock().unwrap();
        assert_eq!(handled.len(), ROWS, "every id handled");
        assert!(handled.values().all(|n| *n == 1), "each id handled once");
    }
    bed.drop_pg().await;
}

async fn store_keeps_ids_for_the_window(url: &str) {
    let store = DedupeStore::connect(url, table_name("inbox"), Duration::from_millis(1500))
        .await
        .unwrap();
    assert!(!store.seen("a").await.unwrap());
    store.mark("a").await.unwrap();
    store.mark("a").await.unwrap();
    assert!(store.seen("a").await.unwrap());
    assert!(!store.seen("b").await.unwrap());
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert!(!store.seen("a").await.unwrap(), "expired after the window");
    assert_eq!(store.purge().await.unwrap(), 1);
}

#[tokio::test]
async fn dedupe_store_contract_postgres() {
    store_keeps_ids_for_the_window(&database_url()).await;
}

#[tokio::test]
async fn dedupe_store_contract_sqlite() {
    let dir = std::env::temp_dir().join(unique_name("inbox-sqlite"));
    std::fs::create_dir_all(&dir).unwrap();
    store_keeps_ids_for_the_window(&format!("sqlite://{}", dir.join("inbox.db").display())).await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn claim_in_the_handlers_transaction_commits_with_the_effect() {
    let table = table_name("inbox");
    let _store = DedupeStore::connect(&database_url(), table.clone(), Duration::from_secs(60))
        .await
        .unwrap();
    let pool = pg_pool(2).await;
    let mut tx = pool.begin().await.unwrap();
    assert!(claim_pg(&mut tx, &table, "x").await.unwrap());
    tx.rollback().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    assert!(
        claim_pg(&mut tx, &table, "x").await.unwrap(),
        "a rolled-back claim is no claim"
    );
    tx.commit().await.unwrap();
    let mut tx = pool.begin().await.unwrap();
    assert!(
        !claim_pg(&mut tx, &table, "x").await.unwrap(),
        "claimed once"
    );
}
