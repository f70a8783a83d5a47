//! Two relays on one table: one publishes, the other waits; when the
//! active one is SIGKILLed the standby takes over within seconds, and the
//! two never publish at the same time (their logged batch windows never
//! overlap, and none of the standby's starts before the kill).

use std::time::{Duration, Instant};

use rebound_core::epoch_ms;

use std::sync::{Arc, Mutex};

use rebound_outbox::{enqueue_sqlite, BatchReport, Message, Relay};
use sqlx::Connection;
use tokio_util::sync::CancellationToken;

use crate::common::{by_outbox_id, pg_pool, pg_rows_left, wait_until_zero, Bed};
use crate::concurrent::{create_bookkeeping, write_load};
use crate::kill::{temp_log, windows, ChildRelay};

async fn wait_for_batch_from(log: &std::path::Path, pid: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !windows(log).iter().any(|w| w.pid == pid) {
        assert!(Instant::now() < deadline, "relay {pid} never published");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn standby_takes_over_and_never_both_publish() {
    let bed = Bed::pg(2).await;
    let pool = pg_pool(16).await;
    create_bookkeeping(&pool, &bed.table).await;
    let log = temp_log("outbox-standby.log");
    let load = {
        let (pool, t, topic) = (pool.clone(), bed.table.clone(), bed.topic.clone());
        tokio::spawn(async move { write_load(&pool, &t, &topic, 30_000, 10).await })
    };
    let a = ChildRelay::spawn(&bed, &log, 200);
    let a_pid = a.pid();
    wait_for_batch_from(&log, a_pid, Duration::from_secs(30)).await;
    let b = ChildRelay::spawn(&bed, &log, 200);
    let b_pid = b.pid();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        windows(&log).iter().all(|w| w.pid == a_pid),
        "the standby published while the active relay was alive"
    );
    let killed_at = epoch_ms();
    a.kill();
    wait_for_batch_from(&log, b_pid, Duration::from_secs(10)).await;
    let written = load.await.unwrap();
    wait_until_zero("rows left", Duration::from_secs(120), || {
        pg_rows_left(&pool, &bed.table)
    })
    .await;
    b.kill();

    let ws = windows(&log);
    let first_b = ws
        .iter()
        .filter(|w| w.pid == b_pid)
        .map(|w| w.start)
        .min()
        .unwrap();
    let takeover = first_b - killed_at;
    eprintln!("standby's first batch {takeover} ms after the kill");
    assert!(takeover < 5_000, "takeover took {takeover} ms");
    for w in ws.iter().filter(|w| w.pid == b_pid) {
        assert!(
            w.start >= killed_at,
            "standby batch {w:?} began before the kill"
        );
    }
    for x in ws.iter().filter(|w| w.pid == a_pid) {
        for y in ws.iter().filter(|w| w.pid == b_pid) {
            assert!(
                x.end < y.start || y.end < x.start,
                "overlap: {x:?} and {y:?}"
            );
        }
    }
    let recs = bed.read();
    assert_eq!(
        by_outbox_id(&recs).len(),
        written,
        "no row lost across the takeover"
    );
    let _ = std::fs::remove_file(log);
    bed.drop_pg().await;
}

/// SQLite: the lease row. The active relay's task is aborted (no graceful
/// release: what a crash leaves); the standby takes over once the lease
/// (5 s) expires, never while it is live.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_standby_takes_over_after_the_lease() {
    let dir = std::env::temp_dir().join(rebound_testkit::unique_name("outbox-lease"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("outbox.db").display());
    let bed = Bed::new(&url, 1).await;
    let log: Arc<Mutex<Vec<(char, BatchReport)>>> = Default::default();
    let start = |name: char| {
        let log = log.clone();
        let config = bed
            .relay_config()
            .with_batch_observer(Arc::new(move |b: &BatchReport| {
                log.lock().unwrap().push((name, b.clone()));
            }));
        tokio::spawn(Relay::new(config).unwrap().run(CancellationToken::new()))
    };
    let writer = {
        let (url, table, topic) = (url.clone(), bed.table.clone(), bed.topic.clone());
        tokio::spawn(async move {
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            for i in 0..200 {
                let mut tx = conn.begin().await.unwrap();
                for j in 0..10 {
                    let m = Message::new(&topic, format!("{i}-{j}")).with_key(format!("k{j}"));
                    enqueue_sqlite(&mut tx, &table, &m).await.unwrap();
                }
                tx.commit().await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            2000
        })
    };
    let a = start('a');
    while log.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let b = start('b');
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.abort();
    let killed_at = epoch_ms();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !log.lock().unwrap().iter().any(|(n, _)| *n == 'b') {
        assert!(Instant::now() < deadline, "the standby never took over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let written = writer.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while bed.read().len() < written {
        assert!(Instant::now() < deadline, "rows missing");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.abort();
    let log = log.lock().unwrap();
    let first_b = log
        .iter()
        .filter(|(n, _)| *n == 'b')
        .map(|(_, w)| w.started_ms)
        .min()
        .unwrap();
    eprintln!(
        "standby's first batch {} ms after the abort",
        first_b - killed_at
    );
    assert!(first_b - killed_at < 8_000);
    let last_a = log
        .iter()
        .filter(|(n, _)| *n == 'a')
        .map(|(_, w)| w.finished_ms)
        .max()
        .unwrap();
    assert!(last_a < first_b, "both published at once");
    assert_eq!(by_outbox_id(&bed.read()).len(), written);
    let _ = std::fs::remove_dir_all(dir);
}

/// A relay stopped gracefully releases the lease: the standby publishes
/// within a second, not when the lease would have expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_graceful_stop_hands_over_at_once() {
    let dir = std::env::temp_dir().join(rebound_testkit::unique_name("outbox-handover"));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("outbox.db").display());
    let bed = Bed::new(&url, 1).await;
    let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let a = crate::common::spawn(bed.relay_config());
    write_one(&mut conn, &bed, 1).await;
    while bed.read().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let b = crate::common::spawn(bed.relay_config());
    tokio::time::sleep(Duration::from_millis(500)).await;
    a.stop().await;
    let stopped = Instant::now();
    write_one(&mut conn, &bed, 2).await;
    while bed.read().len() < 2 {
        assert!(
            stopped.elapsed() < Duration::from_secs(3),
            "no handover within 3 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("handover after {:?}", stopped.elapsed());
    b.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

async fn write_one(conn: &mut sqlx::SqliteConnection, bed: &Bed, n: usize) {
    let mut tx = conn.begin().await.unwrap();
    let m = Message::new(&bed.topic, n.to_string());
    enqueue_sqlite(&mut tx, &bed.table, &m).await.unwrap();
    tx.commit().await.unwrap();
}
