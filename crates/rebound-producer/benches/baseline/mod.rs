//! The baselines the producer bench measures rebound against: raw rdkafka
//! loops in this process and Python confluent-kafka in a subprocess.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rdkafka::message::DeliveryResult;
use rdkafka::producer::{
    BaseProducer, BaseRecord, FutureProducer, FutureRecord, Producer as _, ProducerContext,
};
use rdkafka::ClientContext;

use crate::{Setup, QUEUE_MAX};

const PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/py/produce_bench.py");

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
pub fn raw_base(s: &Setup, topic: &str, value: &[u8]) -> f64 {
    let p: BaseProducer<Counting> = s
        .raw_config()
        .create_with_context(Counting::default())
        .unwrap();
    let ctx = p.context();
    p.send(
        BaseRecord::<[u8], [u8]>::to(topic)
            .payload(value)
            .key(s.key(0)),
    )
    .unwrap();
    while ctx.ok.load(Ordering::Relaxed) == 0 {
        p.poll(Duration::from_millis(5));
    }
    ctx.ok.store(0, Ordering::Relaxed);
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
    // Not `flush`: rust-rdkafka's flush polls in 100 ms steps, which would
    // round this loop's time up. Poll until every report is in instead.
    while ctx.ok.load(Ordering::Relaxed) + ctx.failed.load(Ordering::Relaxed) < s.n as u64 {
        p.poll(Duration::from_millis(5));
    }
    let rate = s.n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(ctx.ok.load(Ordering::Relaxed), s.n as u64);
    assert_eq!(ctx.failed.load(Ordering::Relaxed), 0);
    rate
}

/// Raw `FutureProducer`: `send_result` for every record, then every future.
pub async fn raw_future(s: &Setup, topic: &str, value: &[u8]) -> f64 {
    let p: FutureProducer = s.raw_config().create().unwrap();
    let warm = FutureRecord::to(topic).payload(value).key(s.key(0));
    p.send(warm, Duration::from_secs(30)).await.unwrap();
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

/// Python's rate and its own CPU seconds.
pub fn python(s: &Setup, topic: &str) -> (f64, f64) {
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
    (
        v["records"].as_f64().unwrap() / v["seconds"].as_f64().unwrap(),
        v["cpu_seconds"].as_f64().unwrap(),
    )
}
