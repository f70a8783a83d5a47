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
//!
//! `cargo bench -p rebound-producer --bench producer`
//! Knobs: BENCH_RECORDS (default 200,000), BENCH_RUNS, BENCH_PARTITIONS (4),
//! BENCH_KEYS (10,000), BENCH_LINGER_MS (5), BENCH_TXNS (300 transactions
//! per size), BENCH_SKIP_PYTHON, REBOUND_TEST_BROKERS.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{
    BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer as _, ProducerContext,
};
use rdkafka::ClientContext;
use rebound_producer::{OutRecord, Producer, ProducerConfig, TransactionalProducer};
use rebound_testkit::{create_topic, unique_name, Brokers};

const QUEUE_MAX: usize = 1_000_000;
const PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/py/produce_bench.py");

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
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

    async fn topic(&self, partitions: i32) -> String {
        let t = unique_name("pbench");
        create_topic(&self.bootstrap, &t, partitions).await.unwrap();
        t
    }
}

#[derive(Default)]
struct Counting {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Counting {}

impl ProducerContext for Counting {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(_) => self.ok.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Raw `BaseProducer`: records/s from the first send to the end of flush.
fn raw_base(s: &Setup, topic: &str, value: &[u8]) -> f64 {
    let p: BaseProducer<Counting> = s
        .raw_config()
        .create_with_context(Counting::default())
        .unwrap();
    let start = Instant::now();
    for i in 0..s.n {
        let mut rec = BaseRecord::to(topic).payload(value).key(s.key(i));
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(10));
                }
            }
        }
        if i % 1000 == 0 {
            p.poll(Duration::ZERO);
        }
    }
    p.flush(Duration::from_secs(60)).unwrap();
    let rate = s.n as f64 / start.elapsed().as_secs_f64();
    let ctx = p.context();
    assert_eq!(ctx.ok.load(Ordering::Relaxed), s.n as u64);
    assert_eq!(ctx.failed.load(Ordering::Relaxed), 0);
    rate
}

/// Raw `FutureProducer`: `send_result` for every record, then every future.
async fn raw_future(s: &Setup, topic: &str, value: &[u8]) -> f64 {
    let p: FutureProducer = s.raw_config().create().unwrap();
    let start = Instant::now();
    let mut pending = Vec::with_capacity(s.n);
    for i in 0..s.n {
        let mut rec = FutureRecord::to(topic).payload(value).key(s.key(i));
        loop {
            match p.send_result(rec) {
                Ok(f) => break pending.push(f),
                Err((_, r)) => {
                    rec = r;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
    }
    for f in pending {
        f.await.unwrap().unwrap();
    }
    s.n as f64 / start.elapsed().as_secs_f64()
}

/// rebound `enqueue`: a `Pending` per record, all awaited.
async fn rebound_enqueue(s: &Setup, topic: &str, value: &[u8]) -> f64 {
    let p = Producer::new(&s.rebound_config()).unwrap();
    let recs: Vec<OutRecord> = (0..s.n)
        .map(|i| OutRecord::new(topic, value).with_key(s.key(i)))
        .collect();
    let start = Instant::now();
    let mut pending = Vec::with_capacity(s.n);
    for r in &recs {
        pending.push(p.enqueue(r).await.unwrap());
    }
    for f in pending {
        f.await.unwrap();
    }
    let rate = s.n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(p.metrics().delivered(), s.n as u64);
    rate
}

/// rebound `send_and_forget` + `flush`, delivery checked in the metrics.
async fn rebound_forget(s: &Setup, topic: &str, value: &[u8]) -> f64 {
    let p = Producer::new(&s.rebound_config()).unwrap();
    let recs: Vec<OutRecord> = (0..s.n)
        .map(|i| OutRecord::new(topic, value).with_key(s.key(i)))
        .collect();
    let start = Instant::now();
    for r in &recs {
        p.send_and_forget(r).await.unwrap();
    }
    p.flush_async(Duration::from_secs(60)).await.unwrap();
    let rate = s.n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(p.metrics().delivered(), s.n as u64);
    assert_eq!(p.metrics().failed_total(), 0);
    rate
}

fn python(s: &Setup, topic: &str) -> f64 {
    let out = Command::new("python3")
        .arg(PY)
        .args([&s.bootstrap, topic])
        .args([s.n, s.keys.len(), s.linger, QUEUE_MAX].map(|v| v.to_string()))
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["records"].as_f64().unwrap() / v["seconds"].as_f64().unwrap()
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
    let rec = |i: usize| OutRecord::new(topic, value).with_key(s.key(i));
    let start = Instant::now();
    for t in 0..txns {
        p.begin().unwrap();
        for j in 0..per_txn {
            // Commit waits for every record; the per-record futures are not needed.
            drop(p.send(&rec(t * per_txn + j)).unwrap());
        }
        p.commit().await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(p.metrics().transactions("committed"), txns as u64);
    assert_eq!(p.metrics().delivered(), (txns * per_txn) as u64);
    ((txns * per_txn) as f64 / secs, txns as f64 / secs)
}

#[tokio::main]
async fn main() {
    let n = env_or("BENCH_RECORDS", 200_000);
    let runs = env_or("BENCH_RUNS", 3);
    let partitions = env_or("BENCH_PARTITIONS", 4) as i32;
    let txns = env_or("BENCH_TXNS", 300);
    let skip_python = std::env::var_os("BENCH_SKIP_PYTHON").is_some();
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
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    for run in 1..=runs {
        let mut line = format!("run {run}:");
        for (i, name) in names.iter().enumerate() {
            let topic = s.topic(partitions).await;
            let r = match i {
                0 => tokio::task::block_in_place(|| raw_base(s, &topic, v)),
                1 => raw_future(s, &topic, v).await,
                2 => rebound_enqueue(s, &topic, v).await,
                3 => rebound_forget(s, &topic, v).await,
                _ if skip_python => f64::NAN,
                _ => tokio::task::block_in_place(|| python(s, &topic)),
            };
            rates[i].push(r);
            line += &format!(" {name} {r:.0}/s |");
        }
        println!("{line}");
    }
    let med: Vec<f64> = rates.iter().map(|r| median(r.clone())).collect();
    println!("medians (records/s):");
    for (name, m) in names.iter().zip(&med) {
        println!("  {name:<26} {m:>10.0}");
    }
    let ratio = |a: usize, b: usize| {
        let per_run: Vec<f64> = rates[a].iter().zip(&rates[b]).map(|(x, y)| x / y).collect();
        (med[a] / med[b], median(per_run))
    };
    for (a, b) in [(2, 0), (3, 0), (2, 1), (2, 4), (3, 4)] {
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
