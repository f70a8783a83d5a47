//! Scheduler benchmarks mirroring Rebound's (task creation sequential and
//! parallel; payloads 100 B–100 KB; retry configs; initialisation) for the
//! embedded and the Redis store, plus batched creates and dispatch latency.
//! `redis-benchmark -t zadd` is run in the same process run as the reference.
//!
//! Run: `cargo bench -p rebound-scheduler --bench scheduler` (REDIS_URL picks
//! the Redis; `-- --runs N` changes the number of runs, median reported).
//! Knobs: `BENCH_STORES=file` (or `redis`; default both) runs one store's
//! figures only, `BENCH_DIR` is where file stores are created (default /tmp),
//! `BENCH_RT=current` uses tokio's current-thread runtime.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use rebound_scheduler::deliver::{Deliver, Delivery, DeliveryError};
use rebound_scheduler::dispatcher::DispatchConfig;
use rebound_scheduler::store;
use rebound_scheduler::task::{Destination, NewTask};
use rebound_scheduler::Scheduler;
use rebound_testkit::bench::median;
use tokio_util::sync::CancellationToken;

const PARALLEL: usize = 50;

fn task(id: String, payload: usize, max_retries: i64, base_delay: i64) -> NewTask {
    NewTask {
        id: Some(id),
        source: Some("bench".into()),
        destination: Some(Destination {
            url: "http://127.0.0.1:9/hook".into(),
            ..Destination::default()
        }),
        dead_destination: None,
        max_retries: Some(max_retries),
        base_delay: Some(base_delay),
        // Due base_delay after creation, as every task was before the first
        // attempt moved to creation time (Rebound parity): the same workload.
        first_delay: Some(base_delay),
        client_id: Some("bench".into()),
        is_priority: None,
        message_data: Some("x".repeat(payload)),
        destination_type: Some("http".into()),
        trace_parent: Default::default(),
    }
}

/// A fresh store: a new directory or a new Redis prefix.
struct Fresh {
    url: String,
    _dir: Option<tempfile::TempDir>,
    prefix: Option<String>,
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn fresh(kind: &str) -> Fresh {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if kind == "file" {
        let dir =
            tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
                .unwrap();
        Fresh {
            url: format!("file://{}", dir.path().display()),
            _dir: Some(dir),
            prefix: None,
        }
    } else {
        let prefix = format!("bench-{}-{n}", std::process::id());
        Fresh {
            url: format!("{}?prefix={prefix}", redis_url()),
            _dir: None,
            prefix: Some(prefix),
        }
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if let Some(p) = &self.prefix {
            let client = redis::Client::open(redis_url()).unwrap();
            let mut c = client.get_connection().unwrap();
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{{{p}}}*"))
                .query(&mut c)
                .unwrap();
            for chunk in keys.chunks(1000) {
                let _: () = redis::cmd("UNLINK").arg(chunk).query(&mut c).unwrap();
            }
        }
    }
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

async fn open(f: &Fresh) -> Scheduler {
    Scheduler::new(store::open(&f.url).await.unwrap())
}

/// Sequential creates: tasks/s.
async fn sequential(kind: &str, n: usize, payload: usize, retries: i64, base: i64) -> f64 {
    let f = fresh(kind);
    let s = open(&f).await;
    let start = Instant::now();
    for i in 0..n {
        s.create_task(task(format!("s{i}"), payload, retries, base))
            .await
            .unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// `clients` concurrent callers of `create_task`: tasks/s.
async fn parallel(kind: &str, n: usize, payload: usize, clients: usize) -> f64 {
    let f = fresh(kind);
    let s = open(&f).await;
    let start = Instant::now();
    let mut joins = Vec::new();
    for c in 0..clients {
        let s = s.clone();
        joins.push(tokio::spawn(async move {
            for i in 0..n / clients {
                s.create_task(task(format!("p{c}-{i}"), payload, 3, 5))
                    .await
                    .unwrap();
            }
        }));
    }
    for j in joins {
        j.await.unwrap();
    }
    (n / clients * clients) as f64 / start.elapsed().as_secs_f64()
}

/// `create_tasks` in batches of `batch`, `clients` batches in flight: tasks/s.
async fn batched(kind: &str, n: usize, batch: usize, clients: usize) -> f64 {
    let f = fresh(kind);
    let s = open(&f).await;
    let start = Instant::now();
    let mut joins = Vec::new();
    for c in 0..clients {
        let s = s.clone();
        joins.push(tokio::spawn(async move {
            for b in 0..n / clients / batch {
                let tasks = (0..batch)
                    .map(|i| task(format!("b{c}-{b}-{i}"), 100, 3, 5))
                    .collect();
                for r in s.create_tasks(tasks).await.unwrap() {
                    r.unwrap();
                }
            }
        }));
    }
    for j in joins {
        j.await.unwrap();
    }
    (n / clients / batch * batch * clients) as f64 / start.elapsed().as_secs_f64()
}

/// Creates tasks `make(0..n)` in calls of 1,000; each must be created.
async fn fill(s: &Scheduler, n: usize, make: impl Fn(usize) -> NewTask) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let tasks = chunk.iter().map(|i| make(*i)).collect();
        for r in s.create_tasks(tasks).await.unwrap() {
            r.unwrap();
        }
    }
}

/// Time to open a store holding `existing` tasks (replay for the file store).
async fn initialisation(kind: &str, existing: usize) -> f64 {
    let f = fresh(kind);
    {
        let s = open(&f).await;
        fill(&s, existing, |i| task(format!("i{i}"), 100, 3, 5)).await;
    }
    let start = Instant::now();
    let s = open(&f).await;
    s.health().await.unwrap();
    start.elapsed().as_secs_f64() * 1000.0
}

/// Records how late each delivery is: the payload carries the creation time.
struct Probe {
    late_ms: Mutex<Vec<f64>>,
}

impl Deliver for Probe {
    fn deliver<'a>(&'a self, d: Delivery<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        let now = now_ms_f();
        let created: f64 = std::str::from_utf8(d.payload).unwrap().parse().unwrap();
        self.late_ms.lock().unwrap().push(now - (created + 1000.0));
        async { Ok(()) }.boxed()
    }
}

fn now_ms_f() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0
}

/// Creates `rate` tasks/s for `secs` seconds (base_delay 1 s) and measures how
/// late each is dispatched: (p50, p99, max) in ms.
async fn dispatch_latency(kind: &str, rate: usize, secs: usize) -> (f64, f64, f64) {
    let f = fresh(kind);
    let s = open(&f).await;
    let probe = Arc::new(Probe {
        late_ms: Mutex::new(Vec::new()),
    });
    let stop = CancellationToken::new();
    let run = tokio::spawn(
        s.dispatcher(probe.clone(), DispatchConfig::default())
            .run(stop.clone()),
    );
    let per_tick = rate / 1000;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let total = rate * secs;
    let mut made = 0;
    while made < total {
        tick.tick().await;
        let now = now_ms_f();
        let tasks = (0..per_tick)
            .map(|i| {
                let mut t = task(format!("l{made}-{i}"), 0, 0, 1);
                t.message_data = Some(format!("{now:.3}"));
                t
            })
            .collect();
        s.create_tasks(tasks).await.unwrap();
        made += per_tick;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while probe.late_ms.lock().unwrap().len() < total && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    run.await.unwrap();
    let mut v = probe.late_ms.lock().unwrap().clone();
    assert_eq!(v.len(), total, "every task dispatched");
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let p = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    (p(0.5), p(0.99), *v.last().unwrap())
}

/// Counts deliveries.
struct Count(std::sync::atomic::AtomicUsize);

impl Deliver for Count {
    fn deliver<'a>(&'a self, _: Delivery<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        async { Ok(()) }.boxed()
    }
}

/// `n` tasks due at once, then a dispatcher (default settings) delivering
/// them to a no-op destination: tasks/s from its start until it has
/// stopped after the last delivery (its stop waits for the finishes in
/// flight). Every task is claimed (256 a claim) and durably finished.
async fn drain(kind: &str, n: usize) -> f64 {
    let f = fresh(kind);
    let s = open(&f).await;
    fill(&s, n, |i| {
        let mut t = task(format!("d{i}"), 100, 0, 1);
        t.first_delay = Some(0);
        t
    })
    .await;
    let count = Arc::new(Count(Default::default()));
    let stop = CancellationToken::new();
    let start = Instant::now();
    let run = tokio::spawn(
        s.dispatcher(count.clone(), DispatchConfig::default())
            .run(stop.clone()),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while count.0.load(std::sync::atomic::Ordering::Relaxed) < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.cancel();
    run.await.unwrap();
    let rate = n as f64 / start.elapsed().as_secs_f64();
    assert_eq!(
        count.0.load(std::sync::atomic::Ordering::Relaxed),
        n,
        "every task delivered once"
    );
    rate
}

/// Sequential ZADDs through redis-rs (the client the store uses): how much of
/// the gap to redis-benchmark is the client.
async fn redis_rs_zadd(n: usize) -> f64 {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("bench-zadd-{}", std::process::id());
    let start = Instant::now();
    for i in 0..n {
        let _: i64 = redis::cmd("ZADD")
            .arg(&key)
            .arg(i)
            .arg(i)
            .query_async(&mut c)
            .await
            .unwrap();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut c)
        .await
        .unwrap();
    rate
}

fn redis_benchmark(n: usize, clients: usize) -> f64 {
    let u = url::Url::parse(&redis_url()).unwrap();
    let out = std::process::Command::new("redis-benchmark")
        .args(["-h", u.host_str().unwrap_or("127.0.0.1")])
        .args(["-p", &u.port().unwrap_or(6379).to_string()])
        .args([
            "-t",
            "zadd",
            "-n",
            &n.to_string(),
            "-c",
            &clients.to_string(),
            "-q",
        ])
        .output()
        .expect("redis-benchmark on PATH");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .split(['\r', '\n'])
        .rfind(|l| l.contains("requests per second"))
        .unwrap_or_else(|| panic!("unexpected redis-benchmark output: {text}"));
    line.split_whitespace()
        .find_map(|w| w.parse::<f64>().ok())
        .unwrap()
}

struct Table(Vec<[String; 4]>);

impl Table {
    fn row(&mut self, what: &str, store: &str, value: String, note: String) {
        println!("| {what} | {store} | {value} | {note} |");
        self.0.push([what.into(), store.into(), value, note]);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let rt = if std::env::var("BENCH_RT").as_deref() == Ok("current") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    let mut t = Table(Vec::new());
    let med = |f: &mut dyn FnMut() -> f64| median((0..runs).map(|_| f()).collect());
    println!("runs per figure: {runs} (median)\n");
    println!("| benchmark | store | result | note |\n|---|---|---|---|");

    // The reference and the store are measured in interleaved pairs: on this
    // VM loopback round trips vary several-fold with load on the other core,
    // so each ratio compares figures taken seconds apart.
    let stores = std::env::var("BENCH_STORES").unwrap_or_else(|_| "redis,file".into());
    let stores: Vec<&str> = ["redis", "file"]
        .into_iter()
        .filter(|k| stores.split(',').any(|s| s.trim() == *k))
        .collect();
    let (mut z1, mut rs, mut seq, mut zp, mut par) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        if !stores.contains(&"redis") {
            break;
        }
        z1.push(redis_benchmark(20_000, 1));
        rs.push(rt.block_on(redis_rs_zadd(20_000)));
        seq.push(rt.block_on(sequential("redis", 10_000, 100, 3, 5)));
        zp.push(redis_benchmark(200_000, PARALLEL));
        par.push(rt.block_on(parallel("redis", 50_000, 100, PARALLEL)));
    }
    let ratio = |a: &[f64], b: &[f64]| median(a.iter().zip(b).map(|(x, y)| x / y).collect());
    let spread = |v: &[f64]| {
        let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
        let hi = v.iter().cloned().fold(0.0, f64::max);
        format!("range {lo:.0}-{hi:.0}")
    };
    if stores.contains(&"redis") {
        t.row(
            "redis-benchmark ZADD -c 1",
            "redis",
            format!("{:.0} ops/s", median(z1.clone())),
            format!("reference; {}", spread(&z1)),
        );
        t.row(
            "redis-rs ZADD sequential",
            "redis",
            format!("{:.0} ops/s", median(rs.clone())),
            format!(
                "client reference; {:.2}x ZADD -c 1 (paired); {}",
                ratio(&rs, &z1),
                spread(&rs)
            ),
        );
        t.row(
            "create sequential, 100 B",
            "redis",
            format!("{:.0} tasks/s", median(seq.clone())),
            format!(
                "**{:.2}x ZADD -c 1** (paired), {:.2}x redis-rs ZADD; {}",
                ratio(&seq, &z1),
                ratio(&seq, &rs),
                spread(&seq)
            ),
        );
        t.row(
            &format!("redis-benchmark ZADD -c {PARALLEL}"),
            "redis",
            format!("{:.0} ops/s", median(zp.clone())),
            format!("reference; {}", spread(&zp)),
        );
        t.row(
            &format!("create parallel ({PARALLEL} callers), 100 B"),
            "redis",
            format!("{:.0} tasks/s", median(par.clone())),
            format!(
                "**{:.2}x ZADD -c {PARALLEL}** (paired); {}",
                ratio(&par, &zp),
                spread(&par)
            ),
        );
    }

    // BENCH_ONLY=parallel,batched,… runs only those figures of the stores
    // (sequential, parallel, batched, payload, retries, init, drain, dispatch).
    let only = std::env::var("BENCH_ONLY").ok();
    let want = |what: &str| {
        only.as_ref()
            .is_none_or(|o| o.split(',').any(|w| w == what))
    };
    for kind in stores {
        let n_seq = if kind == "file" { 2_000 } else { 10_000 };
        if kind == "file" && want("sequential") {
            let seq = med(&mut || rt.block_on(sequential(kind, n_seq, 100, 3, 5)));
            t.row(
                "create sequential, 100 B",
                kind,
                format!("{seq:.0} tasks/s"),
                "one fsync per create".into(),
            );
        }
        if kind == "file" && want("parallel") {
            let par = med(&mut || rt.block_on(parallel(kind, 50_000, 100, PARALLEL)));
            t.row(
                &format!("create parallel ({PARALLEL} callers), 100 B"),
                kind,
                format!("{par:.0} tasks/s"),
                "group commit: durable creates".into(),
            );
        }
        if want("batched") {
            let bat = med(&mut || rt.block_on(batched(kind, 200_000, 256, 4)));
            t.row(
                "create batched (256 per call, 4 in flight), 100 B",
                kind,
                format!("{bat:.0} tasks/s"),
                String::new(),
            );
        }
        for size in [100, 1_000, 10_000, 100_000] {
            if !want("payload") {
                break;
            }
            let n = (20_000_000 / size).clamp(1_000, 20_000);
            let v = med(&mut || rt.block_on(parallel(kind, n, size, PARALLEL)));
            t.row(
                &format!("create parallel, payload {size} B"),
                kind,
                format!("{v:.0} tasks/s"),
                format!("{:.1} MB/s", v * size as f64 / 1e6),
            );
        }
        for (retries, base) in [(1, 5), (3, 5), (5, 10), (10, 30)] {
            if !want("retries") {
                break;
            }
            let v = med(&mut || rt.block_on(sequential(kind, n_seq / 2, 100, retries, base)));
            t.row(
                &format!("create sequential, retries {retries} / base {base} s"),
                kind,
                format!("{v:.0} tasks/s"),
                String::new(),
            );
        }
        for existing in [0, 100_000] {
            if !want("init") {
                break;
            }
            let v = med(&mut || rt.block_on(initialisation(kind, existing)));
            t.row(
                &format!("initialisation, {existing} tasks stored"),
                kind,
                format!("{v:.1} ms"),
                String::new(),
            );
        }
        if want("drain") {
            let v = med(&mut || rt.block_on(drain(kind, 100_000)));
            t.row(
                "drain 100,000 due tasks (claim, no-op delivery, finish)",
                kind,
                format!("{v:.0} tasks/s"),
                "dispatcher defaults: batch 256, 256 in flight".into(),
            );
        }
        if !want("dispatch") {
            continue;
        }
        let lat: Vec<(f64, f64, f64)> = (0..runs)
            .map(|_| rt.block_on(dispatch_latency(kind, 5_000, 4)))
            .collect();
        let p50 = median(lat.iter().map(|l| l.0).collect());
        let p99 = median(lat.iter().map(|l| l.1).collect());
        let max = median(lat.iter().map(|l| l.2).collect());
        t.row(
            "dispatch lateness at 5,000 due tasks/s",
            kind,
            format!("p99 {p99:.1} ms"),
            format!("p50 {p50:.1} ms, max {max:.1} ms"),
        );
    }
    let _ = t.0.len();
}
