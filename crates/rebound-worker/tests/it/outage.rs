//! A broker outage longer than the session timeout: the broker process is
//! frozen (SIGSTOP) while the worker is mid-stream, then resumed (SIGCONT).
//! The worker loses its partitions (its session expired) while none of its
//! commits could get through; when they come back it must not run again
//! what it finished meanwhile. Nothing is lost, and records run twice at
//! most `max_in_flight` times (those in flight when the partitions went).

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{index_of, wait_until, Bed, WorkerBed};
use rebound_testkit::unique_name;
use rebound_worker::{handler_fn, Ordering, Record, Worker};

const RECORDS: usize = 10_000;
const MAX_IN_FLIGHT: usize = 20;

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_session_loses_nothing_and_repeats_little() {
    let bed = Bed::new("t", 4).await;
    let Some(pid) = bed.brokers.pid() else {
        eprintln!("skipped: needs a broker process it can stop");
        return;
    };
    bed.produce(RECORDS, |i| Some(format!("k{}", i % 100)));
    let counts: Arc<Mutex<HashMap<usize, usize>>> = Default::default();
    let c = counts.clone();
    let handler = handler_fn(move |rec: &Record| {
        let (c, i) = (c.clone(), index_of(rec));
        async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            *c.lock().unwrap().entry(i).or_default() += 1;
            Ok(())
        }
    });
    let group = unique_name("outage");
    let cfg = bed
        .config(&group)
        .with_ordering(Ordering::Key)
        .with_max_in_flight(MAX_IN_FLIGHT)
        .build()
        .unwrap();
    let w = Worker::start(cfg, handler).await.unwrap();
    let handled = |n: usize| {
        let counts = counts.clone();
        move || {
            let d = counts.lock().unwrap().len();
            async move { d >= n }
        }
    };
    wait_until(
        Duration::from_secs(60),
        "30% handled",
        handled(RECORDS * 3 / 10),
    )
    .await;

    // Frozen for 2.5 session timeouts: the session expires.
    let session = Duration::from_millis(rebound_testkit::FAST_SESSION_TIMEOUT_MS as u64);
    signal(pid, "-STOP");
    let during = counts.lock().unwrap().len();
    tokio::time::sleep(session * 5 / 2).await;
    let frozen_done = counts.lock().unwrap().len() - during;
    signal(pid, "-CONT");

    wait_until(Duration::from_secs(120), "every record", handled(RECORDS)).await;
    // Back in the group, the member commits what it finished: no stall.
    let covered = || {
        let committed: i64 = bed.committed_total(&group);
        async move { committed == RECORDS as i64 }
    };
    wait_until(
        Duration::from_secs(120),
        "commits covering the topic",
        covered,
    )
    .await;
    let summary = w.stop().await.unwrap();
    let counts = counts.lock().unwrap().clone();
    let missing: Vec<usize> = (0..RECORDS)
        .filter(|i| !counts.contains_key(i))
        .take(10)
        .collect();
    assert!(missing.is_empty(), "lost records, e.g. {missing:?}");
    let repeats: usize = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "{frozen_done} records finished while the broker was frozen; {repeats} ran twice; \
         {} skipped as already finished",
        summary.stats.skipped_done
    );
    assert!(
        repeats <= MAX_IN_FLIGHT,
        "{repeats} records ran twice (at most {MAX_IN_FLIGHT} may)"
    );
    let committed: i64 = bed.committed_total(&group);
    assert_eq!(
        committed, RECORDS as i64,
        "the final commits cover the topic"
    );
}
