//! Two scheduler instances sharing one Redis (separate connections, same key
//! prefix) deliver every task exactly once in a crash-free run, and tasks
//! created by a stopped instance are delivered by another.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{http_task, Recorder};
use rebound_scheduler::deliver::Deliverer;
use rebound_scheduler::dispatcher::DispatchConfig;
use rebound_scheduler::store;
use rebound_scheduler::task::NewTask;
use rebound_scheduler::Scheduler;
use tokio_util::sync::CancellationToken;

async fn instance(url: &str, stop: &CancellationToken) -> Scheduler {
    let sched = Scheduler::new(store::open(url).await.unwrap());
    let config = DispatchConfig {
        batch: 32,
        concurrency: 32,
        ..DispatchConfig::default()
    };
    let d = sched.dispatcher(Arc::new(Deliverer::new("127.0.0.1:9")), config);
    tokio::spawn(d.run(stop.clone()));
    sched
}

fn delivered_ok(s: &Scheduler) -> u64 {
    s.metrics().deliveries.with_label_values(&["ok"]).get()
}

#[tokio::test]
async fn two_instances_never_deliver_the_same_attempt_twice() {
    let url = format!(
        "{}?prefix={}",
        rebound_testkit::redis_url(),
        rebound_testkit::unique_name("two")
    );
    let rec = Recorder::start().await;
    let stop = CancellationToken::new();
    let a = instance(&url, &stop).await;
    let b = instance(&url, &stop).await;
    let n = 2000;
    let tasks: Vec<NewTask> = (0..n)
        .map(|i| {
            serde_json::from_value(http_task(&format!("two-{i}"), &rec.url("two"), 0, 1)).unwrap()
        })
        .collect();
    for chunk in tasks.chunks(500) {
        for r in a.create_tasks(chunk.to_vec()).await.unwrap() {
            r.unwrap();
        }
    }
    rec.wait_for(Duration::from_secs(60), "every task delivered", |r| {
        r.len() >= n
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for r in rec.received() {
        *per_key.entry(r.header("x-message-key")).or_default() += 1;
    }
    let dupes: Vec<_> = per_key.iter().filter(|(_, c)| **c > 1).collect();
    assert!(dupes.is_empty(), "delivered more than once: {dupes:?}");
    assert_eq!(per_key.len(), n);
    assert_eq!(rec.received().len(), n);
    let (da, db) = (delivered_ok(&a), delivered_ok(&b));
    assert_eq!(da + db, n as u64);
    assert!(da > 0 && db > 0, "both instances worked: a={da} b={db}");
    stop.cancel();
}

#[tokio::test]
async fn another_instance_resumes_tasks_of_a_stopped_one() {
    let url = format!(
        "{}?prefix={}",
        rebound_testkit::redis_url(),
        rebound_testkit::unique_name("resume")
    );
    let rec = Recorder::start().await;
    let stop_a = CancellationToken::new();
    let a = instance(&url, &stop_a).await;
    for i in 0..50 {
        // Not due before A stops: B must find them.
        let mut t = http_task(&format!("res-{i}"), &rec.url("resume"), 0, 2);
        t["first_delay"] = 2.into();
        let t = serde_json::from_value(t).unwrap();
        a.create_task(t).await.unwrap();
    }
    stop_a.cancel();
    drop(a);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(rec.received().is_empty());
    let stop_b = CancellationToken::new();
    let _b = instance(&url, &stop_b).await;
    rec.wait_for(Duration::from_secs(30), "50 deliveries", |r| r.len() >= 50)
        .await;
    stop_b.cancel();
}
