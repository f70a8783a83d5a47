//! The embedded store at the file level: acknowledged writes survive a drop
//! and reopen, tasks in flight are due again, retention drops old final
//! tasks, a directory is locked to one opener, and a damaged file is refused
//! with an error naming it — never opened with tasks silently missing.

use std::sync::Arc;
use std::time::Duration;

use rebound_scheduler::error::Error;
use rebound_scheduler::store::file::{FileOptions, FileStore, DB_FILE};
use rebound_scheduler::store::{Finish, ListQuery, Store};
use rebound_scheduler::task::{Destination, DestinationType, Task, TaskSpec, TaskState};

pub(super) fn task(id: &str) -> Task {
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
        message_data: format!("payload of {id} ").repeat(8),
        destination_type: DestinationType::Kafka,
        trace_parent: Default::default(),
    };
    Task::new(spec, 1_000)
}

pub(super) fn all() -> ListQuery {
    ListQuery {
        state: None,
        client_id: None,
        cursor: None,
        limit: 1000,
    }
}

/// `tasks` as a reopened store has them: the leases died with the process
/// that held them, so the tasks in flight are due again.
pub(super) fn requeued(tasks: Vec<Task>) -> Vec<Task> {
    tasks
        .into_iter()
        .map(|mut t| {
            if t.state == TaskState::Delivering {
                t.state = TaskState::Scheduled;
            }
            t
        })
        .collect()
}

pub(super) const LEASE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn acknowledged_writes_survive_reopen_and_leases_do_not() {
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
        let c = store.claim(2_000, 1, LEASE).await.unwrap();
        let f = Finish::Retry {
            attempts: 1,
            next_due_ms: 9_000,
            error: "e".into(),
        };
        assert!(store.finish(&c[0], f, 2_000).await.unwrap());
        // Claimed but never finished: after a restart it is due again.
        let inflight = store.claim(2_000, 1, LEASE).await.unwrap();
        assert_eq!(inflight.len(), 1);
        assert_eq!(
            store.cancel("t199", 2_000).await.unwrap(),
            rebound_scheduler::task::CancelOutcome::Cancelled
        );
    }
    let store = FileStore::open(dir.path()).await.unwrap();
    for i in 0..200 {
        assert!(
            store.get(&format!("t{i}")).await.unwrap().is_some(),
            "t{i} lost"
        );
    }
    let tasks = store.list(&all()).await.unwrap().tasks;
    let retried: Vec<_> = tasks.iter().filter(|t| t.attempts == 1).collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].next_due_ms, Some(9_000));
    assert_eq!(
        tasks
            .iter()
            .filter(|t| t.state == TaskState::Delivering)
            .count(),
        0,
        "no lease survives a restart"
    );
    assert_eq!(
        store.get("t199").await.unwrap().unwrap().state,
        TaskState::Cancelled
    );
    // Every unfinished task is claimable again, the one in flight included.
    let again = store.claim(10_000, 1000, LEASE).await.unwrap();
    assert_eq!(again.len(), 199);
}

#[tokio::test]
async fn retention_drops_expired_final_tasks_only() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FileStore::open(dir.path())
            .await
            .unwrap()
            .with_retention(Duration::from_secs(1));
        store
            .create((0..10).map(|i| task(&format!("c{i}"))).collect())
            .await
            .unwrap();
        let claimed = store.claim(2_000, 3, LEASE).await.unwrap();
        for c in &claimed {
            let f = Finish::Done {
                state: TaskState::Delivered,
                attempts: 1,
                error: None,
            };
            assert!(store.finish(c, f, 2_000).await.unwrap());
        }
        assert_eq!(store.purge(2_500).await.unwrap(), 0, "within retention");
        assert_eq!(store.list(&all()).await.unwrap().tasks.len(), 10);
        assert_eq!(store.purge(1_000_000).await.unwrap(), 3);
    }
    let store = FileStore::open(dir.path()).await.unwrap();
    let page = store.list(&all()).await.unwrap();
    assert_eq!(
        page.tasks.len(),
        7,
        "delivered tasks past retention dropped"
    );
    assert!(page.tasks.iter().all(|t| t.state == TaskState::Scheduled));
    // A dropped id is new again.
    let out = store.create(vec![task("c0")]).await.unwrap();
    assert_eq!(out, [rebound_scheduler::task::CreateOutcome::Created]);
}

#[tokio::test]
async fn a_directory_has_one_owner() {
    let dir = tempfile::tempdir().unwrap();
    let _first = FileStore::open(dir.path()).await.unwrap();
    let err = FileStore::open(dir.path()).await.unwrap_err();
    let err = rebound_core::DisplayChain(&err).to_string();
    assert!(err.contains("in use"), "{err}");
}

#[tokio::test]
async fn a_memory_store_is_dropped_at_once() {
    let s = FileStore::in_memory();
    s.create(vec![task("m")]).await.unwrap();
    let dropped = tokio::task::spawn_blocking(move || drop(s));
    tokio::time::timeout(Duration::from_secs(5), dropped)
        .await
        .expect("drop does not wait for the database")
        .unwrap();
}

/// Fills a store with 2,000 tasks, and flips a byte of the stored body of
/// the task nearest the middle of the file whose read then fails (a copy
/// left in a page redb freed is not the task any more). Returns the file,
/// the offset and the task's id.
async fn damaged_in_the_middle(dir: &std::path::Path) -> (std::path::PathBuf, usize, String) {
    let store = FileStore::open(dir).await.unwrap();
    for b in 0..20 {
        let batch = (0..100).map(|i| task(&format!("f{b}-{i}"))).collect();
        store.create(batch).await.unwrap();
    }
    drop(store);
    let path = dir.join(DB_FILE);
    let bytes = std::fs::read(&path).unwrap();
    let needle = b"payload of f";
    let mut found: Vec<(usize, String)> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(at, _)| {
            let id = &bytes[at + needle.len() - 1..];
            let end = id.iter().position(|&b| b == b' ').unwrap();
            (at, String::from_utf8(id[..end].to_vec()).unwrap())
        })
        .collect();
    found.sort_by_key(|(at, _)| at.abs_diff(bytes.len() / 2));
    // Opened without the check at open: only the read sees the flip.
    let unverified = FileOptions {
        verify_at_open_max: 0,
        ..FileOptions::default()
    };
    for (at, id) in found {
        flip(&path, at);
        let store = FileStore::open_with(dir, unverified.clone()).await.unwrap();
        let read = store.get(&id).await;
        drop(store);
        if read.is_err() {
            return (path, at, id);
        }
        flip(&path, at);
    }
    panic!("no stored task body found in {}", path.display());
}

pub(super) fn flip(path: &std::path::Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

pub(super) fn assert_names_damage(err: &Error, path: &std::path::Path) {
    assert!(matches!(err, Error::Corrupt { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(
        msg.contains("damaged") && msg.contains("move it aside"),
        "{msg}"
    );
}

#[tokio::test]
async fn a_flipped_byte_in_the_middle_refuses_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let (path, at, _) = damaged_in_the_middle(dir.path()).await;
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    assert!(
        at > len / 8 && at < len * 7 / 8,
        "{at} of {len}: not the middle"
    );
    let err = FileStore::open(dir.path()).await.unwrap_err();
    assert_names_damage(&err, &path);
    // Refused again on the next try: nothing was "repaired" away.
    let err = FileStore::open(dir.path()).await.unwrap_err();
    assert_names_damage(&err, &path);
}

#[tokio::test]
async fn a_large_file_opens_at_once_and_damage_is_still_reported() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, id) = damaged_in_the_middle(dir.path()).await;
    // As if the file were too large to verify at open.
    let store = FileStore::open_with(
        dir.path(),
        FileOptions {
            verify_at_open_max: 0,
            ..FileOptions::default()
        },
    )
    .await
    .unwrap();
    let err = store.get(&id).await.unwrap_err();
    assert_names_damage(&err, &path);
    // The background walk finds it too and stops the store.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        match store.health().await {
            Err(e) => {
                assert!(e.to_string().contains(&path.display().to_string()), "{e}");
                break;
            }
            Ok(()) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Ok(()) => panic!("damage never reported by health"),
        }
    }
    let err = store.create(vec![task("new")]).await.unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    // Stopped, the store reports the damage as damage to every call.
    assert_names_damage(&err, &path);
    assert_names_damage(&store.get(&id).await.unwrap_err(), &path);
    assert_names_damage(&store.get("f0-0").await.unwrap_err(), &path);
}

#[tokio::test]
async fn a_store_killed_right_after_its_open_needs_no_full_repair() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FileStore::open(dir.path()).await.unwrap();
        store.create(vec![task("a")]).await.unwrap();
    }
    // Opened as a large file is (no integrity check, whose own commit
    // would hide the open's), then "killed": its file as it is now.
    let options = FileOptions {
        verify_at_open_max: 0,
        ..FileOptions::default()
    };
    let store = FileStore::open_with(dir.path(), options).await.unwrap();
    let image = tempfile::tempdir().unwrap();
    std::fs::copy(dir.path().join(DB_FILE), image.path().join(DB_FILE)).unwrap();
    drop(store);
    // Every commit of the open recorded redb's allocator state: the next
    // open needs no walk of the whole file (seconds for gigabytes).
    let repaired = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = repaired.clone();
    let db = redb::Builder::new()
        .set_repair_callback(move |_| seen.store(true, std::sync::atomic::Ordering::SeqCst))
        .open(image.path().join(DB_FILE))
        .unwrap();
    drop(db);
    assert!(!repaired.load(std::sync::atomic::Ordering::SeqCst));
}

/// A store written by a newer version (its `meta` records a newer format)
/// is refused at open as such, not read as damage; the file is left as it
/// was, and opens again once the format is one this version reads.
#[tokio::test]
async fn a_store_of_a_newer_format_is_refused_as_such_not_as_damage() {
    use redb::{ReadableDatabase, ReadableTable};
    const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
    let dir = tempfile::tempdir().unwrap();
    {
        let store = FileStore::open(dir.path()).await.unwrap();
        store.create(vec![task("a")]).await.unwrap();
    }
    let set_format = |format: u64| {
        let db = redb::Database::open(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut meta = txn.open_table(META).unwrap();
            assert_eq!(meta.get("format").unwrap().unwrap().value(), 1);
            meta.insert("format", format).unwrap();
        }
        txn.commit().unwrap();
    };
    set_format(2);
    let err = FileStore::open(dir.path()).await.unwrap_err();
    match &err {
        Error::NewerFormat { path, found, known } => {
            assert_eq!(path, &dir.path().join(DB_FILE));
            assert_eq!((*found, *known), (2, 1));
        }
        e => panic!("not refused as a newer format: {e}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("newer version") && !text.contains("move it aside ("),
        "{text}"
    );

    // Nothing was changed by the refusal.
    let db = redb::Database::open(dir.path().join(DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let format = txn
        .open_table(META)
        .unwrap()
        .get("format")
        .unwrap()
        .unwrap()
        .value();
    assert_eq!(format, 2);
    drop((txn, db));
    let db = redb::Database::open(dir.path().join(DB_FILE)).unwrap();
    let txn = db.begin_write().unwrap();
    txn.open_table(META).unwrap().insert("format", 1).unwrap();
    txn.commit().unwrap();
    drop(db);
    let store = FileStore::open(dir.path()).await.unwrap();
    assert_eq!(store.get("a").await.unwrap(), Some(task("a")));
}

/// A store as the versions before the binary task form left it: tasks as
/// `crc · JSON` and no format in `meta`. It opens, its tasks read, claim
/// and finish, and it is then marked with the current format.
#[tokio::test]
async fn a_store_written_with_json_tasks_opens_reads_and_changes() {
    use redb::ReadableDatabase;
    const TASKS: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("tasks");
    const META: redb::TableDefinition<&str, u64> = redb::TableDefinition::new("meta");
    let dir = tempfile::tempdir().unwrap();
    let ids = ["j0", "j1"];
    {
        let store = FileStore::open(dir.path()).await.unwrap();
        store
            .create(ids.iter().map(|id| task(id)).collect())
            .await
            .unwrap();
    }
    // Rewritten as the older versions wrote them.
    {
        let db = redb::Database::open(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut tasks = txn.open_table(TASKS).unwrap();
            for id in ids {
                let json = serde_json::to_vec(&task(id)).unwrap();
                let mut h = crc32fast::Hasher::new();
                h.update(id.as_bytes());
                h.update(&json);
                let mut v = h.finalize().to_le_bytes().to_vec();
                v.extend_from_slice(&json);
                tasks.insert(id, v.as_slice()).unwrap();
            }
            txn.open_table(META).unwrap().remove("format").unwrap();
        }
        txn.commit().unwrap();
    }
    let format = |dir: &std::path::Path| {
        let db = redb::Database::open(dir.join(DB_FILE)).unwrap();
        let txn = db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        let v = meta.get("format").unwrap().map(|v| v.value());
        v
    };
    assert_eq!(format(dir.path()), None);

    {
        let store = FileStore::open(dir.path()).await.unwrap();
        for id in ids {
            assert_eq!(store.get(id).await.unwrap(), Some(task(id)));
        }
        let claimed = store.claim(2_000, 1, LEASE).await.unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].task.id(), "j0");
        let f = Finish::Done {
            state: TaskState::Delivered,
            attempts: 1,
            error: None,
        };
        assert!(store.finish(&claimed[0], f, 2_000).await.unwrap());
    }
    assert_eq!(format(dir.path()), Some(1));
    let store = FileStore::open(dir.path()).await.unwrap();
    let j0 = store.get("j0").await.unwrap().unwrap();
    assert_eq!((j0.state, j0.attempts), (TaskState::Delivered, 1));
    assert_eq!(store.get("j1").await.unwrap(), Some(task("j1")));
}
