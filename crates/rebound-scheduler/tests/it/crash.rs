//! kill -9 of the serve process under load loses no acknowledged task: a
//! child `rebound-scheduler-serve` takes creates from concurrent clients, is
//! SIGKILLed mid-load, restarted on the same store, and every task that got a
//! 201 is delivered. Run for the embedded store and for Redis.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::common::{http_task, Recorder};
use rebound_testkit::KillOnDrop;

struct Serve {
    child: KillOnDrop,
    base: String,
}

impl Serve {
    fn start(store: &str) -> Serve {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rebound-scheduler-serve"))
            .env("HTTP_ADDR", "127.0.0.1:0")
            .env("REBOUND_STORE", store)
            .env("REBOUND_LEASE_SECS", "3")
            .env("KAFKA_BROKERS", "127.0.0.1:9")
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{line:?}"));
        Serve {
            base: format!("http://{addr}"),
            child: KillOnDrop(child),
        }
    }

    fn kill9(mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }
}

/// The database a killed process left opens without a walk of the whole
/// file (seconds for gigabytes): every commit recorded its allocator state
/// (redb quick-repair). (The commits of an open are checked on a large
/// file in `file_store`: this small one is verified at every open.)
fn opens_without_full_repair(db: &Path) {
    // A copy: the restart must still find the file as the kill left it.
    let copy = tempfile::tempdir().unwrap();
    let image = copy.path().join("tasks.redb");
    std::fs::copy(db, &image).unwrap();
    let repaired = Arc::new(AtomicBool::new(false));
    let seen = repaired.clone();
    let opened = redb::Builder::new()
        .set_repair_callback(move |_| seen.store(true, Ordering::SeqCst))
        .open(&image)
        .unwrap();
    drop(opened);
    assert!(
        !repaired.load(Ordering::SeqCst),
        "{} needed a full repair after the kill",
        db.display()
    );
}

/// `db`: the embedded store's database file, checked after the kill.
async fn crash_under_load_loses_nothing(store: &str, db: Option<&Path>) {
    let rec = Recorder::start().await;
    let first = Serve::start(store);
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut clients = Vec::new();
    for c in 0..8 {
        let base = first.base.clone();
        let acked = acked.clone();
        let url = rec.url("crash");
        clients.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 0.. {
                let id = format!("crash-{c}-{i}");
                let r = http
                    .post(format!("{base}/tasks"))
                    .json(&http_task(&id, &url, 0, 1))
                    .send()
                    .await;
                match r {
                    Ok(resp) if resp.status().as_u16() == 201 => acked.lock().unwrap().push(id),
                    Ok(resp) => panic!("unexpected {}", resp.status()),
                    Err(_) => break, // the server died
                }
            }
        }));
    }
    // Long enough that some tasks are due and in flight when the kill lands,
    // and that the load is real however busy the machine is.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    rebound_testkit::eventually(Duration::from_secs(20), "200 creates acknowledged", || {
        let enough = acked.lock().unwrap().len() >= 200;
        async move { enough }
    })
    .await;
    first.kill9();
    if let Some(db) = db {
        opens_without_full_repair(db);
    }
    for c in clients {
        c.await.unwrap();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(acked.len() > 100, "load too light: {} acked", acked.len());
    let before = rec.received().len();
    eprintln!(
        "{store}: {} creates acknowledged, {before} delivered before kill -9",
        acked.len()
    );
    let _second = Serve::start(store);
    let want: HashSet<String> = acked.iter().map(|id| format!("{id}|0")).collect();
    rec.wait_for(
        Duration::from_secs(60),
        "every acknowledged task delivered",
        |r| {
            let got: HashSet<String> = r.iter().map(|x| x.header("x-message-key")).collect();
            want.is_subset(&got)
        },
    )
    .await;
}

#[tokio::test]
async fn kill9_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = format!("file://{}", dir.path().display());
    let db = dir.path().join(rebound_scheduler::store::file::DB_FILE);
    crash_under_load_loses_nothing(&store, Some(&db)).await;
}

#[tokio::test]
async fn kill9_redis_store() {
    let prefix = rebound_testkit::unique_name("crash");
    let store = format!("{}?prefix={prefix}", rebound_testkit::redis_url());
    crash_under_load_loses_nothing(&store, None).await;
}
