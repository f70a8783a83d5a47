//! Count-by-key: N records of 100 B (default 1,000,000) over K keys
//! (default 10,000) on 4 partitions, each update written to an output
//! topic as key → decimal count. Compared in the same run with a plain
//! rdkafka loop (BaseConsumer → HashMap → ThreadedProducer, commit at the
//! end). Then the restore rate (state directory deleted, rebuilt from the
//! changelog) and, with `BENCH_RSS_KEYS` distinct keys, the resident memory
//! of the `stream_count` example (build it first:
//! `cargo build --release -p rebound-stream --example stream_count`).
//! Prints medians over `BENCH_RUNS` runs (default 3), runs interleaved.
//!
//! `cargo bench -p rebound-stream --bench count`
//! Knobs: BENCH_RECORDS, BENCH_KEYS, BENCH_RUNS (0: only the memory figure),
//! BENCH_RSS_KEYS (0: skip),
//! BENCH_MAX_BATCH (records per commit), BENCH_COMMIT_MS (commit interval;
//! both default to the library's for the guarantee),
//! BENCH_CLIENT=k=v,k=v (librdkafka properties for the stream's clients),
//! BENCH_SKIP_PLAIN=1 (no reference loop: for profiling),
//! REBOUND_TEST_BROKERS (an external Kafka instead of the local tansu).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use rebound_stream::{Guarantee, StreamApp, StreamBuilder, StreamConfig, StreamHandle};
use rebound_testkit::bench::{env_or, median};
use rebound_testkit::{create_topic, produce_records, unique_name, Brokers, TestRecord};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PARTITIONS: i32 = 4;

fn produce_input(bootstrap: &str, topic: &str, n: usize, keys: usize) {
    let value = vec![b'v'; 100];
    let recs = (0..n).map(|i| TestRecord {
        partition: None,
        key: Some(format!("key-{:08}", i % keys).into_bytes()),
        value: value.clone(),
    });
    assert_eq!(produce_records(bootstrap, topic, recs).unwrap(), n);
}

/// The reference: records/s from the first record to the last update
/// flushed and the offsets committed.
fn plain_loop(bootstrap: &str, input: &str, n: usize) -> f64 {
    let out = format!("{input}-plain-{}", unique_name("out"));
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("plain"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", "6000")
        .set("fetch.queue.backoff.ms", "10")
        .create()
        .unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    consumer.subscribe(&[input]).unwrap();
    let mut counts: HashMap<Vec<u8>, u64> = HashMap::new();
    let (mut first, mut seen) = (None, 0usize);
    while seen < n {
        let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        first.get_or_insert_with(Instant::now);
        let key = m.key().unwrap_or_default();
        let c = counts.entry(key.to_vec()).or_insert(0);
        *c += 1;
        let value = c.to_string();
        let mut rec = BaseRecord::to(&out).key(key).payload(&value);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        seen += 1;
    }
    producer.flush(Duration::from_secs(60)).unwrap();
    consumer.commit_consumer_state(CommitMode::Sync).unwrap();
    n as f64 / first.unwrap().elapsed().as_secs_f64()
}

struct Run {
    app: StreamHandle,
    app_id: String,
    dir: PathBuf,
}

async fn start(
    bootstrap: &str,
    input: &str,
    g: Guarantee,
    app_id: &str,
    dir: &PathBuf,
) -> StreamHandle {
    let b = StreamBuilder::new(app_id);
    b.stream::<Vec<u8>, Vec<u8>>(input)
        .group_by_key()
        .count("counts")
        .to_stream()
        .to(&format!("{app_id}-out"));
    let cfg = StreamConfig::builder()
        .with_brokers(bootstrap)
        .with_state_dir(dir)
        .with_guarantee(g)
        .with_session_timeout(Duration::from_secs(6));
    let cfg = match std::env::var("BENCH_MAX_BATCH") {
        Ok(n) => cfg.with_max_batch(n.parse().unwrap()),
        Err(_) => cfg,
    };
    let cfg = match std::env::var("BENCH_COMMIT_MS") {
        Ok(ms) => cfg.with_commit_interval(Duration::from_millis(ms.parse().unwrap())),
        Err(_) => cfg,
    };
    let cfg = std::env::var("BENCH_CLIENT")
        .unwrap_or_default()
        .split(',')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            kv.split_once('=')
                .unwrap_or_else(|| panic!("BENCH_CLIENT: {kv:?} is not key=value"))
        })
        .fold(cfg, |c, (k, v)| c.with_client_config(k, v));
    let cfg = cfg.build().unwrap();
    StreamApp::start(cfg, b.build().unwrap()).await.unwrap()
}

fn committed_total(bootstrap: &str, group: &str, topic: &str) -> i64 {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = rdkafka::TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    c.committed_offsets(tpl, Duration::from_secs(10))
        .unwrap()
        .elements()
        .iter()
        .map(|e| e.offset().to_raw().unwrap_or(0).max(0))
        .sum()
}

/// Stops the bench when the application ended on its own (its error is in
/// the log on stderr) instead of waiting for it forever.
fn alive(app: &StreamHandle) {
    assert!(
        !app.is_finished(),
        "the stream application stopped on its own: see its error above"
    );
}

/// records/s from the first record processed to every offset committed.
async fn stream_run(bootstrap: &str, input: &str, n: usize, g: Guarantee) -> (f64, Run) {
    let app_id = unique_name("bench-count");
    let dir = std::env::temp_dir().join(unique_name("bench-count-state"));
    let app = start(bootstrap, input, g, &app_id, &dir).await;
    let m = app.metrics().clone();
    while m.processed_total(input) == 0 {
        alive(&app);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let first = Instant::now();
    loop {
        alive(&app);
        let (b, a, t) = (bootstrap.to_string(), app_id.clone(), input.to_string());
        let done = m.processed_total(input) as usize >= n
            && tokio::task::spawn_blocking(move || committed_total(&b, &a, &t))
                .await
                .unwrap()
                >= n as i64;
        if done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = n as f64 / first.elapsed().as_secs_f64();
    (rate, Run { app, app_id, dir })
}

/// Restore: the state directory of an exactly-once run deleted, the app
/// started again (nothing new to process): changelog records/s from the
/// first restore to the end.
async fn restore_rate(bootstrap: &str, input: &str, run: Run) -> (f64, f64, u64) {
    run.app.stop().await.unwrap();
    std::fs::remove_dir_all(&run.dir).unwrap();
    let app = start(
        bootstrap,
        input,
        Guarantee::ExactlyOnce,
        &run.app_id,
        &run.dir,
    )
    .await;
    let m = app.metrics().clone();
    while m.restoring.get() == 0 && m.active_partitions.get() < PARTITIONS as i64 {
        alive(&app);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let t0 = Instant::now();
    while m.active_partitions.get() < PARTITIONS as i64 {
        alive(&app);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = t0.elapsed().as_secs_f64();
    let read = m.restored_total(&format!("{}-counts-changelog", run.app_id));
    // The stores' mean restore time per partition (each reader's
    // start-up included), partitions restoring in parallel.
    let mean =
        m.restore_seconds.get_sample_sum() / m.restore_seconds.get_sample_count().max(1) as f64;
    app.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&run.dir);
    (read as f64 / took, read as f64 / mean, read)
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of the `stream_count` example (its own process, at
/// least once) counting `keys` records with distinct keys: sampled every
/// 100 ms until every offset is committed.
async fn rss(bootstrap: &str, keys: usize) {
    let bin = std::env::current_exe()
        .unwrap()
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/stream_count");
    if !bin.exists() {
        println!(
            "RSS: {} missing: cargo build --release -p rebound-stream --example stream_count",
            bin.display()
        );
        return;
    }
    let input = unique_name("bench-rss-in");
    create_topic(bootstrap, &input, PARTITIONS).await.unwrap();
    produce_input(bootstrap, &input, keys, keys);
    let (group, dir) = (
        unique_name("bench-rss"),
        std::env::temp_dir().join(unique_name("bench-rss-state")),
    );
    let mut child = std::process::Command::new(bin)
        .args([
            "--brokers",
            bootstrap,
            "--input",
            &input,
            "--output",
            &format!("{input}-out"),
            "--group",
            &group,
        ])
        .arg("--state-dir")
        .arg(&dir)
        .env("RUST_LOG", "warn")
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut peak_rss = 0;
    loop {
        peak_rss = peak_rss.max(rss_kib(child.id(), "VmRSS:"));
        let (b, g, t) = (bootstrap.to_string(), group.clone(), input.clone());
        if tokio::task::spawn_blocking(move || committed_total(&b, &g, &t))
            .await
            .unwrap()
            >= keys as i64
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (now, hwm) = (rss_kib(child.id(), "VmRSS:"), rss_kib(child.id(), "VmHWM:"));
    let state: u64 = std::fs::read_dir(dir.join(&group))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|d| std::fs::metadata(d.path().join("state.redb")).ok())
        .map(|m| m.len())
        .sum();
    println!(
        "{keys} distinct keys (stream_count, at-least-once): done in {:.1} s; RSS at the end {} MiB, \
         largest sampled {} MiB, peak (VmHWM) {} MiB; state files {} MiB",
        started.elapsed().as_secs_f64(),
        now / 1024,
        peak_rss / 1024,
        hwm / 1024,
        state / (1024 * 1024)
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,librdkafka=error".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let n = env_or("BENCH_RECORDS", 1_000_000);
    let keys = env_or("BENCH_KEYS", 10_000);
    let runs = env_or("BENCH_RUNS", 3);
    let rss_keys = env_or("BENCH_RSS_KEYS", 1_000_000);
    let brokers = Brokers::start().unwrap();
    let bootstrap = brokers.bootstrap().to_string();
    let input = unique_name("bench-count-in");
    create_topic(&bootstrap, &input, PARTITIONS).await.unwrap();
    let t = Instant::now();
    produce_input(&bootstrap, &input, n, keys);
    println!(
        "produced {n} records of 100 B, {keys} keys, in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let (mut plain, mut alo, mut eos, mut restore, mut reading) =
        (vec![], vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let (b, i) = (bootstrap.clone(), input.clone());
        let p = tokio::task::spawn_blocking(move || plain_loop(&b, &i, n))
            .await
            .unwrap();
        let (a, alo_run) = stream_run(&bootstrap, &input, n, Guarantee::AtLeastOnce).await;
        let (e, eos_run) = stream_run(&bootstrap, &input, n, Guarantee::ExactlyOnce).await;
        alo_run.app.stop().await.unwrap();
        let _ = std::fs::remove_dir_all(&alo_run.dir);
        // The exactly-once run's changelog: a commit every 100 ms writes
        // about a third as many changelog records as input records here
        // (at-least-once commits every second: a sixth as many).
        let (r, rr, read) = restore_rate(&bootstrap, &input, eos_run).await;
        println!(
            "run {run}: plain {p:.0}/s, at-least-once {a:.0}/s ({:.2}x), exactly-once {e:.0}/s ({:.2}x), \
             restore {r:.0} changelog records/s wall, {rr:.0}/s reading ({read} records)",
            a / p,
            e / p
        );
        plain.push(p);
        alo.push(a);
        eos.push(e);
        restore.push(r);
        reading.push(rr);
    }
    if runs > 0 {
        let (p, a, e) = (median(plain), median(alo), median(eos));
        println!(
        "median over {runs}: plain {p:.0}/s; at-least-once {a:.0}/s = {:.2}x; exactly-once {e:.0}/s = {:.2}x; \
         restore {:.0} records/s wall, {:.0}/s reading",
        a / p,
        e / p,
        median(restore),
        median(reading)
    );
    }

    if rss_keys > 0 {
        rss(&bootstrap, rss_keys).await;
    }
}
