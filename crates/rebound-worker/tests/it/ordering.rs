//! Ordering modes on the real broker: what may run concurrently, and in
//! which order.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{index_of, wait_until, Bed, WorkerBed};
use rand::Rng;
use rebound_testkit::unique_name;
use rebound_worker::{handler_fn, Ordering, Record, Worker};

/// Observes concurrency: how many records are running, per lane and overall.
#[derive(Default)]
struct Observer {
    running: AtomicUsize,
    max_running: AtomicUsize,
    per_lane: Mutex<HashMap<String, usize>>,
    lane_violations: AtomicUsize,
    max_lanes_busy: AtomicUsize,
    seen: Mutex<HashMap<String, Vec<i64>>>,
    done: AtomicUsize,
}

impl Observer {
    fn enter(&self, lane: &str) {
        let now = self.running.fetch_add(1, AtomicOrdering::SeqCst) + 1;
        self.max_running.fetch_max(now, AtomicOrdering::SeqCst);
        let mut lanes = self.per_lane.lock().unwrap();
        let c = lanes.entry(lane.to_string()).or_default();
        *c += 1;
        if *c > 1 {
            self.lane_violations.fetch_add(1, AtomicOrdering::SeqCst);
        }
        let busy = lanes.values().filter(|v| **v > 0).count();
        self.max_lanes_busy.fetch_max(busy, AtomicOrdering::SeqCst);
    }

    fn exit(&self, lane: &str, offset: i64) {
        self.seen
            .lock()
            .unwrap()
            .entry(lane.to_string())
            .or_default()
            .push(offset);
        *self.per_lane.lock().unwrap().get_mut(lane).unwrap() -= 1;
        self.running.fetch_sub(1, AtomicOrdering::SeqCst);
        self.done.fetch_add(1, AtomicOrdering::SeqCst);
    }
}

fn observed_handler(
    obs: Arc<Observer>,
    lane_of: fn(&Record) -> String,
    max_sleep_ms: u64,
) -> impl rebound_worker::Handler {
    handler_fn(move |rec: &Record| {
        let obs = obs.clone();
        let lane = lane_of(rec);
        let offset = rec.offset;
        async move {
            obs.enter(&lane);
            let ms = rand::rng().random_range(0..=max_sleep_ms);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            obs.exit(&lane, offset);
            Ok(())
        }
    })
}

fn assert_in_offset_order(seen: &HashMap<String, Vec<i64>>) {
    for (lane, offsets) in seen {
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "lane {lane} handled out of offset order: {offsets:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_mode_keeps_per_key_order_and_runs_keys_concurrently() {
    let bed = Bed::new("t", 4).await;
    let n = 10_000;
    bed.produce(n, |i| Some(format!("key-{}", i % 1000)));
    let obs = Arc::new(Observer::default());
    let group = unique_name("g");
    let cfg = bed
        .config(&group)
        .with_ordering(Ordering::Key)
        .with_max_in_flight(100)
        .build()
        .unwrap();
    let key_lane = |r: &Record| format!("{}/{}", r.partition, r.key_str().unwrap());
    let w = Worker::start(cfg, observed_handler(obs.clone(), key_lane, 3))
        .await
        .unwrap();
    wait_until(Duration::from_secs(60), "all records", || {
        let d = obs.done.load(AtomicOrdering::SeqCst);
        async move { d >= n }
    })
    .await;
    let summary = w.stop().await.unwrap();
    assert_eq!(obs.done.load(AtomicOrdering::SeqCst), n, "no duplicates");
    assert_eq!(summary.stats.processed, n as u64);
    assert_eq!(
        obs.lane_violations.load(AtomicOrdering::SeqCst),
        0,
        "a key ran twice at once"
    );
    let seen = obs.seen.lock().unwrap();
    assert_eq!(seen.len(), 1000, "every key handled");
    assert!(seen.values().all(|v| v.len() == 10));
    assert_in_offset_order(&seen);
    let max_running = obs.max_running.load(AtomicOrdering::SeqCst);
    assert!(
        max_running > 1,
        "keys never overlapped (max running {max_running})"
    );
    assert!(max_running <= 100, "max_in_flight exceeded: {max_running}");
    // Everything finished, so the final commit covers every record.
    let committed: i64 = bed
        .committed(&group)
        .iter()
        .map(|(o, _)| o.unwrap_or(0))
        .sum();
    assert_eq!(committed, n as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_mode_runs_one_record_per_partition_at_a_time() {
    let bed = Bed::new("t", 4).await;
    let n = 2_000;
    bed.produce(n, |i| Some(format!("k{i}")));
    let obs = Arc::new(Observer::default());
    let cfg = bed
        .config(&unique_name("g"))
        .with_ordering(Ordering::Partition)
        .with_max_in_flight(100)
        .build()
        .unwrap();
    let part_lane = |r: &Record| r.partition.to_string();
    let w = Worker::start(cfg, observed_handler(obs.clone(), part_lane, 1))
        .await
        .unwrap();
    wait_until(Duration::from_secs(60), "all records", || {
        let d = obs.done.load(AtomicOrdering::SeqCst);
        async move { d >= n }
    })
    .await;
    w.stop().await.unwrap();
    assert_eq!(obs.done.load(AtomicOrdering::SeqCst), n);
    assert_eq!(
        obs.lane_violations.load(AtomicOrdering::SeqCst),
        0,
        "two records of one partition ran at once"
    );
    let seen = obs.seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    assert_in_offset_order(&seen);
    assert!(
        obs.max_lanes_busy.load(AtomicOrdering::SeqCst) > 1,
        "partitions never ran concurrently"
    );
    let _ = index_of;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_mode_hands_partition_batches_in_offset_order_one_at_a_time() {
    use rebound_worker::batch_handler_fn;
    let bed = Bed::new("t", 3).await;
    let n = 3_000;
    bed.produce(n, |i| Some(format!("k{i}")));
    // (partition, offsets) of each batch, in completion order.
    type Batches = Vec<(i32, Vec<i64>)>;
    let batches: Arc<Mutex<Batches>> = Default::default();
    let running: Arc<Mutex<HashMap<i32, usize>>> = Default::default();
    let overlaps = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let handler = {
        let (batches, running, overlaps, done) = (
            batches.clone(),
            running.clone(),
            overlaps.clone(),
            done.clone(),
        );
        batch_handler_fn(move |recs: &[Record]| {
            let p = recs[0].partition;
            assert!(
                recs.iter().all(|r| r.partition == p),
                "a batch mixes partitions"
            );
            let offsets: Vec<i64> = recs.iter().map(|r| r.offset).collect();
            let (batches, running, overlaps, done) = (
                batches.clone(),
                running.clone(),
                overlaps.clone(),
                done.clone(),
            );
            async move {
                {
                    let mut r = running.lock().unwrap();
                    let c = r.entry(p).or_default();
                    *c += 1;
                    if *c > 1 {
                        overlaps.fetch_add(1, AtomicOrdering::SeqCst);
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
                *running.lock().unwrap().get_mut(&p).unwrap() -= 1;
                done.fetch_add(offsets.len(), AtomicOrdering::SeqCst);
                batches.lock().unwrap().push((p, offsets));
                Ok(())
            }
        })
    };
    let cfg = bed
        .config(&unique_name("g"))
        .with_ordering(Ordering::Batch)
        .with_max_batch_size(100)
        .build()
        .unwrap();
    let w = Worker::start_batch(cfg, handler).await.unwrap();
    wait_until(Duration::from_secs(60), "all records", || {
        let d = done.load(AtomicOrdering::SeqCst);
        async move { d >= n }
    })
    .await;
    w.stop().await.unwrap();
    assert_eq!(
        overlaps.load(AtomicOrdering::SeqCst),
        0,
        "two batches of one partition at once"
    );
    let batches = batches.lock().unwrap();
    assert!(
        batches.iter().all(|(_, b)| b.len() <= 100),
        "batch over max_batch_size"
    );
    for p in 0..3 {
        let offsets: Vec<i64> = batches
            .iter()
            .filter(|(q, _)| *q == p)
            .flat_map(|(_, b)| b.iter().copied())
            .collect();
        let expected: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(
            offsets, expected,
            "partition {p}: every offset once, in order"
        );
    }
    assert!(
        batches.iter().any(|(_, b)| b.len() > 1),
        "records were batched"
    );
}
