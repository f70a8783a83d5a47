//! Crashes, restarts, graceful shutdown, at-most-once and frozen partitions
//! on the real broker.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{index_of, wait_until, Bed, WorkerBed};
use rebound_testkit::{broker_keeps_commit_metadata, unique_name};
use rebound_worker::tracker::decode_metadata;
use rebound_worker::{handler_fn, Delivery, HandlerError, Ordering, Record, Worker};

/// Counts how often each record index was handled.
#[derive(Default, Clone)]
struct Tally(Arc<Mutex<HashMap<usize, usize>>>);

impl Tally {
    fn add(&self, i: usize) {
        *self.0.lock().unwrap().entry(i).or_default() += 1;
    }
    fn distinct(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn snapshot(&self) -> HashMap<usize, usize> {
        self.0.lock().unwrap().clone()
    }
}

fn tally_handler(tally: Tally, sleep_ms: u64) -> impl rebound_worker::Handler {
    handler_fn(move |rec: &Record| {
        let tally = tally.clone();
        let i = index_of(rec);
        async move {
            tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
            tally.add(i);
            Ok(())
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_dropped_mid_stream_then_restarted_loses_nothing() {
    let bed = Bed::new("t", 3).await;
    let n = 3_000;
    bed.produce(n, |i| Some(format!("k{}", i % 97)));
    let group = unique_name("g");
    let tally = Tally::default();
    let cfg = || {
        bed.config(&group)
            .with_ordering(Ordering::Unordered)
            .with_max_in_flight(50)
            .build()
            .unwrap()
    };
    let w1 = Worker::start(cfg(), tally_handler(tally.clone(), 2))
        .await
        .unwrap();
    wait_until(Duration::from_secs(60), "a third of the records", || {
        let d = tally.distinct();
        async move { d >= n / 3 }
    })
    .await;
    // No drain, no final commit: whatever was in flight or buffered is dropped.
    let s1 = w1.abort().await.unwrap();
    assert!(s1.aborted);
    let before_restart = tally.distinct();
    assert!(before_restart < n, "the crash must happen mid-stream");

    let w2 = Worker::start(cfg(), tally_handler(tally.clone(), 0))
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(60),
        "every record after restart",
        || {
            let d = tally.distinct();
            async move { d >= n }
        },
    )
    .await;
    w2.stop().await.unwrap();
    let seen = tally.snapshot();
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains_key(i)).collect();
    assert!(missing.is_empty(), "lost records: {missing:?}");
    let committed: i64 = bed.committed(&group).iter().map(|(o, _)| o.unwrap()).sum();
    assert_eq!(committed, n as i64, "final commit covers everything");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_commits_exactly_the_finished_watermark() {
    let bed = Bed::new("t", 1).await;
    let keeps_metadata = broker_keeps_commit_metadata(bed.bootstrap(), &bed.topic).unwrap();
    watermark_then_restart(bed, keeps_metadata).await;
}

/// On Apache Kafka the commit metadata comes back, so the restart must skip
/// every record finished above the watermark (tansu drops the metadata).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_apache_kafka_skips_the_records_finished_above_the_watermark() {
    let bed = Bed::kafka("t", 1).await;
    assert!(
        broker_keeps_commit_metadata(bed.bootstrap(), &bed.topic).unwrap(),
        "Apache Kafka returns commit metadata"
    );
    watermark_then_restart(bed, true).await;
}

/// One record never finishes; stop commits exactly its offset with the
/// records finished above it in the metadata; a restart runs that record and,
/// where `keeps_metadata`, nothing else.
async fn watermark_then_restart(bed: Bed, keeps_metadata: bool) {
    let n = 100;
    bed.produce(n, |i| Some(format!("k{i}")));
    let group = unique_name("g");
    let tally = Tally::default();
    let stuck = 50usize;
    let t = tally.clone();
    let handler = handler_fn(move |rec: &Record| {
        let t = t.clone();
        let i = index_of(rec);
        async move {
            if i == stuck {
                // Never finishes: shutdown must not commit past it.
                std::future::pending::<()>().await;
            }
            t.add(i);
            Ok(())
        }
    });
    let cfg = bed
        .config(&group)
        .with_ordering(Ordering::Unordered)
        .with_max_in_flight(n)
        .with_drain_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let w = Worker::start(cfg, handler).await.unwrap();
    wait_until(Duration::from_secs(30), "all but the stuck record", || {
        let d = tally.distinct();
        async move { d >= n - 1 }
    })
    .await;
    let summary = w.stop().await.unwrap();
    assert_eq!(summary.abandoned_in_flight, 1);
    let expected: BTreeSet<i64> = (stuck as i64 + 1..n as i64).collect();
    // What the worker committed: exactly the first unfinished offset, with
    // every finished record above it in the metadata.
    assert_eq!(summary.final_commit.len(), 1);
    let sent = &summary.final_commit[0];
    assert_eq!(sent.offset, stuck as i64);
    assert_eq!(decode_metadata(&sent.metadata, sent.offset), expected);
    // What the broker holds.
    let (offset, metadata) = bed.committed(&group).remove(0);
    assert_eq!(
        offset,
        Some(stuck as i64),
        "committed exactly the first unfinished offset"
    );
    if keeps_metadata {
        assert_eq!(decode_metadata(&metadata, stuck as i64), expected);
    } else {
        eprintln!("this broker drops commit metadata: a restart redoes the finished records above the watermark");
    }

    // A restart handles the unfinished record; where the broker keeps the
    // metadata it handles nothing else.
    let again = Tally::default();
    let cfg = bed
        .config(&group)
        .with_ordering(Ordering::Unordered)
        .build()
        .unwrap();
    let w = Worker::start(cfg, tally_handler(again.clone(), 0))
        .await
        .unwrap();
    let want = if keeps_metadata { 1 } else { n - stuck };
    wait_until(
        Duration::from_secs(30),
        "the unfinished records after restart",
        || {
            let d = again.distinct();
            async move { d >= want }
        },
    )
    .await;
    let summary = w.stop().await.unwrap();
    let handled = again.snapshot();
    assert_eq!(handled.get(&stuck), Some(&1), "the stuck record runs again");
    assert!(
        handled.keys().all(|i| *i >= stuck),
        "nothing below the watermark runs again"
    );
    if keeps_metadata {
        assert_eq!(handled.len(), 1, "finished records were skipped");
        assert_eq!(summary.stats.skipped_done, (n - stuck - 1) as u64);
    }
    assert_eq!(bed.committed(&group)[0].0, Some(n as i64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_once_never_handles_a_record_twice_across_a_restart() {
    let bed = Bed::new("t", 1).await;
    let n = 500;
    bed.produce(n, |i| Some(format!("k{}", i % 10)));
    let group = unique_name("g");
    let tally = Tally::default();
    let cfg = || {
        bed.config(&group)
            .with_ordering(Ordering::Key)
            .with_delivery(Delivery::AtMostOnce)
            .with_max_in_flight(5)
            .build()
            .unwrap()
    };
    let w1 = Worker::start(cfg(), tally_handler(tally.clone(), 5))
        .await
        .unwrap();
    wait_until(Duration::from_secs(30), "some records", || {
        let d = tally.distinct();
        async move { d >= 50 }
    })
    .await;
    w1.abort().await.unwrap();
    let first_run = tally.distinct();
    assert!(first_run < n, "the crash must happen mid-stream");

    let w2 = Worker::start(cfg(), tally_handler(tally.clone(), 0))
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the restarted worker to reach the end",
        || {
            let committed = bed.committed(&group)[0].0;
            async move { committed == Some(n as i64) }
        },
    )
    .await;
    let summary = w2.stop().await.unwrap();
    let seen = tally.snapshot();
    let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.is_empty(), "handled twice: {twice:?}");
    assert!(
        summary.stats.processed > 0,
        "the restarted worker handled records"
    );
    assert!(seen.len() > first_run);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_partition_stops_while_the_others_finish_and_resumes() {
    let bed = Bed::new("t", 3).await;
    let per = 100;
    let mut recs = Vec::new();
    for p in 0..3 {
        for i in 0..per {
            recs.push((
                p,
                Some(format!("k{i}")),
                format!("{}", p as usize * per + i),
            ));
        }
    }
    bed.produce_to(recs);
    let group = unique_name("g");
    let tally = Tally::default();
    let fail_once = Arc::new(Mutex::new(true));
    let (t, f) = (tally.clone(), fail_once.clone());
    let poison = per + 10; // partition 1, offset 10
    let handler = handler_fn(move |rec: &Record| {
        let (t, f) = (t.clone(), f.clone());
        let i = index_of(rec);
        async move {
            if i == poison && std::mem::replace(&mut *f.lock().unwrap(), false) {
                return Err(HandlerError::permanent("poison record"));
            }
            t.add(i);
            Ok(())
        }
    });
    let cfg = bed
        .config(&group)
        .with_ordering(Ordering::Partition)
        .build()
        .unwrap();
    let w = Worker::start(cfg, handler).await.unwrap();
    wait_until(Duration::from_secs(30), "the healthy partitions", || {
        let seen = tally.snapshot();
        async move {
            (0..per)
                .chain(2 * per..3 * per)
                .all(|i| seen.contains_key(&i))
        }
    })
    .await;
    // Give the frozen partition every chance to (wrongly) move on.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = tally.snapshot();
    let p1: BTreeSet<usize> = seen
        .keys()
        .copied()
        .filter(|i| (per..2 * per).contains(i))
        .collect();
    assert_eq!(
        p1,
        (per..per + 10).collect(),
        "partition 1 stopped at the poison record"
    );
    let frozen = w.frozen().await;
    assert_eq!(frozen.len(), 1);
    assert_eq!((frozen[0].tp.1, frozen[0].offset), (1, 10));
    wait_until(
        Duration::from_secs(10),
        "the commit of the frozen partition",
        || {
            let c = bed.committed(&group);
            async move { c[1].0 == Some(10) && c[0].0 == Some(per as i64) }
        },
    )
    .await;

    assert!(w.resume_partition(&bed.topic, 1).await);
    wait_until(Duration::from_secs(30), "partition 1 after resume", || {
        let d = tally.distinct();
        async move { d >= 3 * per }
    })
    .await;
    w.stop().await.unwrap();
    assert!(tally.snapshot().values().all(|c| *c == 1));
    assert_eq!(bed.committed(&group)[1].0, Some(per as i64));
}
