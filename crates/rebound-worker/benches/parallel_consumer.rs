//! The Parallel Consumer test: 10,000 records on 1 partition, the handler
//! sleeps uniformly 0–5 ms, `max_in_flight` 100, in key mode with 1,000
//! keys, unordered mode and partition mode. Ideal = total sleep / 100.
//!
//! `cargo bench -p rebound-worker --bench parallel_consumer`
//! Knobs: BENCH_RECORDS, BENCH_RUNS, BENCH_MODES (comma list), REBOUND_TEST_BROKERS.

mod common;

use rebound_testkit::bench::median;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rebound_testkit::{create_topic, produce_records, unique_name, Brokers, TestRecord};
use rebound_worker::{handler_fn, Ordering, Record, Worker, WorkerConfig};

/// The sleep of record `offset`, deterministic so every mode sleeps the same
/// total: uniform in [0, 5] ms at microsecond resolution.
fn sleep_of(offset: i64) -> Duration {
    Duration::from_micros(common::mix(offset as u64) % 5_001)
}

/// Seconds from the first handled record to the last, and the measured
/// total handler time.
async fn run(bootstrap: &str, topic: &str, n: usize, ordering: Ordering) -> (f64, f64) {
    let count = Arc::new(AtomicU64::new(0));
    let slept_us = Arc::new(AtomicU64::new(0));
    let (c, s) = (count.clone(), slept_us.clone());
    let handler = handler_fn(move |rec: &Record| {
        let (c, s) = (c.clone(), s.clone());
        let d = sleep_of(rec.offset);
        async move {
            let t = Instant::now();
            tokio::time::sleep(d).await;
            s.fetch_add(t.elapsed().as_micros() as u64, AtomicOrdering::Relaxed);
            c.fetch_add(1, AtomicOrdering::Relaxed);
            Ok(())
        }
    });
    let config = WorkerConfig::builder()
        .with_brokers(bootstrap)
        .with_group(unique_name("pc"))
        .with_topic(topic)
        .with_ordering(ordering)
        .with_max_in_flight(100)
        .with_session_timeout(Duration::from_secs(6))
        .build()
        .unwrap();
    let worker = Worker::start(config, handler).await.unwrap();
    while count.load(AtomicOrdering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    // The first record started up to its own sleep before it finished.
    let first = Instant::now() - sleep_of(0);
    while count.load(AtomicOrdering::Relaxed) < n as u64 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let secs = first.elapsed().as_secs_f64();
    worker.stop().await.unwrap();
    assert_eq!(count.load(AtomicOrdering::Relaxed), n as u64);
    (secs, slept_us.load(AtomicOrdering::Relaxed) as f64 / 1e6)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let modes: Vec<Ordering> = std::env::var("BENCH_MODES")
        .unwrap_or_else(|_| "key,unordered,partition".into())
        .split(',')
        .map(|m| Ordering::parse(m.trim()).expect("mode: key, unordered or partition"))
        .collect();
    let brokers = Brokers::start().unwrap();
    let bootstrap = brokers.bootstrap().to_string();
    let topic = unique_name("pc");
    create_topic(&bootstrap, &topic, 1).await.unwrap();
    let (b, t) = (bootstrap.clone(), topic.clone());
    tokio::task::spawn_blocking(move || {
        produce_records(
            &b,
            &t,
            (0..n).map(|i| TestRecord {
                partition: Some(0),
                key: Some(format!("key-{}", i % 1000).into_bytes()),
                value: vec![b'x'; 100],
            }),
        )
        .unwrap()
    })
    .await
    .unwrap();
    let total: f64 = (0..n as i64).map(|o| sleep_of(o).as_secs_f64()).sum();
    let ideal = total / 100.0;
    println!("{n} records on 1 partition, sleep 0-5 ms each (total {total:.2}s), max_in_flight 100: ideal {ideal:.3}s");
    for mode in modes {
        let mut times = Vec::new();
        let mut measured = Vec::new();
        for _ in 0..runs {
            let (secs, slept) = run(&bootstrap, &topic, n, mode).await;
            times.push(secs);
            measured.push(slept);
        }
        let m = median(times.clone());
        println!(
            "{:<9} runs {:?} median {m:.3}s = {:.2}x ideal (measured handler time/100 = {:.3}s: timer granularity)",
            mode.as_str(),
            times.iter().map(|t| format!("{t:.3}")).collect::<Vec<_>>(),
            m / ideal,
            median(measured) / 100.0
        );
    }
}
