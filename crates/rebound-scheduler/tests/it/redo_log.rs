//! The embedded store's redo log. Writes acknowledged since the last durable
//! checkpoint live in the log; a crash image of the store directory (its
//! files copied while the store runs, as a SIGKILL leaves them) opens with
//! every one of them. A damaged record before the end of the log refuses the
//! open naming the log file; only an incomplete last record (a write cut
//! short by the crash, so never acknowledged) is ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rebound_scheduler::store::file::{FileOptions, FileStore, DB_FILE};
use rebound_scheduler::store::{Finish, Store};
use rebound_scheduler::task::{CancelOutcome, Task, TaskState};

use super::file_store::{all, assert_names_damage, flip, requeued, task, LEASE};

/// Checkpoints every `every`.
pub(super) fn checkpoints(every: Duration) -> FileOptions {
    FileOptions {
        checkpoint_every: every,
        ..FileOptions::default()
    }
}

/// No checkpoint while the test runs (unless 8 MiB are written): everything
/// written after the open is only in the log.
pub(super) fn no_checkpoint() -> FileOptions {
    checkpoints(Duration::from_secs(3600))
}

/// 20 creates of 10 tasks (one log record each: each call is awaited), one
/// retry, one cancel and one claim left in flight; returns the running store.
async fn written(dir: &Path) -> FileStore {
    let store = FileStore::open_with(dir, no_checkpoint()).await.unwrap();
    for b in 0..20 {
        let batch = (0..10).map(|i| task(&format!("r{b}-{i}"))).collect();
        store.create(batch).await.unwrap();
    }
    let c = store.claim(2_000, 1, LEASE).await.unwrap();
    let retry = Finish::Retry {
        attempts: 1,
        next_due_ms: 9_000,
        error: "e".into(),
    };
    assert!(store.finish(&c[0], retry, 2_000).await.unwrap());
    assert_eq!(store.claim(2_000, 1, LEASE).await.unwrap().len(), 1);
    assert_eq!(
        store.cancel("r0-5", 2_000).await.unwrap(),
        CancelOutcome::Cancelled
    );
    // The last create: the newest record of the log.
    store.create(vec![task("last")]).await.unwrap();
    store
}

/// Copies the store's files as they are on disk now, the lock excepted;
/// returns the redo log files holding records (a file is made of zeros
/// before it is written).
fn copy_files(from: &Path, to: &Path) -> Vec<PathBuf> {
    let mut logs = Vec::new();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "LOCK" {
            continue;
        }
        // A log file retired while this runs is simply not in the image.
        if std::fs::copy(e.path(), to.join(&name)).is_ok()
            && name.starts_with("redo-")
            && std::fs::read(to.join(&name))
                .unwrap()
                .iter()
                .any(|&b| b != 0)
        {
            logs.push(to.join(&name));
        }
    }
    logs
}

/// A crash image of a store that has made no checkpoint since its open;
/// returns its one log file.
fn crash_image(from: &Path, to: &Path) -> PathBuf {
    let mut logs = copy_files(from, to);
    assert_eq!(logs.len(), 1, "one log file since the open: {logs:?}");
    logs.pop().unwrap()
}

/// The crash image of a store [`written`] to, its log file, and every task
/// as the store had them when the image was taken.
async fn crashed() -> (tempfile::TempDir, PathBuf, Vec<Task>) {
    let (dir, image) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = written(dir.path()).await;
    let log = crash_image(dir.path(), image.path());
    let live = store.list(&all()).await.unwrap().tasks;
    drop(store);
    (image, log, live)
}

fn position(bytes: &[u8], needle: &str) -> usize {
    bytes
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or_else(|| panic!("{needle:?} is in the log"))
}

#[tokio::test]
async fn a_crash_image_has_every_acknowledged_write() {
    let (image, log, live) = crashed().await;
    // They are in the log, so it is the replay that brings them back.
    let bytes = std::fs::read(&log).unwrap();
    for b in 0..20 {
        position(&bytes, &format!("payload of r{b}-9 "));
    }
    let store = FileStore::open(image.path()).await.unwrap();
    let tasks = store.list(&all()).await.unwrap().tasks;
    assert_eq!(tasks.len(), 201);
    // Exactly the state the store had, byte for byte, but the lease that
    // died with it: every write went through the log.
    let requeued = requeued(live);
    assert_eq!(tasks.len(), requeued.len());
    for (got, want) in tasks.iter().zip(&requeued) {
        assert_eq!(got, want, "task {} after the replay", want.id());
    }
    let state = |id: &str| tasks.iter().find(|t| t.id() == id).unwrap();
    assert_eq!(state("r0-5").state, TaskState::Cancelled);
    assert!(state("last").state == TaskState::Scheduled);
    let retried: Vec<_> = tasks.iter().filter(|t| t.attempts == 1).collect();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].next_due_ms, Some(9_000));
    assert!(
        tasks.iter().all(|t| t.state != TaskState::Delivering),
        "the lease in flight at the crash is requeued"
    );
    // 201 tasks, one cancelled: every other one is claimable.
    assert_eq!(store.claim(10_000, 1000, LEASE).await.unwrap().len(), 200);
    drop(store);
    // The replay was made durable: the log is gone after the clean close,
    // and without any log the tasks are there.
    assert!(copy_files(image.path(), tempfile::tempdir().unwrap().path()).is_empty());
    for e in std::fs::read_dir(image.path()).unwrap() {
        let e = e.unwrap();
        if e.file_name().to_string_lossy().starts_with("redo-") {
            std::fs::remove_file(e.path()).unwrap();
        }
    }
    let store = FileStore::open(image.path()).await.unwrap();
    assert_eq!(store.list(&all()).await.unwrap().tasks.len(), 201);
}

#[tokio::test]
async fn crash_images_taken_across_checkpoints_have_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let options = checkpoints(Duration::from_millis(5));
    let store = FileStore::open_with(dir.path(), options).await.unwrap();
    let mut acked: Vec<String> = Vec::new();
    let mut images = Vec::new();
    for round in 0..8 {
        for b in 0..10 {
            let ids: Vec<String> = (0..5).map(|i| format!("c{round}-{b}-{i}")).collect();
            store
                .create(ids.iter().map(|id| task(id)).collect())
                .await
                .unwrap();
            acked.extend(ids);
            if b % 3 == 0 {
                // A read of the newest write, from the active memtable.
                let id = acked.last().unwrap();
                assert!(store.get(id).await.unwrap().is_some(), "{id}");
            }
        }
        let image = tempfile::tempdir().unwrap();
        copy_files(dir.path(), image.path());
        images.push((image, acked.len()));
        tokio::time::sleep(Duration::from_millis(3 * round)).await;
    }
    drop(store);
    for (image, n) in images {
        for open in ["after the crash", "after the recovery"] {
            let store = FileStore::open(image.path()).await.unwrap();
            for id in &acked[..n] {
                assert!(store.get(id).await.unwrap().is_some(), "{id} {open}");
            }
            let stored = store.list(&all()).await.unwrap().tasks.len();
            assert!(stored >= n, "{stored} of {n} {open}");
        }
    }
}

#[tokio::test]
async fn a_damaged_record_before_the_end_refuses_the_open() {
    let (image, log, _) = crashed().await;
    let at = position(&std::fs::read(&log).unwrap(), "payload of r10-3 ");
    flip(&log, at);
    let len = std::fs::metadata(&log).unwrap().len();
    let err = FileStore::open(image.path()).await.unwrap_err();
    assert_names_damage(&err, &log);
    assert!(err.to_string().contains("redo log"), "{err}");
    // Refused again, with nothing cut away from the log or applied.
    let err = FileStore::open(image.path()).await.unwrap_err();
    assert_names_damage(&err, &log);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), len);
    assert!(image.path().join(DB_FILE).exists());
}

#[tokio::test]
async fn a_damaged_header_is_not_taken_for_a_torn_tail() {
    let (image, log, _) = crashed().await;
    // The first record's header: a length that no longer reads makes the
    // rest unreachable by walking, but the records after it are found.
    flip(&log, 5);
    let err = FileStore::open(image.path()).await.unwrap_err();
    assert_names_damage(&err, &log);
}

#[tokio::test]
async fn an_incomplete_last_record_is_ignored() {
    let (image, log, _) = crashed().await;
    // Cut inside the last record, as a crash during its write leaves it.
    let bytes = std::fs::read(&log).unwrap();
    let cut = position(&bytes, "payload of last ");
    std::fs::write(&log, &bytes[..cut]).unwrap();
    let store = FileStore::open(image.path()).await.unwrap();
    let tasks = store.list(&all()).await.unwrap().tasks;
    assert_eq!(tasks.len(), 200, "all but the cut record's task");
    assert!(store.get("last").await.unwrap().is_none());
    assert_eq!(
        store.get("r0-5").await.unwrap().unwrap().state,
        TaskState::Cancelled
    );
}

/// `n` tasks of about 1 KB each, created 100 per call.
async fn fill(store: &FileStore, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for b in 0..n / 100 {
        let batch: Vec<Task> = (0..100)
            .map(|i| {
                let id = format!("m{b}-{i}");
                let mut t = task(&id);
                t.spec.message_data = format!("payload of {id} ").repeat(60);
                ids.push(id);
                t
            })
            .collect();
        store.create(batch).await.unwrap();
    }
    ids
}

#[tokio::test]
async fn a_log_over_several_files_replays_every_acknowledged_write() {
    let (dir, image) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let store = FileStore::open_with(dir.path(), no_checkpoint())
        .await
        .unwrap();
    // About 9 MB of log: past the 1, 2 and 4 MiB files, into the next.
    let ids = fill(&store, 8_000).await;
    let logs = copy_files(dir.path(), image.path());
    assert!(logs.len() >= 4, "the log moved on to new files: {logs:?}");
    drop(store);
    let store = FileStore::open(image.path()).await.unwrap();
    for id in &ids {
        assert!(
            store.get(id).await.unwrap().is_some(),
            "{id} after the crash"
        );
    }
}

#[tokio::test]
async fn log_files_go_once_a_checkpoint_holds_them() {
    let dir = tempfile::tempdir().unwrap();
    let options = checkpoints(Duration::from_millis(5));
    let store = FileStore::open_with(dir.path(), options).await.unwrap();
    fill(&store, 8_000).await;
    // One more write, then a checkpoint after it: only the file written
    // now still holds records.
    store.create(vec![task("last")]).await.unwrap();
    let image = tempfile::tempdir().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let logs = copy_files(dir.path(), image.path());
        if logs.len() == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "log files with records left: {logs:?}"
        );
        for e in std::fs::read_dir(image.path()).unwrap() {
            std::fs::remove_file(e.unwrap().path()).unwrap();
        }
    }
    drop(store);
    // A clean close leaves no log at all.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("redo-"))
        .collect();
    assert!(names.is_empty(), "{names:?}");
}
