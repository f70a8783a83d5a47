//! Raw throughput: N records of 100 B (default 1,000,000), no-op handler,
//! key mode, against a plain rdkafka `BaseConsumer` loop on the same broker
//! in the same run. Prints medians over `BENCH_RUNS` runs (default 3).
//!
//! `cargo bench -p rebound-worker --bench throughput`
//! Knobs: BENCH_RECORDS, BENCH_RUNS, BENCH_PARTITIONS, BENCH_KEYS,
//! BENCH_MODE (key|unordered|partition), BENCH_SKIP_PLAIN,
//! BENCH_CLIENT_CONFIG (k=v,... applied to both consumers),
//! REBOUND_TEST_BROKERS (an external Kafka instead of the local tansu).
//! BENCH_TRACING=RATIO (e.g. 0.01) instead compares rebound with tracing
//! off against rebound exporting spans sampled at RATIO
//! (`parentbased_traceidratio` as `rebound` installs it:
//! `rebound_core::trace::ratio_sampler`) over OTLP to an in-process receiver, runs
//! interleaved (off first in odd runs, on first in even ones).
//! Both consumers run in this one binary with the mimalloc allocator.

mod common;

use rebound_testkit::bench::{env_or, median};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rebound_testkit::{create_topic, otlp, produce_records, unique_name, Brokers, TestRecord};
use rebound_worker::{handler_fn, Ordering, Record, Worker, WorkerConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Returns (records/s from first record to last, join time). `tuned`
/// applies the fetch setting the worker uses (`fetch.queue.backoff.ms=10`).
fn plain_loop(bootstrap: &str, topic: &str, n: usize, tuned: bool) -> (f64, Duration) {
    let mut cfg = ClientConfig::new();
    if tuned {
        cfg.set("fetch.queue.backoff.ms", "10");
    }
    if let Ok(extra) = std::env::var("BENCH_CLIENT_CONFIG") {
        for kv in extra.split(',') {
            let (k, v) = kv.split_once('=').unwrap();
            cfg.set(k, v);
        }
    }
    let consumer: BaseConsumer = cfg
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("plain"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let started = Instant::now();
    let mut first = None;
    let mut count = 0usize;
    let mut bytes = 0usize;
    while count < n {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            if first.is_none() {
                first = Some(Instant::now());
            }
            bytes += m.payload_len();
            count += 1;
        }
    }
    let first = first.unwrap();
    assert!(bytes > 0);
    (n as f64 / first.elapsed().as_secs_f64(), first - started)
}

async fn rebound_run(bootstrap: &str, topic: &str, n: usize) -> (f64, Duration) {
    let count = Arc::new(AtomicU64::new(0));
    let c = count.clone();
    let handler = handler_fn(move |_: &Record| {
        c.fetch_add(1, AtomicOrdering::Relaxed);
        std::future::ready(Ok(()))
    });
    let mut builder = WorkerConfig::builder();
    if let Ok(extra) = std::env::var("BENCH_CLIENT_CONFIG") {
        for kv in extra.split(',') {
            let (k, v) = kv.split_once('=').unwrap();
            builder = builder.with_client_config(k, v);
        }
    }
    let config = builder
        .with_brokers(bootstrap)
        .with_group(unique_name("rebound"))
        .with_topic(topic)
        .with_ordering(
            Ordering::parse(&std::env::var("BENCH_MODE").unwrap_or("key".into())).unwrap(),
        )
        .with_max_in_flight(1000)
        .with_max_buffered_per_partition(env_or("BENCH_MAX_BUFFERED", 10_000))
        .with_max_buffered_bytes(env_or(
            "BENCH_MAX_BUFFERED_BYTES",
            rebound_worker::config::DEFAULT_MAX_BUFFERED_BYTES,
        ))
        .with_commit_interval(Duration::from_millis(env_or("BENCH_COMMIT_MS", 1000) as u64))
        .with_session_timeout(Duration::from_secs(6))
        .build()
        .unwrap();
    let started = Instant::now();
    let worker = Worker::start(config, handler).await.unwrap();
    while count.load(AtomicOrdering::Relaxed) == 0 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let first = Instant::now();
    while count.load(AtomicOrdering::Relaxed) < n as u64 {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let rate = n as f64 / first.elapsed().as_secs_f64();
    worker.stop().await.unwrap();
    assert_eq!(
        count.load(AtomicOrdering::Relaxed),
        n as u64,
        "no duplicates"
    );
    (rate, first - started)
}

#[tokio::main]
async fn main() {
    let n = env_or("BENCH_RECORDS", 1_000_000);
    let runs = env_or("BENCH_RUNS", 3);
    let partitions = env_or("BENCH_PARTITIONS", 4) as i32;
    let keys = env_or("BENCH_KEYS", 10_000);
    let brokers = Brokers::start().unwrap();
    let bootstrap = brokers.bootstrap().to_string();
    let topic = unique_name("bench");
    create_topic(&bootstrap, &topic, partitions).await.unwrap();
    let value = vec![b'x'; 100];
    let t = Instant::now();
    let (b, tp, v) = (bootstrap.clone(), topic.clone(), value.clone());
    tokio::task::spawn_blocking(move || {
        produce_records(
            &b,
            &tp,
            (0..n).map(|i| TestRecord {
                partition: None,
                key: Some(format!("key-{}", i % keys).into_bytes()),
                value: v.clone(),
            }),
        )
        .unwrap()
    })
    .await
    .unwrap();
    println!(
        "produced {n} records of 100 B to {partitions} partitions in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    if let Ok(ratio) = std::env::var("BENCH_TRACING") {
        let ratio: f64 = ratio.parse().expect("BENCH_TRACING is a ratio, e.g. 0.01");
        return tracing_overhead(&bootstrap, &topic, n, runs, ratio).await;
    }
    let (mut plain, mut tuned, mut ours) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        let skip = std::env::var_os("BENCH_SKIP_PLAIN").is_some();
        let baseline = |t: bool| {
            let (b, tp) = (bootstrap.clone(), topic.clone());
            async move {
                if skip {
                    (f64::NAN, Duration::ZERO)
                } else {
                    tokio::task::spawn_blocking(move || plain_loop(&b, &tp, n, t))
                        .await
                        .unwrap()
                }
            }
        };
        let (p, _) = baseline(false).await;
        let (pt, _) = baseline(true).await;
        let (r, rj) = rebound_run(&bootstrap, &topic, n).await;
        println!(
            "run {run}: plain loop (librdkafka defaults) {p:>9.0} rec/s | plain loop (fetch.queue.backoff.ms=10) {pt:>9.0} rec/s | rebound key mode {r:>9.0} rec/s (join {:.1}s) | ratio to tuned plain {:.2}",
            rj.as_secs_f64(),
            r / pt
        );
        plain.push(p);
        tuned.push(pt);
        ours.push(r);
    }
    let ratios: Vec<f64> = ours.iter().zip(&tuned).map(|(r, p)| r / p).collect();
    println!(
        "median: plain (defaults) {:.0} rec/s, plain (tuned) {:.0} rec/s, rebound key mode {:.0} rec/s; ratio to tuned plain {:.2} (median of per-run ratios {:.2}), to default plain {:.2}",
        median(plain.clone()),
        median(tuned.clone()),
        median(ours.clone()),
        median(ours.clone()) / median(tuned),
        median(ratios),
        median(ours) / median(plain)
    );
}

/// Rebound with tracing off, then exporting spans sampled at `ratio`, per run.
async fn tracing_overhead(bootstrap: &str, topic: &str, n: usize, runs: usize, ratio: f64) {
    let receiver = otlp::Receiver::start().await;
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        // Which goes first alternates: a machine getting busier or quieter
        // during a run favours neither.
        let off_first = run % 2 == 1;
        let mut r_off = 0.0;
        if off_first {
            r_off = rebound_run(bootstrap, topic, n).await.0;
        }
        // What `rebound` installs for OTEL_TRACES_SAMPLER=parentbased_traceidratio.
        let sampler = rebound_core::trace::ratio_sampler(ratio);
        let provider = otlp::install_sampled(&receiver.endpoint(), "bench", sampler);
        let (r_on, _) = rebound_run(bootstrap, topic, n).await;
        tokio::task::spawn_blocking(move || provider.shutdown().unwrap())
            .await
            .unwrap();
        otlp::uninstall();
        rebound_core::trace::set_new_trace_ratio(None);
        if !off_first {
            r_off = rebound_run(bootstrap, topic, n).await.0;
        }
        println!(
            "run {run}: tracing off {r_off:>9.0} rec/s | tracing at {ratio} {r_on:>9.0} rec/s | ratio {:.3} | spans so far {}",
            r_on / r_off,
            receiver.spans().len()
        );
        off.push(r_off);
        on.push(r_on);
    }
    let ratios: Vec<f64> = on.iter().zip(&off).map(|(a, b)| a / b).collect();
    println!(
        "median: tracing off {:.0} rec/s, tracing at {ratio} {:.0} rec/s; median of per-run ratios {:.3}",
        median(off),
        median(on),
        median(ratios)
    );
}
