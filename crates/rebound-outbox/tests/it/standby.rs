//! Two relays on one table: one publishes, the other waits; when the
//! active one is SIGKILLed the standby takes over within seconds, and the
//! two never publish at the same time (their logged batch windows never
//! overlap, and none of the standby's starts before the kill).

use std::time::{Duration, Instant};

use rebound_core::epoch_ms;

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
}
