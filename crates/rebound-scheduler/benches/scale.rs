//! The embedded store at scale: fills a `file://` store with BENCH_TASKS
//! (default 10,000,000) pending tasks through the store's batch create, then
//! starts a fresh serve process on it and reports the time to the first
//! healthy `GET /health`, the process's peak resident memory (`VmHWM`) once
//! the background verification walk has read every task, and a few requests'
//! latencies on the full store. The first process is SIGKILLed and the
//! second start (which must recover) is measured the same way.
//!
//! Run: `cargo bench -p rebound-scheduler --bench scale`. Knobs:
//! `BENCH_TASKS`, `BENCH_PAYLOAD` (bytes of message_data, default 100),
//! `BENCH_DIR` (where the store directory is made, default /tmp; kept when
//! `BENCH_KEEP=1`, reused when it already holds a store),
//! `BENCH_SERVE` (a command to start instead of `rebound-scheduler-serve`,
//! e.g. `target/release/rebound serve`; it gets `HTTP_ADDR` and
//! `REBOUND_STORE` in its environment).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rebound_scheduler::store::file::FileStore;
use rebound_scheduler::store::Store;
use rebound_scheduler::task::{Destination, DestinationType, Task, TaskSpec};
use rebound_testkit::bench::env_or;

fn task(i: u64, payload: &str, now_ms: u64) -> Task {
    let spec = TaskSpec {
        id: format!("scale-{i:010}"),
        source: "scale".into(),
        destination: Destination {
            url: "http://127.0.0.1:9/hook".into(),
            ..Destination::default()
        },
        dead_destination: None,
        max_retries: 3,
        base_delay: 5,
        // Pending, not due: the serve process must not start delivering them.
        first_delay: 3600,
        client_id: format!("client-{}", i % 100),
        is_priority: i.is_multiple_of(10),
        message_data: payload.to_string(),
        destination_type: DestinationType::Http,
        trace_parent: Default::default(),
    };
    Task::new(spec, now_ms)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

async fn fill(dir: &std::path::Path, n: u64, payload: usize) {
    let store = Arc::new(FileStore::open(dir).await.unwrap());
    let payload = Arc::new("x".repeat(payload));
    let start = Instant::now();
    let (batch, lanes) = (10_000u64, 4u64);
    let mut joins = Vec::new();
    for lane in 0..lanes {
        let (s, p) = (store.clone(), payload.clone());
        joins.push(tokio::spawn(async move {
            let mut b = lane;
            while b * batch < n {
                let now = now_ms();
                let tasks = (b * batch..((b + 1) * batch).min(n))
                    .map(|i| task(i, &p, now))
                    .collect();
                s.create(tasks).await.unwrap();
                b += lanes;
                if lane == 0 && b % 100 == 0 {
                    eprintln!(
                        "  {} tasks, {:.0}/s",
                        b * batch,
                        (b * batch) as f64 / start.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for j in joins {
        j.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "filled {n} tasks in {secs:.1} s ({:.0} tasks/s)",
        n as f64 / secs
    );
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}

/// Starts a serve process on the store, reports when it is healthy and what
/// it holds in memory once the verification walk is done, then stops it:
/// with SIGKILL when `kill9` (the next start must then recover), else SIGTERM.
async fn measure(dir: &std::path::Path, kill9: bool) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cmd = std::env::var("BENCH_SERVE")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_rebound-scheduler-serve").into());
    let mut parts = cmd.split_whitespace();
    let start = Instant::now();
    let mut child = Command::new(parts.next().unwrap())
        .args(parts)
        .env("HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("REBOUND_STORE", format!("file://{}", dir.display()))
        .env("KAFKA_BROKERS", "127.0.0.1:9")
        .env("LOG_LEVEL", "info")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, verified) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("store verified") || line.contains("damaged") {
                let _ = tx.send(line);
            }
        }
    });
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    loop {
        if let Ok(r) = http.get(format!("{base}/health")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(start.elapsed() < Duration::from_secs(120), "never healthy");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let ready = start.elapsed();
    println!(
        "first healthy GET /health {:.0} ms after spawn",
        ready.as_secs_f64() * 1000.0
    );
    println!("VmHWM at ready: {} MB", status_kb(pid, "VmHWM:") / 1024);
    let t = Instant::now();
    let r = http
        .get(format!("{base}/tasks/scale-0004999999"))
        .send()
        .await
        .unwrap();
    println!(
        "GET /tasks/<id> on the full store: {} in {:.1} ms",
        r.status(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    let t = Instant::now();
    let r = http
        .get(format!("{base}/tasks?limit=100"))
        .send()
        .await
        .unwrap();
    println!(
        "GET /tasks?limit=100: {} in {:.1} ms",
        r.status(),
        t.elapsed().as_secs_f64() * 1000.0
    );
    let line = verified
        .recv_timeout(Duration::from_secs(1800))
        .expect("verification ended");
    println!("{}", line.trim());
    println!(
        "after the verification walk ({:.0} s): VmHWM {} MB, VmRSS {} MB",
        start.elapsed().as_secs_f64(),
        status_kb(pid, "VmHWM:") / 1024,
        status_kb(pid, "VmRSS:") / 1024
    );
    let signal = if kill9 { "-KILL" } else { "-TERM" };
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
    let _ = child.wait();
    println!("stopped with {signal}");
}

fn main() {
    let n = env_or("BENCH_TASKS", 10_000_000) as u64;
    let payload = env_or("BENCH_PAYLOAD", 100);
    let base = std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into());
    let dir = std::path::Path::new(&base).join(format!("rebound-scale-{n}-{payload}"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if !dir.join(rebound_scheduler::store::file::DB_FILE).exists() {
        rt.block_on(fill(&dir, n, payload));
    }
    let size = std::fs::metadata(dir.join(rebound_scheduler::store::file::DB_FILE))
        .unwrap()
        .len();
    println!("store file: {:.2} GB", size as f64 / 1e9);
    println!("-- fresh start after a clean stop");
    rt.block_on(measure(&dir, true));
    println!("-- start after SIGKILL");
    rt.block_on(measure(&dir, false));
    if std::env::var("BENCH_KEEP").as_deref() != Ok("1") {
        let _ = std::fs::remove_dir_all(&dir);
    }
}
