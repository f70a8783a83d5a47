//! The seed's consumer benchmark, scaled up: N records (default 100,000),
//! 30% fail transiently on their first attempt and go through a retry tier
//! with a 100 ms delay, against the same run with 0% failures. Reports end
//! to end records/s (first record handled → every record handled) and
//! checks that nothing was lost or dead-lettered.
//!
//! `cargo bench -p rebound-worker --bench failure_path`
//! Knobs: BENCH_RECORDS, BENCH_RUNS, BENCH_FAIL_PERCENT, REBOUND_TEST_BROKERS.

mod common;

use rebound_testkit::bench::{env_or, median};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rebound_producer::{Producer, ProducerConfig};
use rebound_testkit::{create_topic, produce_records, read_all, unique_name, Brokers, TestRecord};
use rebound_worker::{
    handler_fn, DeadLetterLayer, DeadLetterPolicy, HandlerError, Layer, Metrics, Ordering, Record,
    Worker, WorkerConfig,
};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn fails_first(i: u64, percent: u64) -> bool {
    common::mix(i) % 100 < percent
}

/// Returns (records/s end to end, records that went through the tier).
async fn run(bootstrap: &str, n: usize, percent: u64) -> (f64, usize) {
    let topic = unique_name("fp");
    create_topic(bootstrap, &topic, 4).await.unwrap();
    let group = unique_name("g");
    let policy = DeadLetterPolicy::new(&group).with_tiers(vec![Duration::from_millis(100)]);
    for t in policy.tier_topics(&topic) {
        create_topic(bootstrap, &t, 4).await.unwrap();
    }
    let dlq = policy.dlq_topic(&topic);
    create_topic(bootstrap, &dlq, 1).await.unwrap();
    let (b, t) = (bootstrap.to_string(), topic.clone());
    tokio::task::spawn_blocking(move || {
        produce_records(
            &b,
            &t,
            (0..n).map(|i| TestRecord {
                partition: None,
                key: Some(format!("key-{}", i % 10_000).into_bytes()),
                value: format!("{i:0>100}").into_bytes(),
            }),
        )
        .unwrap()
    })
    .await
    .unwrap();

    let done: Arc<Mutex<HashSet<u64>>> = Default::default();
    let first: Arc<Mutex<Option<Instant>>> = Default::default();
    let (d, f, main) = (done.clone(), first.clone(), topic.clone());
    let inner = handler_fn(move |rec: &Record| {
        let i: u64 = rec.value_str().unwrap().parse().unwrap();
        f.lock().unwrap().get_or_insert_with(Instant::now);
        let fail = *rec.topic == *main && fails_first(i, percent);
        if !fail {
            d.lock().unwrap().insert(i);
        }
        std::future::ready(if fail {
            Err(HandlerError::transient("first attempt fails"))
        } else {
            Ok(())
        })
    });
    let metrics = Arc::new(Metrics::new());
    let producer = Producer::new(&ProducerConfig::new(bootstrap)).unwrap();
    let handler = DeadLetterLayer::new(producer, policy.clone(), metrics.clone()).layer(inner);
    let mut cfg = WorkerConfig::builder()
        .with_brokers(bootstrap)
        .with_group(&group)
        .with_topic(&topic)
        .with_ordering(Ordering::Key)
        .with_max_in_flight(2000)
        .with_session_timeout(Duration::from_secs(6))
        .with_metrics(metrics.clone());
    for t in policy.tier_topics(&topic) {
        cfg = cfg.with_delayed_topic(t);
    }
    let worker = Worker::start(cfg.build().unwrap(), handler).await.unwrap();
    while done.lock().unwrap().len() < n {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = first.lock().unwrap().unwrap();
    let rate = n as f64 / started.elapsed().as_secs_f64();
    worker.stop().await.unwrap();
    let dead = read_all(bootstrap, &dlq).unwrap().len();
    assert_eq!(dead, 0, "nothing dead-lettered");
    assert_eq!(done.lock().unwrap().len(), n, "none lost");
    (rate, metrics.retried_to_tier_count(1) as usize)
}

#[tokio::main]
async fn main() {
    let n = env_or("BENCH_RECORDS", 100_000);
    let runs = env_or("BENCH_RUNS", 3);
    let percent = env_or("BENCH_FAIL_PERCENT", 30) as u64;
    let brokers = Brokers::start().unwrap();
    let bootstrap = brokers.bootstrap().to_string();
    let (mut clean, mut failing) = (Vec::new(), Vec::new());
    for r in 1..=runs {
        let (c, _) = run(&bootstrap, n, 0).await;
        let (f, tiered) = run(&bootstrap, n, percent).await;
        println!(
            "run {r}: 0% failures {c:>9.0} rec/s | {percent}% fail first, 100 ms retry tier {f:>9.0} rec/s ({tiered} records through the tier, 0 lost, 0 dead-lettered) | ratio {:.2}",
            f / c
        );
        clean.push(c);
        failing.push(f);
    }
    println!(
        "median: 0% failures {:.0} rec/s, {percent}% failures {:.0} rec/s, ratio {:.2}",
        median(clean.clone()),
        median(failing.clone()),
        median(failing) / median(clean)
    );
}
