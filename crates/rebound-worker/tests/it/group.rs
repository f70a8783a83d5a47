//! Two workers in one consumer group on the real broker.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{index_of, wait_until, Bed, WorkerBed};
use rebound_testkit::unique_name;
use rebound_worker::{handler_fn, Ordering, Record, Worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_split_partitions_and_the_survivor_takes_over() {
    let bed = Bed::new("t", 4).await;
    let n = 4_000;
    bed.produce(n, |i| Some(format!("k{}", i % 200)));
    let group = unique_name("g");
    let seen: Arc<Mutex<HashSet<usize>>> = Default::default();
    let handler = |tag: &'static str, by: Arc<Mutex<HashSet<&'static str>>>| {
        let seen = seen.clone();
        handler_fn(move |rec: &Record| {
            let (seen, by) = (seen.clone(), by.clone());
            let i = index_of(rec);
            async move {
                tokio::time::sleep(Duration::from_millis(3)).await;
                seen.lock().unwrap().insert(i);
                by.lock().unwrap().insert(tag);
                Ok(())
            }
        })
    };
    let by: Arc<Mutex<HashSet<&'static str>>> = Default::default();
    let cfg = || {
        bed.config(&group)
            .with_ordering(Ordering::Key)
            .with_max_in_flight(8)
            .build()
            .unwrap()
    };
    let a = Worker::start(cfg(), handler("a", by.clone()))
        .await
        .unwrap();
    let b = Worker::start(cfg(), handler("b", by.clone()))
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "both workers to own partitions",
        || {
            let (a, b) = (&a, &b);
            async move {
                let (pa, pb) = (a.assigned().await, b.assigned().await);
                !pa.is_empty() && !pb.is_empty() && pa.len() + pb.len() == 4
            }
        },
    )
    .await;
    let (pa, pb) = (a.assigned().await, b.assigned().await);
    assert!(
        pa.iter().all(|p| !pb.contains(p)),
        "a partition owned twice: {pa:?} {pb:?}"
    );
    wait_until(
        Duration::from_secs(30),
        "both workers to handle records",
        || {
            let both = by.lock().unwrap().len() == 2;
            async move { both }
        },
    )
    .await;
    assert!(seen.lock().unwrap().len() < n, "a leaves mid-stream");
    a.stop().await.unwrap();
    wait_until(Duration::from_secs(30), "b to own every partition", || {
        let b = &b;
        async move { b.assigned().await.len() == 4 }
    })
    .await;
    wait_until(Duration::from_secs(60), "every record", || {
        let d = seen.lock().unwrap().len();
        async move { d >= n }
    })
    .await;
    b.stop().await.unwrap();
    let seen = seen.lock().unwrap();
    let missing: Vec<usize> = (0..n).filter(|i| !seen.contains(i)).collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    let committed: i64 = bed.committed_total(&group);
    assert_eq!(committed, n as i64);
}
