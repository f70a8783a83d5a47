//! The [`Store`] contract, run against both stores: the embedded file store
//! (on disk, and `memory://`) and Redis at `REDIS_URL` (a unique key prefix
//! per test).

use std::sync::Arc;
use std::time::Duration;

use rebound_scheduler::store::{self, Finish, ListQuery, Store};
use rebound_scheduler::task::{
    CancelOutcome, CreateOutcome, Destination, DestinationType, Task, TaskSpec, TaskState,
};

const T0: u64 = 1_700_000_000_000;
const LEASE: Duration = Duration::from_secs(30);

fn spec(id: &str, client: &str, prio: bool) -> TaskSpec {
    TaskSpec {
        id: id.into(),
        source: "contract".into(),
        destination: Destination {
            url: "http://127.0.0.1:9/x".into(),
            ..Destination::default()
        },
        dead_destination: None,
        max_retries: 3,
        base_delay: 5,
        first_delay: 5,
        client_id: client.into(),
        is_priority: prio,
        message_data: format!("payload of {id}"),
        destination_type: DestinationType::Http,
        trace_parent: Default::default(),
    }
}

fn task(id: &str) -> Task {
    Task::new(spec(id, "c", false), T0)
}

async fn redis_store() -> Arc<dyn Store> {
    let prefix = rebound_testkit::unique_name("contract");
    store::open(&format!("{}?prefix={prefix}", rebound_testkit::redis_url()))
        .await
        .expect("redis at REDIS_URL")
}

async fn file_store() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}", dir.path().display());
    (store::open(&url).await.unwrap(), dir)
}

const DUE: u64 = T0 + 5_000;

async fn create_is_idempotent(s: Arc<dyn Store>) {
    let out = s.create(vec![task("a"), task("b")]).await.unwrap();
    assert_eq!(out, [CreateOutcome::Created, CreateOutcome::Created]);
    let mut changed = task("a");
    changed.spec.message_data = "other".into();
    let out = s.create(vec![task("a"), changed]).await.unwrap();
    assert_eq!(out, [CreateOutcome::Duplicate, CreateOutcome::Conflict]);
    let got = s.get("a").await.unwrap().unwrap();
    assert_eq!(got.spec.message_data, "payload of a");
    assert_eq!(got.state, TaskState::Scheduled);
    assert_eq!(got.next_due_ms, Some(DUE));
    assert!(s.get("zzz").await.unwrap().is_none());
}

async fn claim_leases_and_reclaims(s: Arc<dyn Store>) {
    s.create(vec![task("a")]).await.unwrap();
    assert_eq!(s.next_due().await.unwrap(), Some(DUE));
    assert!(s.claim(DUE - 1, 10, LEASE).await.unwrap().is_empty());
    let first = s.claim(DUE, 10, LEASE).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].task.attempts, 0);
    assert_eq!(
        s.get("a").await.unwrap().unwrap().state,
        TaskState::Delivering
    );
    // Leased: nobody else gets it until the lease expires.
    assert!(s.claim(DUE + 1000, 10, LEASE).await.unwrap().is_empty());
    let expiry = DUE + LEASE.as_millis() as u64;
    assert_eq!(s.next_due().await.unwrap(), Some(expiry));
    let second = s.claim(expiry, 10, LEASE).await.unwrap();
    assert_eq!(second.len(), 1, "an expired lease is claimed again");
    assert_eq!(second[0].task.attempts, 0, "same attempt number");
    assert_ne!(first[0].token, second[0].token);
    let done = Finish::Done {
        state: TaskState::Delivered,
        attempts: 1,
        error: None,
    };
    assert!(
        !s.finish(&first[0], done.clone(), expiry).await.unwrap(),
        "stale lease"
    );
    assert!(s.finish(&second[0], done.clone(), expiry).await.unwrap());
    let t = s.get("a").await.unwrap().unwrap();
    assert_eq!((t.state, t.attempts), (TaskState::Delivered, 1));
    assert!(s.claim(expiry * 2, 10, LEASE).await.unwrap().is_empty());
    assert_eq!(s.next_due().await.unwrap(), None);
}

async fn retry_reschedules(s: Arc<dyn Store>) {
    s.create(vec![task("r")]).await.unwrap();
    let c = s.claim(DUE, 10, LEASE).await.unwrap().pop().unwrap();
    let next = DUE + 5_000;
    let f = Finish::Retry {
        attempts: 1,
        next_due_ms: next,
        error: "boom".into(),
    };
    assert!(s.finish(&c, f, DUE).await.unwrap());
    let t = s.get("r").await.unwrap().unwrap();
    assert_eq!(t.state, TaskState::Scheduled);
    assert_eq!(t.attempts, 1);
    assert_eq!(t.next_due_ms, Some(next));
    assert_eq!(t.last_error.as_deref(), Some("boom"));
    assert!(s.claim(next - 1, 10, LEASE).await.unwrap().is_empty());
    let c = s.claim(next, 10, LEASE).await.unwrap().pop().unwrap();
    assert_eq!(c.task.attempts, 1);
    assert_eq!(c.task.last_error.as_deref(), Some("boom"));
}

async fn priority_first(s: Arc<dyn Store>) {
    let normal = Task::new(spec("n", "c", false), T0);
    let prio = Task::new(spec("p", "c", true), T0 + 10);
    s.create(vec![normal, prio]).await.unwrap();
    let c = s.claim(DUE + 10, 1, LEASE).await.unwrap();
    assert_eq!(
        c[0].task.id(),
        "p",
        "priority before an earlier normal task"
    );
    let c = s.claim(DUE + 10, 1, LEASE).await.unwrap();
    assert_eq!(c[0].task.id(), "n");
}

async fn cancel_stops_delivery(s: Arc<dyn Store>) {
    s.create(vec![task("x"), task("y")]).await.unwrap();
    assert_eq!(s.cancel("x", T0).await.unwrap(), CancelOutcome::Cancelled);
    assert_eq!(
        s.cancel("x", T0).await.unwrap(),
        CancelOutcome::AlreadyFinal(TaskState::Cancelled)
    );
    assert_eq!(s.cancel("nope", T0).await.unwrap(), CancelOutcome::NotFound);
    let c = s.claim(DUE, 10, LEASE).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].task.id(), "y");
    // Cancelling a task in flight: its attempt can no longer be recorded.
    assert_eq!(s.cancel("y", DUE).await.unwrap(), CancelOutcome::Cancelled);
    let f = Finish::Retry {
        attempts: 1,
        next_due_ms: DUE + 1,
        error: "e".into(),
    };
    assert!(!s.finish(&c[0], f, DUE).await.unwrap());
    assert_eq!(
        s.get("y").await.unwrap().unwrap().state,
        TaskState::Cancelled
    );
    assert!(s.claim(DUE * 2, 10, LEASE).await.unwrap().is_empty());
}

async fn list_filters_and_pages(s: Arc<dyn Store>) {
    let mut all = Vec::new();
    for i in 0..25 {
        all.push(Task::new(
            spec(
                &format!("t{i:02}"),
                if i % 5 == 0 { "five" } else { "other" },
                false,
            ),
            T0,
        ));
    }
    s.create(all).await.unwrap();
    s.cancel("t01", T0).await.unwrap();
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = s
            .list(&ListQuery {
                client_id: Some("other".into()),
                state: Some(TaskState::Scheduled),
                cursor,
                limit: 4,
            })
            .await
            .unwrap();
        seen.extend(page.tasks.into_iter().map(|t| t.spec.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    let want: Vec<String> = (0..25)
        .filter(|i| i % 5 != 0 && *i != 1)
        .map(|i| format!("t{i:02}"))
        .collect();
    assert_eq!(seen, want);
}

async fn concurrent_creates_make_one_task_per_id(s: Arc<dyn Store>) {
    let mut joins = Vec::new();
    for i in 0..200 {
        let s = s.clone();
        // Half the callers race on the same 10 ids; the rest are distinct.
        let id = if i % 2 == 0 {
            format!("same-{}", (i / 2) % 10)
        } else {
            format!("own-{i}")
        };
        joins.push(tokio::spawn(async move {
            s.create(vec![task(&id)]).await.unwrap().pop().unwrap()
        }));
    }
    let mut created = 0;
    for j in joins {
        match j.await.unwrap() {
            CreateOutcome::Created => created += 1,
            CreateOutcome::Duplicate => {}
            CreateOutcome::Conflict => panic!("identical bodies never conflict"),
        }
    }
    assert_eq!(created, 10 + 100);
    let claimed = s.claim(DUE, 1000, LEASE).await.unwrap();
    assert_eq!(claimed.len(), 110, "one task per id");
}

macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn file() {
                let (s, _dir) = super::file_store().await;
                super::$name(s).await;
            }
            #[tokio::test]
            async fn memory() {
                let s = rebound_scheduler::store::open("memory://").await.unwrap();
                super::$name(s).await;
            }
            #[tokio::test]
            async fn redis() {
                super::$name(super::redis_store().await).await;
            }
        }
    };
}

both!(create_is_idempotent);
both!(claim_leases_and_reclaims);
both!(retry_reschedules);
both!(priority_first);
both!(cancel_stops_delivery);
both!(list_filters_and_pages);
both!(concurrent_creates_make_one_task_per_id);
