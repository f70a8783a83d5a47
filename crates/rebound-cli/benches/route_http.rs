//! Kafka → HTTP delivery throughput of one `rebound run` route against a
//! local endpoint with simulated work (default 2 ms, keep-alive), and the
//! same-run reference: a plain reqwest loop posting the same records to the
//! same endpoint at the same concurrency. Both rates are measured at the
//! endpoint, from the first request's arrival to the last one's answer (the
//! route's start and group join are excluded). The route is a `rebound run`
//! process; the reference loop runs on a runtime of its own (not the
//! endpoint's), so neither client shares the endpoint's threads.
//!
//! `cargo bench -p rebound-cli --bench route_http`
//! Knobs: BENCH_RECORDS (20000), BENCH_CONCURRENCY (64), BENCH_WORK_MS (2),
//! BENCH_RUNS (5), BENCH_PARTITIONS (4), REBOUND_TEST_BROKERS.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use futures::StreamExt;
use rebound_testkit::bench::{env_or, median};
use rebound_testkit::{create_topic, produce_records, unique_name, Brokers, TestRecord};

/// Requests answered and the first and last of them.
#[derive(Default)]
struct Counter {
    done: AtomicU64,
    span: Mutex<Option<(Instant, Instant)>>,
}

impl Counter {
    fn reset(&self) {
        self.done.store(0, Ordering::SeqCst);
        *self.span.lock().unwrap() = None;
    }
    /// Records/s over the span once `n` requests are answered.
    async fn rate_when(&self, n: u64, timeout: Duration) -> f64 {
        let until = Instant::now() + timeout;
        while self.done.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < until,
                "only {} of {n} arrived",
                self.done.load(Ordering::SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (first, last) = self.span.lock().unwrap().unwrap();
        n as f64 / last.duration_since(first).as_secs_f64()
    }
}

async fn hook(
    State((c, work)): State<(Arc<Counter>, Duration)>,
    _body: axum::body::Bytes,
) -> StatusCode {
    let arrived = Instant::now();
    tokio::time::sleep(work).await;
    {
        let mut s = c.span.lock().unwrap();
        let (first, _) = s.get_or_insert((arrived, arrived));
        *s = Some((*first, Instant::now()));
    }
    c.done.fetch_add(1, Ordering::SeqCst);
    StatusCode::OK
}

/// The plain loop: the same values, `concurrency` requests at a time, one
/// pooled keep-alive client, on its own multi-threaded runtime.
fn plain(url: &str, values: &[Vec<u8>], concurrency: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .unwrap();
        futures::stream::iter(values.iter().cloned())
            .map(|v| {
                let req = client.post(url).body(v);
                async move { req.send().await.unwrap().error_for_status().unwrap() }
            })
            .buffer_unordered(concurrency)
            .for_each(|_| async {})
            .await;
    });
}

/// One `rebound run` route over the topic; killed once measured.
fn route(
    bootstrap: &str,
    topic: &str,
    url: &str,
    concurrency: usize,
) -> (std::process::Child, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bench.toml");
    let ops = format!("127.0.0.1:{}", rebound_testkit::free_port().unwrap());
    std::fs::write(
        &file,
        format!(
            "ops_addr = \"{ops}\"\n[kafka]\nbrokers = \"{bootstrap}\"\n\n[[route]]\nname = \"bench\"\n\
             topic = \"{topic}\"\ngroup = \"{}\"\nhttp_sink = \"{url}\"\nordering = \"unordered\"\n\
             max_in_flight = {concurrency}\nsession_timeout = \"6s\"\n",
            unique_name("bench")
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_rebound"))
        .args(["run", file.to_str().unwrap()])
        .env("LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    (child, dir)
}

fn main() {
    let n = env_or("BENCH_RECORDS", 20_000);
    let concurrency = env_or("BENCH_CONCURRENCY", 64);
    let work = Duration::from_millis(env_or("BENCH_WORK_MS", 2) as u64);
    let runs = env_or("BENCH_RUNS", 5);
    let partitions = env_or("BENCH_PARTITIONS", 4) as i32;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let brokers = Brokers::start().unwrap();
        let topic = unique_name("http");
        create_topic(brokers.bootstrap(), &topic, partitions).await.unwrap();
        let values: Vec<Vec<u8>> = (0..n).map(|i| format!("{i:0100}").into_bytes()).collect();
        produce_records(
            brokers.bootstrap(),
            &topic,
            values.iter().enumerate().map(|(i, v)| TestRecord {
                partition: None,
                key: Some(format!("k{}", i % 1000).into_bytes()),
                value: v.clone(),
            }),
        )
        .unwrap();
        let counter = Arc::new(Counter::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new().route("/hook", post(hook)).with_state((counter.clone(), work));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        println!("{n} records of 100 B, {partitions} partitions, concurrency {concurrency}, {work:?} of work per request");
        println!("| run | plain reqwest loop | rebound run route | ratio |");
        println!("|---|---|---|---|");
        let (mut ps, mut rs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for run in 1..=runs {
            counter.reset();
            let (u, v) = (url.clone(), values.clone());
            tokio::task::spawn_blocking(move || plain(&u, &v, concurrency))
                .await
                .unwrap();
            let p = counter.rate_when(n as u64, Duration::from_secs(600)).await;
            counter.reset();
            let (mut child, _dir) = route(brokers.bootstrap(), &topic, &url, concurrency);
            let r = counter.rate_when(n as u64, Duration::from_secs(600)).await;
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let _ = child.wait();
            println!("| {run} | {p:.0} | {r:.0} | {:.2} |", r / p);
            ps.push(p);
            rs.push(r);
            ratios.push(r / p);
        }
        println!(
            "| **median** | **{:.0} rec/s** | **{:.0} rec/s** | **{:.2}** |",
            median(ps),
            median(rs),
            median(ratios)
        );
    });
}
