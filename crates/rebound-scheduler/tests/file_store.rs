//! Crash safety of the embedded store at the file level: acknowledged creates
//! survive a drop and reopen, a torn tail is cut off, compaction keeps state,
//! and a directory is locked to one opener.

use std::io::Write;
use std::sync::Arc;

use rebound_scheduler::store::file::FileStore;
use rebound_scheduler::store::{Finish, Store};
use rebound_scheduler::task::{Destination, DestinationType, Task, TaskSpec, TaskState};

fn task(id: &str) -> Task {
    let spec = TaskSpec {
        id: id.into(),
        source: "file".into(),
        destination: Destination {
            topic: "t".into(),
            ..Destination::default()
        },
        dead_destination: None,
        max_retries: 1,
        base_delay: 1,
        first_delay: 1,
        client_id: String::new(),
        is_priority: false,
        message_data: "x".repeat(100),
        destination_type: DestinationType::Kafka,
    };
    Task::new(spec, 1_000)
}

#[tokio::test]
async fn acknowledged_creates_survive_reopen_and_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Arc::new(FileStore::open(dir.path()).await.unwrap());
        let mut joins = Vec::new();
        for i in 0..200 {
            let s = store.clone();
            joins.push(tokio::spawn(async move {
                s.create(vec![task(&format!("t{i}"))]).await
            }));
        }
        for j in joins {
            j.await.unwrap().unwrap();
        }
        let c = store
            .claim(2_000, 1, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        let f = Finish::Retry {
            attempts: 1,
            next_due_ms: 9_000,
            error: "e".into(),
        };
        assert!(store.finish(&c[0], f, 2_000).await.unwrap());
        // Claimed but never finished: after a restart it is due again.
        assert_eq!(
            store
                .claim(2_000, 1, std::time::Duration::from_secs(60))
                .await
                .unwrap()
                .len(),
            1
        );
    }
    // A crash mid-append leaves a partial record at the end.
    let log = dir.path().join("tasks.log");
    let good_len = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&log)
        .unwrap()
        .write_all(&[200, 0, 0, 0, 1, 2, 3])
        .unwrap();
    let store = FileStore::open(dir.path()).await.unwrap();
    assert_eq!(
        std::fs::metadata(&log).unwrap().len(),
        good_len,
        "torn tail cut off"
    );
    for i in 0..200 {
        assert!(
            store.get(&format!("t{i}")).await.unwrap().is_some(),
            "t{i} lost"
        );
    }
    let retried = store
        .list(&rebound_scheduler::store::ListQuery {
            state: None,
            client_id: None,
            cursor: None,
            limit: 1000,
        })
        .await
        .unwrap()
        .tasks
        .into_iter()
        .filter(|t| t.attempts == 1)
        .collect::<Vec<_>>();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].next_due_ms, Some(9_000));
    // Every unfinished task is claimable again (no lease survives a restart).
    let all = store
        .claim(10_000, 1000, std::time::Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(all.len(), 200);
}

#[tokio::test]
async fn compaction_keeps_live_state_and_drops_expired_final_tasks() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FileStore::open(dir.path())
            .await
            .unwrap()
            .with_retention(std::time::Duration::from_secs(1));
        store
            .create((0..10).map(|i| task(&format!("c{i}"))).collect())
            .await
            .unwrap();
        let claimed = store
            .claim(2_000, 3, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        for c in &claimed {
            let f = Finish::Done {
                state: TaskState::Delivered,
                attempts: 1,
                error: None,
            };
            assert!(store.finish(c, f, 2_000).await.unwrap());
        }
        let before = std::fs::metadata(store.log_path()).unwrap().len();
        store.compact(1_000_000).await.unwrap();
        let after = std::fs::metadata(store.log_path()).unwrap().len();
        assert!(after < before, "{after} < {before}");
    }
    let store = FileStore::open(dir.path()).await.unwrap();
    let page = store
        .list(&rebound_scheduler::store::ListQuery {
            state: None,
            client_id: None,
            cursor: None,
            limit: 100,
        })
        .await
        .unwrap();
    assert_eq!(
        page.tasks.len(),
        7,
        "delivered tasks past retention dropped"
    );
    assert!(page.tasks.iter().all(|t| t.state == TaskState::Scheduled));
}

#[tokio::test]
async fn a_directory_has_one_owner() {
    let dir = tempfile::tempdir().unwrap();
    let _first = FileStore::open(dir.path()).await.unwrap();
    let err = FileStore::open(dir.path()).await.unwrap_err();
    let err = rebound_core::DisplayChain(&err).to_string();
    assert!(err.contains("in use"), "{err}");
}
