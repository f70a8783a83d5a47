//! Rebalances under churn on Apache Kafka itself: while records keep
//! arriving, members join, one leaves in the middle of a rebalance, one is
//! killed (SIGKILL: it never leaves the group, its session expires) and a
//! member joins again. Every record is handled, the group never stalls
//! (every partition owned and the input drained within a deadline), and the
//! final commits cover the whole topic.
//!
//! tansu's group coordinator stalls for good when a member leaves while
//! others are joining, so this runs on Apache Kafka only.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{index_of, wait_until, Bed, WorkerBed};
use rebound_testkit::{produce_records, unique_name, TestRecord};
use rebound_worker::{handler_fn, Ordering, Record, Worker, WorkerHandle};

const PARTITIONS: i32 = 8;
const RECORDS: usize = 12_000;
const KEYS: usize = 300;

use rebound_testkit::child_env as env;

/// The member that gets killed: handles records until SIGKILLed, appending
/// each handled index to a file (one write per record, so a kill loses
/// none of what it handled).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of members_join_leave_and_die_and_every_record_is_handled"]
async fn churn_member_child() {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env("CHURN_LOG"))
        .unwrap();
    let file = Arc::new(Mutex::new(file));
    let cfg = rebound_worker::WorkerConfig::builder()
        .with_brokers(env("CHURN_BROKERS"))
        .with_group(env("CHURN_GROUP"))
        .with_topic(env("CHURN_TOPIC"))
        .with_ordering(Ordering::Key)
        .with_session_timeout(Duration::from_millis(
            rebound_testkit::FAST_SESSION_TIMEOUT_MS as u64,
        ))
        .with_commit_interval(Duration::from_millis(200))
        .build()
        .unwrap();
    let handler = handler_fn(move |rec: &Record| {
        let i = index_of(rec);
        let file = file.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(1)).await;
            writeln!(file.lock().unwrap(), "{i}").unwrap();
            Ok(())
        }
    });
    let w = Worker::start(cfg, handler).await.unwrap();
    let err = w.join().await;
    panic!("the member ended on its own: {err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_join_leave_and_die_and_every_record_is_handled() {
    let bed = Bed::kafka("t", PARTITIONS).await;
    let group = unique_name("churn");
    let seen: Arc<Mutex<HashSet<usize>>> = Default::default();
    let start = |seen: Arc<Mutex<HashSet<usize>>>| {
        let cfg = bed
            .config(&group)
            .with_ordering(Ordering::Key)
            .with_max_in_flight(16)
            .build()
            .unwrap();
        Worker::start(
            cfg,
            handler_fn(move |rec: &Record| {
                let seen = seen.clone();
                let i = index_of(rec);
                async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    seen.lock().unwrap().insert(i);
                    Ok(())
                }
            }),
        )
    };

    // Input arrives throughout, about 1,000 records/s.
    let (bootstrap, topic) = (bed.bootstrap().to_string(), bed.topic.clone());
    let load = std::thread::spawn(move || {
        for chunk in (0..RECORDS).collect::<Vec<_>>().chunks(200) {
            let recs = chunk.iter().map(|i| TestRecord {
                partition: None,
                key: Some(format!("k{}", i % KEYS).into_bytes()),
                value: i.to_string().into_bytes(),
            });
            produce_records(&bootstrap, &topic, recs).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let handled = |n: usize| {
        let seen = seen.clone();
        move || {
            let d = seen.lock().unwrap().len();
            async move { d >= n }
        }
    };

    // A alone, then B and C join and A leaves while they are joining.
    let a = start(seen.clone()).await.unwrap();
    wait_until(Duration::from_secs(30), "A handling records", handled(500)).await;
    let (b, c) = tokio::join!(start(seen.clone()), start(seen.clone()));
    let (b, c) = (b.unwrap(), c.unwrap());
    a.stop().await.unwrap();
    all_owned(&[&b, &c], "B and C after A left mid-rebalance").await;

    // D joins in a child process and is killed while it owns partitions.
    let log = std::env::temp_dir().join(unique_name("churn-member"));
    let mut d = spawn_member(&bed, &group, &log);
    let deadline = Instant::now() + Duration::from_secs(60);
    while read_log(&log).len() < 200 {
        assert!(d.try_wait().unwrap().is_none(), "D exited on its own");
        assert!(Instant::now() < deadline, "D never handled records");
        std::thread::sleep(Duration::from_millis(50));
    }
    d.kill().unwrap();
    d.wait().unwrap();

    // E joins (again a new member) while D's session has not expired yet.
    let e = start(seen.clone()).await.unwrap();
    load.join().unwrap();
    all_owned(&[&b, &c, &e], "B, C and E after D's session expired").await;

    let all = || {
        let (seen, log) = (seen.clone(), log.clone());
        move || {
            let mut union = read_log(&log);
            union.extend(seen.lock().unwrap().iter().copied());
            async move { union.len() >= RECORDS }
        }
    };
    wait_until(Duration::from_secs(90), "every record handled", all()).await;
    for w in [b, c, e] {
        w.stop().await.unwrap();
    }
    let mut union = read_log(&log);
    union.extend(seen.lock().unwrap().iter().copied());
    let missing: Vec<usize> = (0..RECORDS)
        .filter(|i| !union.contains(i))
        .take(10)
        .collect();
    assert!(missing.is_empty(), "lost records, e.g. {missing:?}");
    let committed: i64 = bed.committed_total(&group);
    assert_eq!(
        committed, RECORDS as i64,
        "the final commits cover the topic"
    );
    let _ = std::fs::remove_file(&log);
}

/// Waits until the members own every partition between them, none twice.
async fn all_owned(members: &[&WorkerHandle], what: &str) {
    wait_until(Duration::from_secs(60), what, || async {
        let mut owned = Vec::new();
        for m in members {
            owned.extend(m.assigned().await);
        }
        let distinct: HashSet<_> = owned.iter().cloned().collect();
        distinct.len() == owned.len() && owned.len() == PARTITIONS as usize
    })
    .await;
}

fn spawn_member(bed: &Bed, group: &str, log: &std::path::Path) -> Child {
    rebound_testkit::test_child("apache_kafka_churn::churn_member_child")
        .env("CHURN_BROKERS", bed.bootstrap())
        .env("CHURN_GROUP", group)
        .env("CHURN_TOPIC", &bed.topic)
        .env("CHURN_LOG", log)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn read_log(path: &std::path::Path) -> HashSet<usize> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect()
}
