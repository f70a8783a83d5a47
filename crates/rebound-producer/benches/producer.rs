//! Producer throughput: 100 B keyed records, idempotent, `acks=all`,
//! `murmur2_random`, the same linger and queue size for every client, against
//! one broker in one run:
//!
//! - rebound `Producer::enqueue` (a future per record, all awaited);
//! - rebound `Producer::send_and_forget` + `flush` (delivery counted by the metrics);
//! - a raw rdkafka `BaseProducer` loop (`send`, `poll(0)` every 1,000, `flush`,
//!   delivery reports counted in its context);
//! - a raw rdkafka `FutureProducer` loop (`send_result`, all futures awaited);
//! - Python confluent-kafka (`benches/py/produce_bench.py`, same settings);
//!
//! plus the transactional producer at 1 and 100 records per transaction.
//! Each figure is the median of `BENCH_RUNS` runs (default 3); every run
//! writes to a fresh topic and checks that every record was acknowledged.
//! Every client first sends one record (one transaction) and waits for it,
//! so connecting and acquiring the producer id (0.5–1 s on tansu, varying)
//! are not timed; the clock runs from the first timed send to the last
//! acknowledgement.
//!
//! `cargo bench -p rebound-producer --bench producer`
//!
//! This binary uses the mimalloc allocator (as the worker benches do); the
//! raw loops allocate little in Rust, rebound allocates one completion per
//! record, so the system allocator would widen the gap (see BENCHMARKS.md).
//!
//! Client CPU is this process's (or the Python process's) user + system time
//! during the run; broker CPU is the tansu process's.
//!
//! Knobs: BENCH_RECORDS (default 500,000), BENCH_RUNS, BENCH_PARTITIONS (4),
//! BENCH_KEYS (10,000), BENCH_LINGER_MS (5), BENCH_TXNS (300 transactions
//! per size), BENCH_SKIP_PYTHON, BENCH_ONLY (run only the clients whose name
//! contains it, e.g. `enqueue`, for profiling), REBOUND_TEST_BROKERS.

mod baseline;

use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rebound_producer::{OutRecord, Producer, ProducerConfig, TransactionalProducer};
use rebound_testkit::bench::{env_or, median};
use rebound_testkit::{create_topic, unique_name, Brokers};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const QUEUE_MAX: usize = 1_000_000;

/// CPU seconds (user + system) used so far by process `pid` ("self" for this one).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5), in clock ticks (100 per second).
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// A measured run: records/s and CPU microseconds per record of the
/// client and of the broker.
#[derive(Clone, Copy)]
struct Sample {
    rate: f64,
    client_us: f64,
    broker_us: f64,
}

struct Setup {
    bootstrap: String,
    n: usize,
    keys: Vec<Vec<u8>>,
    linger: usize,
}

impl Setup {
    fn raw_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("partitioner", "murmur2_random")
            .set("linger.ms", self.linger.to_string())
            .set("queue.buffering.max.messages", QUEUE_MAX.to_string());
        c
    }

    fn rebound_config(&self) -> ProducerConfig {
        ProducerConfig::new(&self.bootstrap)
            .with_linger(Duration::from_millis(self.linger as u64))
            .with_client_config("queue.buffering.max.messages", QUEUE_MAX.to_string())
    }

    fn key(&self, i: usize) -> &[u8] {
        &self.keys[i % self.keys.len()]
    }

    /// One record per key, sent in turn: the same records the raw loops
    /// send from the same key list (an `OutRecord` owns its bytes, so
    /// building one per send would time allocations the raw loops skip).
    fn records(&self, topic: &str, value: &[u8]) -> Vec<OutRecord> {
        (0..self.keys.len())
            .map(|i| OutRecord::new(topic, value).with_key(self.key(i)))
            .collect()
    }

    async fn topic(&self, partitions: i32) -> String {
        let t = unique_name("pbench");
        create_topic(&self.bootstrap, &t, partitions).await.unwrap();
        t
    }

    /// Deletes a measured topic so the broker's memory does not grow run
    /// after run.
    async fn drop_topic(&self, topic: &str) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .create()
            .unwrap();
        let _ = admin.delete_topics(&[topic], &AdminOptions::new()).await;
    }
}

/// rebound `enqueue`: a `Pending` per record, all awaited.
async fn rebound_enqueue(s: &Setup, topic: &str, value: &[u8]) -> f64 {
    let p = Producer::new(&s.rebound_config()).unwrap();
    let recs = s.records(topic, value);
    p.send(&recs[0]).await.unwrap();
    let start = Instant::now();
    let mut pending = Vec::with_capacity(s.n);
    for i in 0..s.n {
        pending.push(p.enqueue(&recs[i % recs.len()]).await.unwrap());
    }
    for f in pending {
        f.await.unwrap();
    }
    let rate = s.n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(p.metrics().delivered(), s.n as u64 + 1);
    rate
}

/// rebound `send_and_forget` + `flush`, delivery checked in the metrics.
async fn rebound_forget(s: &Setup, topic: &str, value: &[u8]) -> f64 {
    let p = Producer::new(&s.rebound_config()).unwrap();
    let recs = s.records(topic, value);
    p.send(&recs[0]).await.unwrap();
    let start = Instant::now();
    for i in 0..s.n {
        p.send_and_forget(&recs[i % recs.len()]).await.unwrap();
    }
    p.flush_async(Duration::from_secs(60)).await.unwrap();
    let rate = s.n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(p.metrics().delivered(), s.n as u64 + 1);
    assert_eq!(p.metrics().failed_total(), 0);
    rate
}

/// Transactions of `per_txn` records: (records/s, transactions/s).
async fn transactional(
    s: &Setup,
    topic: &str,
    value: &[u8],
    per_txn: usize,
    txns: usize,
) -> (f64, f64) {
    let config = s.rebound_config();
    let p =
        TransactionalProducer::init(&config, &unique_name("bench-txn"), Duration::from_secs(30))
            .await
            .unwrap();
    let recs = s.records(topic, value);
    let rec = |i: usize| &recs[i % recs.len()];
    p.begin().unwrap();
    drop(p.send(rec(0)).unwrap());
    p.commit().await.unwrap();
    let start = Instant::now();
    for t in 0..txns {
        p.begin().unwrap();
        for j in 0..per_txn {
            // Commit waits for every record; the per-record futures are not needed.
            drop(p.send(rec(t * per_txn + j)).unwrap());
        }
        p.commit().await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(p.metrics().transactions("committed"), txns as u64 + 1);
    assert_eq!(p.metrics().delivered(), (txns * per_txn) as u64 + 1);
    ((txns * per_txn) as f64 / secs, txns as f64 / secs)
}

#[tokio::main]
async fn main() {
    let n = env_or("BENCH_RECORDS", 500_000);
    let runs = env_or("BENCH_RUNS", 3);
    let partitions = env_or("BENCH_PARTITIONS", 4) as i32;
    let txns = env_or("BENCH_TXNS", 300);
    let skip_python = std::env::var_os("BENCH_SKIP_PYTHON").is_some();
    let only = std::env::var("BENCH_ONLY").ok();
    let brokers = Brokers::start().unwrap();
    let setup = Setup {
        bootstrap: brokers.bootstrap().to_string(),
        n,
        keys: (0..env_or("BENCH_KEYS", 10_000))
            .map(|i| format!("key-{i}").into_bytes())
            .collect(),
        linger: env_or("BENCH_LINGER_MS", 5),
    };
    let s = &setup;
    let value = vec![b'x'; 100];
    let v = value.as_slice();
    println!(
        "{n} records of 100 B, {partitions} partitions, idempotent, acks=all, linger {} ms, {runs} runs",
        s.linger
    );

    let names = [
        "raw BaseProducer",
        "raw FutureProducer",
        "rebound enqueue",
        "rebound send_and_forget",
        "python confluent-kafka",
    ];
    let broker_pid = brokers
        .pid()
        .map_or_else(|| "none".to_string(), |p| p.to_string());
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); names.len()];
    for run in 1..=runs {
        let mut line = format!("run {run}:");
        for (i, name) in names.iter().enumerate() {
            if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
                samples[i].push(Sample {
                    rate: f64::NAN,
                    client_us: f64::NAN,
                    broker_us: f64::NAN,
                });
                continue;
            }
            let topic = s.topic(partitions).await;
            let (c0, b0) = (cpu_seconds("self"), cpu_seconds(&broker_pid));
            let (rate, py_cpu) = match i {
                0 => (
                    tokio::task::block_in_place(|| baseline::raw_base(s, &topic, v)),
                    None,
                ),
                1 => (baseline::raw_future(s, &topic, v).await, None),
                2 => (rebound_enqueue(s, &topic, v).await, None),
                3 => (rebound_forget(s, &topic, v).await, None),
                _ if skip_python => (f64::NAN, Some(f64::NAN)),
                _ => {
                    let (r, c) = tokio::task::block_in_place(|| baseline::python(s, &topic));
                    (r, Some(c))
                }
            };
            let client = py_cpu.unwrap_or_else(|| cpu_seconds("self") - c0);
            let broker = cpu_seconds(&broker_pid) - b0;
            let per = |secs: f64| secs * 1e6 / n as f64;
            samples[i].push(Sample {
                rate,
                client_us: per(client),
                broker_us: per(broker),
            });
            s.drop_topic(&topic).await;
            line += &format!(" {name} {rate:.0}/s |");
        }
        println!("{line}");
    }
    let rates: Vec<Vec<f64>> = samples
        .iter()
        .map(|v| v.iter().map(|x| x.rate).collect())
        .collect();
    let med: Vec<f64> = rates.iter().map(|r| median(r.clone())).collect();
    println!("medians: records/s | client CPU µs/record | broker CPU µs/record");
    for ((name, m), smp) in names.iter().zip(&med).zip(&samples) {
        let client = median(smp.iter().map(|x| x.client_us).collect());
        let broker = median(smp.iter().map(|x| x.broker_us).collect());
        println!("  {name:<26} {m:>10.0} | {client:>6.2} | {broker:>6.2}");
    }
    let ratio = |a: usize, b: usize| {
        let per_run: Vec<f64> = rates[a].iter().zip(&rates[b]).map(|(x, y)| x / y).collect();
        (med[a] / med[b], median(per_run))
    };
    // Like for like first: futures vs futures, app-polled loop vs fire-and-forget.
    for (a, b) in [(2, 1), (3, 0), (2, 0), (2, 4), (3, 4)] {
        let (r, pr) = ratio(a, b);
        println!(
            "  {} / {}: {r:.2} (median of per-run ratios {pr:.2})",
            names[a], names[b]
        );
    }

    for per_txn in [1usize, 100] {
        let count = if per_txn == 1 { txns } else { txns.div_ceil(3) };
        let mut recs = Vec::new();
        let mut tx = Vec::new();
        for _ in 0..runs {
            let topic = s.topic(partitions).await;
            let (r, t) = transactional(s, &topic, v, per_txn, count).await;
            s.drop_topic(&topic).await;
            recs.push(r);
            tx.push(t);
        }
        println!(
            "transactional, {per_txn} record(s) per transaction, {count} transactions: median {:.0} records/s, {:.0} transactions/s (runs: {:?})",
            median(recs.clone()),
            median(tx),
            recs.iter().map(|r| r.round()).collect::<Vec<_>>()
        );
    }
}
