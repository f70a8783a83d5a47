//! The retry schedule and dead-lettering, on paused tokio time: the
//! dispatcher's real loop over the in-memory store, with a deliverer that
//! records when each delivery happens and fails as told.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use rebound_core::Backoff;
use rebound_scheduler::clock::Clock;
use rebound_scheduler::deliver::{Deliver, Delivery, DeliveryError};
use rebound_scheduler::dispatcher::DispatchConfig;
use rebound_scheduler::envelope::DeadLetter;
use rebound_scheduler::schedule;
use rebound_scheduler::store::file::FileStore;
use rebound_scheduler::task::{CreateOutcome, Destination, NewTask, TaskState};
use rebound_scheduler::Scheduler;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
struct Call {
    at: Duration,
    url: String,
    key: String,
    payload: Vec<u8>,
}

/// Fails every delivery to a URL ending in `/down`; records every call.
struct Recording {
    start: Instant,
    calls: Mutex<Vec<Call>>,
}

impl Deliver for Recording {
    fn deliver<'a>(&'a self, d: Delivery<'a>) -> BoxFuture<'a, Result<(), DeliveryError>> {
        self.calls.lock().unwrap().push(Call {
            at: self.start.elapsed(),
            url: d.destination.url.clone(),
            key: d.key.to_string(),
            payload: d.payload.to_vec(),
        });
        let fail = d.destination.url.ends_with("/down");
        let slow = d.destination.url.ends_with("/slow");
        async move {
            if slow {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            if fail {
                Err(DeliveryError::HttpStatus {
                    url: d.destination.url.clone(),
                    status: 503,
                    retry_after: None,
                })
            } else {
                Ok(())
            }
        }
        .boxed()
    }
}

fn new_task(id: &str, url: &str, max_retries: i64, base: i64, dead: Option<&str>) -> NewTask {
    NewTask {
        id: Some(id.into()),
        source: Some("svc".into()),
        destination: Some(Destination {
            url: url.into(),
            ..Destination::default()
        }),
        dead_destination: dead.map(|u| Destination {
            url: u.into(),
            ..Destination::default()
        }),
        max_retries: Some(max_retries),
        base_delay: Some(base),
        first_delay: None,
        client_id: Some("client-1".into()),
        is_priority: None,
        message_data: Some("{\"hello\":1}".into()),
        destination_type: Some("http".into()),
        trace_parent: Default::default(),
    }
}

fn setup(backoff: Backoff) -> (Scheduler, Arc<Recording>, CancellationToken) {
    setup_with(DispatchConfig {
        backoff,
        ..DispatchConfig::default()
    })
}

fn setup_with(config: DispatchConfig) -> (Scheduler, Arc<Recording>, CancellationToken) {
    let sched = Scheduler::builder(Arc::new(FileStore::in_memory()))
        .with_clock(Clock::tokio())
        .build()
        .unwrap();
    let rec = Arc::new(Recording {
        start: Instant::now(),
        calls: Mutex::new(Vec::new()),
    });
    let stop = CancellationToken::new();
    tokio::spawn(sched.dispatcher(rec.clone(), config).run(stop.clone()));
    (sched, rec, stop)
}

fn secs(calls: &[Call], url: &str) -> Vec<u64> {
    calls
        .iter()
        .filter(|c| c.url == url)
        .map(|c| c.at.as_secs())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_then_dead_letters_with_an_envelope() {
    let (sched, rec, stop) = setup(schedule::rebound());
    let t = new_task("t1", "http://h/down", 3, 5, Some("http://h/dead"));
    assert_eq!(sched.create_task(t).await.unwrap(), CreateOutcome::Created);
    tokio::time::sleep(Duration::from_secs(200)).await;
    let calls = rec.calls.lock().unwrap().clone();
    // Attempt 0 at creation (Rebound parity); after failure n, base * 2^(n-1) later.
    assert_eq!(secs(&calls, "http://h/down"), [0, 5, 15, 35]);
    let keys: Vec<&str> = calls.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["t1|0", "t1|1", "t1|2", "t1|3", "t1|dead|4"]);
    assert_eq!(secs(&calls, "http://h/dead"), [35]);
    let env: DeadLetter = serde_json::from_slice(&calls[4].payload).unwrap();
    assert_eq!(env.id, "t1");
    assert_eq!(env.attempts, 4);
    assert_eq!(env.message_data, "{\"hello\":1}");
    assert_eq!(env.source, "svc");
    assert_eq!(env.client_id, "client-1");
    assert!(env.error.contains("503"), "{}", env.error);
    assert!(env.failed_at_ms >= env.created_at_ms + 35_000);
    let task = sched.get("t1").await.unwrap().unwrap();
    assert_eq!(task.state, TaskState::Dead);
    assert_eq!(task.attempts, 4);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn success_stops_retries_and_no_dead_destination_drops() {
    let (sched, rec, stop) = setup(schedule::rebound());
    sched
        .create_task(new_task("ok", "http://h/up", 5, 2, Some("http://h/dead")))
        .await
        .unwrap();
    sched
        .create_task(new_task("drop", "http://h/down", 0, 3, None))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(100)).await;
    let calls = rec.calls.lock().unwrap().clone();
    assert_eq!(secs(&calls, "http://h/up"), [0]);
    assert_eq!(
        secs(&calls, "http://h/down"),
        [0],
        "max_retries 0: one delivery"
    );
    assert!(secs(&calls, "http://h/dead").is_empty());
    assert_eq!(
        sched.get("ok").await.unwrap().unwrap().state,
        TaskState::Delivered
    );
    let dropped = sched.get("drop").await.unwrap().unwrap();
    assert_eq!((dropped.state, dropped.attempts), (TaskState::Dead, 1));
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn first_delay_defers_only_the_first_attempt() {
    let (sched, rec, stop) = setup(schedule::rebound());
    let mut t = new_task("later", "http://h/down", 2, 5, None);
    t.first_delay = Some(30);
    sched.create_task(t).await.unwrap();
    tokio::time::sleep(Duration::from_secs(100)).await;
    let calls = rec.calls.lock().unwrap().clone();
    assert_eq!(secs(&calls, "http://h/down"), [30, 35, 45]);
    let keys: Vec<&str> = calls.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(keys, ["later|0", "later|1", "later|2"]);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn cap_bounds_the_delay() {
    let (sched, rec, stop) = setup(schedule::rebound().with_cap(Duration::from_secs(15)));
    sched
        .create_task(new_task("c", "http://h/down", 5, 5, None))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(300)).await;
    let calls = rec.calls.lock().unwrap().clone();
    // At once, +5, +10, then capped at +15.
    assert_eq!(secs(&calls, "http://h/down"), [0, 5, 15, 30, 45, 60]);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn cancel_before_due_prevents_delivery() {
    let (sched, rec, stop) = setup(schedule::rebound());
    let mut t = new_task("x", "http://h/up", 0, 10, None);
    t.first_delay = Some(10);
    sched.create_task(t).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    sched.cancel("x").await.unwrap();
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(rec.calls.lock().unwrap().is_empty());
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_client_backlog_does_not_starve_others_and_priority_goes_first() {
    // Two delivery slots, each delivery takes 1 s; client "a" has a backlog of
    // 10 tasks, client "b" two, one priority task from "c"; all due together.
    let (sched, rec, stop) = setup_with(DispatchConfig {
        concurrency: 2,
        batch: 16,
        ..DispatchConfig::default()
    });
    let mut tasks = Vec::new();
    for i in 0..10 {
        let mut t = new_task(&format!("a-{i}"), "http://h/slow", 0, 1, None);
        t.client_id = Some("a".into());
        tasks.push(t);
    }
    for i in 0..2 {
        let mut t = new_task(&format!("b-{i}"), "http://h/slow", 0, 1, None);
        t.client_id = Some("b".into());
        tasks.push(t);
    }
    let mut p = new_task("p-0", "http://h/slow", 0, 1, None);
    p.client_id = Some("c".into());
    p.is_priority = Some(true);
    tasks.push(p);
    for r in sched.create_tasks(tasks).await.unwrap() {
        r.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    let order: Vec<String> = rec
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.key.trim_end_matches("|0").to_string())
        .collect();
    assert_eq!(order.len(), 13, "{order:?}");
    assert_eq!(order[0], "p-0", "priority first: {order:?}");
    let first_five = &order[..5];
    assert!(
        first_five.contains(&"b-0".to_string()) && first_five.contains(&"b-1".to_string()),
        "b is not starved behind a's backlog: {order:?}"
    );
    stop.cancel();
}
