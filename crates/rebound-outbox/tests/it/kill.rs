//! The relay as a child process, SIGKILLed at random points during the
//! writers' load: no row is lost, and the duplicates (a batch in flight
//! re-published by the next relay) are at most one batch per kill.
//!
//! The child is this test binary running the ignored `kill::relay_child`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use rebound_outbox::{BatchReport, Relay, RelayConfig, TableName};
use rebound_producer::ProducerConfig;
use tokio_util::sync::CancellationToken;

use crate::common::{by_outbox_id, pg_pool, pg_rows_left, wait_until_zero, Bed};
use crate::concurrent::{assert_key_order, commit_order, create_bookkeeping, write_load};

const BATCH: usize = 500;
const KILLS: usize = 10;

/// A relay child process; its batches are appended to `log` as
/// `pid started_ms finished_ms published`.
pub struct ChildRelay {
    pub child: Child,
}

impl ChildRelay {
    pub fn spawn(bed: &Bed, log: &Path, batch: usize) -> ChildRelay {
        let child = rebound_testkit::test_child("kill::relay_child")
            .arg("--test-threads=1")
            .env("OUTBOX_CHILD_URL", &bed.url)
            .env("OUTBOX_CHILD_TABLE", bed.table.as_str())
            .env("OUTBOX_CHILD_BROKERS", bed.bootstrap())
            .env("OUTBOX_CHILD_BATCH", batch.to_string())
            .env("OUTBOX_CHILD_LOG", log)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn relay child");
        ChildRelay { child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

/// One logged batch.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub pid: u32,
    pub start: i64,
    pub end: i64,
    pub published: usize,
}

pub fn windows(log: &Path) -> Vec<Window> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() == 4).then(|| Window {
                pid: f[0].parse().unwrap(),
                start: f[1].parse().unwrap(),
                end: f[2].parse().unwrap(),
                published: f[3].parse().unwrap(),
            })
        })
        .collect()
}

pub fn temp_log(name: &str) -> PathBuf {
    std::env::temp_dir().join(rebound_testkit::unique_name(name))
}

/// The child: runs a relay from the environment until killed.
#[test]
#[ignore = "run as a child process by the kill and standby tests"]
fn relay_child() {
    let Ok(url) = std::env::var("OUTBOX_CHILD_URL") else {
        return;
    };
    let var = rebound_testkit::child_env;
    let log = PathBuf::from(var("OUTBOX_CHILD_LOG"));
    let pid = std::process::id();
    let observer = Arc::new(move |b: &BatchReport| {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        writeln!(
            f,
            "{pid} {} {} {}",
            b.started_ms, b.finished_ms, b.published
        )
        .unwrap();
    });
    let config = RelayConfig::new(&url, ProducerConfig::new(var("OUTBOX_CHILD_BROKERS")))
        .unwrap()
        .with_table(TableName::new(var("OUTBOX_CHILD_TABLE")).unwrap())
        .with_batch_size(var("OUTBOX_CHILD_BATCH").parse().unwrap())
        .with_poll_interval(Duration::from_millis(200))
        .with_standby_interval(Duration::from_millis(200))
        .with_batch_observer(observer);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(Relay::new(config).unwrap().run(CancellationToken::new()))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_killed_at_random_points_loses_nothing() {
    let bed = Bed::pg(4).await;
    let pool = pg_pool(16).await;
    create_bookkeeping(&pool, &bed.table).await;
    let log = temp_log("outbox-kill.log");
    let load = {
        let (pool, t, topic) = (pool.clone(), bed.table.clone(), bed.topic.clone());
        tokio::spawn(async move { write_load(&pool, &t, &topic, 40_000, 10).await })
    };
    let started = Instant::now();
    let mut kills_during_load = 0;
    for _ in 0..KILLS {
        let child = ChildRelay::spawn(&bed, &log, BATCH);
        let wait = rand::rng().random_range(300..1500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        if !load.is_finished() {
            kills_during_load += 1;
        }
        child.kill();
    }
    let last = ChildRelay::spawn(&bed, &log, BATCH);
    let written = load.await.unwrap();
    wait_until_zero("rows left", Duration::from_secs(120), || {
        pg_rows_left(&pool, &bed.table)
    })
    .await;
    last.kill();
    eprintln!(
        "{written} rows, {KILLS} kills ({kills_during_load} during the load) in {:?}",
        started.elapsed()
    );
    assert!(kills_during_load >= KILLS / 2, "kills must hit the load");

    let recs = bed.read();
    let ids = by_outbox_id(&recs);
    assert_eq!(ids.len(), written, "no row lost");
    let duplicates = recs.len() - ids.len();
    let logged: usize = windows(&log).iter().map(|w| w.published).sum();
    eprintln!("{duplicates} duplicates; {logged} rows in logged (finished) batches");
    assert!(logged <= recs.len());
    assert!(
        duplicates <= KILLS * BATCH,
        "{duplicates} duplicates exceed one batch ({BATCH}) per kill ({KILLS})"
    );
    assert!(ids.values().all(|copies| copies.len() <= KILLS + 1));
    assert_key_order(&recs, &commit_order(&pool, &bed.table).await);
    let _ = std::fs::remove_file(log);
    bed.drop_pg().await;
}
