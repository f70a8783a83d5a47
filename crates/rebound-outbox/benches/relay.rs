//! Outbox relay throughput and commit-to-Kafka latency, with the same-run
//! references: the writers' raw INSERT rate (same columns, no commit-order
//! trigger) against the outbox's, and a raw rdkafka producer loop.
//!
//! `cargo bench -p rebound-outbox --bench relay`
//! Knobs: BENCH_ROWS (200000), BENCH_RUNS (3), BENCH_BATCH (5000),
//! BENCH_WRITERS (8), BENCH_RATE (2000 rows/s), BENCH_LATENCY_SECS (20),
//! BENCH_LATENCY_ONLY (set: skip the throughput runs),
//! DATABASE_URL, REBOUND_TEST_BROKERS.
//!
//! Guarantee shown: none asserted (benches measure); every run checks that
//! the relay emptied the table before it reports a rate.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rebound_outbox::{init, Relay, RelayConfig, TableName};
use rebound_producer::ProducerConfig;
use rebound_testkit::bench::{env_or, median};
use rebound_testkit::{create_topic, database_url, unique_name, Brokers};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

const PAYLOAD: usize = 100;
const PARTITIONS: i32 = 4;
const KEYS: usize = 10_000;
const HOT_KEYS: usize = 16;

fn table() -> TableName {
    TableName::new(unique_name("bench").replace('-', "_")).unwrap()
}

/// Rows/s of `writers` concurrent writers, transactions of 10 single-row
/// INSERTs each, keys drawn from `keys`, into `t`.
async fn insert_rate(
    pool: &PgPool,
    t: &TableName,
    topic: &str,
    rows: usize,
    writers: usize,
    keys: usize,
) -> f64 {
    let left = Arc::new(AtomicUsize::new(rows / 10));
    let started = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|_| {
            let (pool, left, t, topic) = (pool.clone(), left.clone(), t.clone(), topic.to_string());
            tokio::spawn(async move {
                let sql = format!("INSERT INTO \"{t}\" (topic, key, payload) VALUES ($1, $2, $3)");
                let payload = vec![b'x'; PAYLOAD];
                while left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok()
                {
                    let mut tx = pool.begin().await.unwrap();
                    for _ in 0..10 {
                        let key = format!("k{}", rand::rng().random_range(0..keys));
                        sqlx::query(&sql)
                            .bind(&topic)
                            .bind(key)
                            .bind(&payload)
                            .execute(&mut *tx)
                            .await
                            .unwrap();
                    }
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    rows as f64 / started.elapsed().as_secs_f64()
}

/// Rows/s of a plain rdkafka loop: idempotent, murmur2, one header, the
/// same records the relay sends.
fn raw_producer(bootstrap: &str, topic: &str, rows: usize) -> f64 {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let payload = [b'x'; PAYLOAD];
    let started = Instant::now();
    for i in 0..rows {
        let key = format!("k{}", i % KEYS);
        let id = format!("{i:032x}");
        let mut rec = BaseRecord::to(topic)
            .key(key.as_bytes())
            .payload(&payload[..])
            .headers(OwnedHeaders::new().insert(Header {
                key: "rebound.outbox.id",
                value: Some(id.as_bytes()),
            }));
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    p.poll(Duration::from_millis(1));
                }
            }
        }
    }
    p.flush(Duration::from_secs(60)).unwrap();
    rows as f64 / started.elapsed().as_secs_f64()
}

async fn count(pool: &PgPool, t: &TableName) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM \"{t}\""))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Fills `t` with `rows` rows (transactions of 100) and times a relay
/// emptying it. Rows/s from the relay's start (connections, metadata and
/// the first batch's warm-up included) and after its first batch.
async fn relay_rate(
    pool: &PgPool,
    bootstrap: &str,
    topic: &str,
    rows: usize,
    batch: usize,
) -> (f64, f64) {
    let t = table();
    init(&database_url(), &t).await.unwrap();
    for _ in 0..rows / 100 {
        sqlx::query(&format!(
            "INSERT INTO \"{t}\" (topic, key, payload) SELECT $1, 'k' || (random() * {KEYS})::int, \
             convert_to(repeat('x', {PAYLOAD}), 'UTF8') FROM generate_series(1, 100)"
        ))
        .bind(topic)
        .execute(pool)
        .await
        .unwrap();
    }
    let first_batch = Arc::new(AtomicU64::new(0));
    let observer = {
        let first = first_batch.clone();
        Arc::new(move |b: &rebound_outbox::BatchReport| {
            let _ =
                first.compare_exchange(0, b.finished_ms as u64, Ordering::SeqCst, Ordering::SeqCst);
        })
    };
    let config = RelayConfig::new(&database_url(), ProducerConfig::new(bootstrap))
        .unwrap()
        .with_table(t.clone())
        .with_batch_size(batch)
        .with_batch_observer(observer);
    let published = config.metrics().clone();
    let stop = CancellationToken::new();
    let started = Instant::now();
    let task = tokio::spawn(Relay::new(config).unwrap().run(stop.clone()));
    // Polls the relay's counter, not the table: a count(*) every few ms
    // would take CPU from the database the relay is measured on.
    while published.published.get() < rows as u64 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let whole = rows as f64 / started.elapsed().as_secs_f64();
    let after_first =
        (rebound_core::epoch_ms() as u64 - first_batch.load(Ordering::SeqCst)) as f64 / 1000.0;
    let steady = (rows - batch) as f64 / after_first;
    stop.cancel();
    task.await.unwrap().unwrap();
    assert_eq!(count(pool, &t).await, 0, "the relay emptied the table");
    (whole, steady)
}

/// Commit-to-Kafka latency at `rate` rows/s (one row per transaction,
/// timed from just before COMMIT to the record's arrival at a consumer).
async fn latency(pool: &PgPool, bootstrap: &str, rate: usize, secs: usize) -> (f64, f64, f64) {
    let t = table();
    init(&database_url(), &t).await.unwrap();
    let topic = unique_name("outbox-latency");
    create_topic(bootstrap, &topic, PARTITIONS).await.unwrap();
    let rows = rate * secs;
    let epoch = Instant::now();
    let committed: Arc<Vec<AtomicU64>> = Arc::new((0..rows).map(|_| AtomicU64::new(0)).collect());
    let arrived: Arc<Vec<AtomicU64>> = Arc::new((0..rows).map(|_| AtomicU64::new(0)).collect());
    let consumer = {
        let (b, topic, arrived) = (bootstrap.to_string(), topic.clone(), arrived.clone());
        std::thread::spawn(move || {
            let c: BaseConsumer = ClientConfig::new()
                .set("bootstrap.servers", &b)
                .set("group.id", unique_name("latency"))
                .set("fetch.wait.max.ms", "5")
                .set("fetch.queue.backoff.ms", "1")
                .create()
                .unwrap();
            let mut tpl = TopicPartitionList::new();
            for p in 0..PARTITIONS {
                tpl.add_partition_offset(&topic, p, Offset::Beginning)
                    .unwrap();
            }
            c.assign(&tpl).unwrap();
            let mut got = 0;
            let deadline = Instant::now() + Duration::from_secs(secs as u64 + 60);
            while got < rows && Instant::now() < deadline {
                if let Some(Ok(m)) = c.poll(Duration::from_millis(10)) {
                    let i: usize = std::str::from_utf8(m.payload().unwrap())
                        .unwrap()
                        .parse()
                        .unwrap();
                    arrived[i].store(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
                    got += 1;
                }
            }
        })
    };
    let config = RelayConfig::new(&database_url(), ProducerConfig::new(bootstrap))
        .unwrap()
        .with_table(t.clone());
    let stop = CancellationToken::new();
    let relay = tokio::spawn(Relay::new(config).unwrap().run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writers = 8;
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let (pool, t, topic, committed) =
                (pool.clone(), t.clone(), topic.clone(), committed.clone());
            tokio::spawn(async move {
                let sql = format!("INSERT INTO \"{t}\" (topic, key, payload) VALUES ($1, $2, $3)");
                let every = Duration::from_secs_f64(writers as f64 / rate as f64);
                let mut tick = tokio::time::interval(every);
                for i in (w..rows).step_by(writers) {
                    tick.tick().await;
                    let mut tx = pool.begin().await.unwrap();
                    sqlx::query(&sql)
                        .bind(&topic)
                        .bind(format!("k{}", i % KEYS))
                        .bind(i.to_string().into_bytes())
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                    committed[i].store(epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
                    tx.commit().await.unwrap();
                }
            })
        })
        .collect();
    let started = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let achieved = rows as f64 / started.elapsed().as_secs_f64();
    consumer.join().unwrap();
    stop.cancel();
    relay.await.unwrap().unwrap();
    let mut lat: Vec<f64> = (0..rows)
        .filter_map(|i| {
            let (c, a) = (
                committed[i].load(Ordering::Relaxed),
                arrived[i].load(Ordering::Relaxed),
            );
            (a > 0).then(|| (a.saturating_sub(c)) as f64 / 1000.0)
        })
        .collect();
    assert_eq!(lat.len(), rows, "every row arrived");
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    eprintln!("latency run: {achieved:.0} rows/s written");
    (pct(0.5), pct(0.99), achieved)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let rows = env_or("BENCH_ROWS", 200_000);
    let runs = env_or("BENCH_RUNS", 3);
    let batch = env_or("BENCH_BATCH", 5000);
    let writers = env_or("BENCH_WRITERS", 8);
    let rate = env_or("BENCH_RATE", 2000);
    let secs = env_or("BENCH_LATENCY_SECS", 20);
    let brokers = Brokers::start().unwrap();
    let bootstrap = brokers.bootstrap().to_string();
    let pool = PgPoolOptions::new()
        .max_connections(writers as u32 + 2)
        .connect(&database_url())
        .await
        .unwrap();
    let (mut plain_w, mut outbox_w, mut raw, mut relay, mut steady, mut hot) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let runs = if std::env::var("BENCH_LATENCY_ONLY").is_ok() {
        0
    } else {
        runs
    };
    for run in 1..=runs {
        let topic = unique_name("outbox-bench");
        create_topic(&bootstrap, &topic, PARTITIONS).await.unwrap();
        let writes = (rows / 4).max(1000);
        // Writers: the same columns without the commit-order trigger, then the outbox.
        let plain = table();
        init(&database_url(), &plain).await.unwrap();
        sqlx::query(&format!(
            "DROP TRIGGER \"{plain}_commit_order\" ON \"{plain}\""
        ))
        .execute(&pool)
        .await
        .unwrap();
        let p = insert_rate(&pool, &plain, &topic, writes, writers, KEYS).await;
        let outbox = table();
        init(&database_url(), &outbox).await.unwrap();
        let o = insert_rate(&pool, &outbox, &topic, writes, writers, KEYS).await;
        // Hot keys: most transactions share keys, so the per-key commit
        // lock serializes them.
        let hp = insert_rate(&pool, &plain, &topic, writes / 4, writers, HOT_KEYS).await;
        let ho = insert_rate(&pool, &outbox, &topic, writes / 4, writers, HOT_KEYS).await;
        eprintln!("run {run}: hot keys ({HOT_KEYS}): INSERT plain {hp:.0} rows/s, outbox {ho:.0} rows/s ({:.2})", ho / hp);
        hot.push(ho / hp);
        let r = raw_producer(&bootstrap, &topic, rows);
        let (rl, st) = relay_rate(&pool, &bootstrap, &topic, rows, batch).await;
        eprintln!(
            "run {run}: INSERT plain {p:.0} rows/s, outbox {o:.0} rows/s ({:.2}); raw producer {r:.0} rows/s; \
             relay {rl:.0} rows/s from start, {st:.0} after the first batch ({:.2} of raw)",
            o / p,
            st / r
        );
        steady.push(st);
        plain_w.push(p);
        outbox_w.push(o);
        raw.push(r);
        relay.push(rl);
        for t in [plain, outbox] {
            sqlx::query(&format!("DROP TABLE \"{t}\" CASCADE"))
                .execute(&pool)
                .await
                .unwrap();
        }
    }
    if runs > 0 {
        let ratio_w: Vec<f64> = outbox_w.iter().zip(&plain_w).map(|(o, p)| o / p).collect();
        let ratio_r: Vec<f64> = steady.iter().zip(&raw).map(|(r, p)| r / p).collect();
        println!(
        "medians over {runs} runs: writers ({writers}, 10-row transactions) plain INSERT {:.0} rows/s, \
         outbox INSERT {:.0} rows/s (ratio {:.2}); raw producer {:.0} rows/s; relay (batch {batch}) \
         {:.0} rows/s from start, {:.0} rows/s after the first batch (ratio to raw {:.2})",
        median(plain_w),
        median(outbox_w),
        median(ratio_w),
        median(raw),
        median(relay),
        median(steady),
        median(ratio_r)
    );
        println!(
            "hot keys ({HOT_KEYS}): outbox INSERT / plain INSERT median {:.2}",
            median(hot)
        );
    }
    let (p50, p99, achieved) = latency(&pool, &bootstrap, rate, secs).await;
    println!(
        "latency at {achieved:.0} rows/s (1-row transactions, {secs} s): p50 {p50:.1} ms, p99 {p99:.1} ms"
    );
}
