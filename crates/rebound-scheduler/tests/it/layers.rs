//! The embedded store's layers: writes live in memtables over redb until a
//! flusher checkpoints them, while reads, claims and further writes go on.
//! Whatever the moment a checkpoint comes, the store must answer exactly as
//! the same operations committed to redb one call at a time (`memory://`
//! has no layers), and a reopen must find the same tasks.

use std::time::Duration;

use rebound_scheduler::store::file::FileStore;
use rebound_scheduler::store::{Claimed, Finish, ListQuery, Store};
use rebound_scheduler::task::{Task, TaskState};

use super::file_store::{all, requeued, task};
use super::redo_log::{checkpoints, no_checkpoint};

/// xorshift64: the same sequence of operations every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn new_task(rng: &mut Rng, now: u64) -> Task {
    // Now and then created in the past (a caller's clock behind): due
    // before tasks claimed already.
    let now = if rng.below(3) == 0 {
        now.saturating_sub(rng.below(5_000))
    } else {
        now
    };
    let id = format!("k{}", rng.below(300));
    let mut spec = task(&id).spec;
    spec.is_priority = rng.below(5) == 0;
    spec.first_delay = rng.below(3) as u32;
    if rng.below(8) == 0 {
        // Same id, other content: a conflict if the id exists.
        spec.message_data = format!("other {}", rng.below(3));
    }
    Task::new(spec, now)
}

fn same_claims(a: &[Claimed], b: &[Claimed], step: usize) {
    assert_eq!(a.len(), b.len(), "step {step}: claimed");
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.task, y.task, "step {step}: claimed task");
        assert_eq!(x.token, y.token, "step {step}: lease token");
    }
}

async fn pages(s: &dyn Store, state: Option<TaskState>, limit: usize) -> Vec<Task> {
    let mut q = ListQuery {
        state,
        client_id: None,
        cursor: None,
        limit,
    };
    let mut out = Vec::new();
    loop {
        let page = s.list(&q).await.unwrap();
        out.extend(page.tasks);
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => return out,
        }
    }
}

#[tokio::test]
async fn the_layered_store_answers_as_a_store_without_layers() {
    // Checkpoints all the time, and none: then one memtable (and its
    // due-index floor) lasts the whole sequence.
    for every in [Duration::from_millis(1), Duration::from_secs(3600)] {
        same_answers(every).await;
    }
}

async fn same_answers(checkpoint_every: Duration) {
    let dir = tempfile::tempdir().unwrap();
    let options = checkpoints(checkpoint_every);
    let retention = Duration::from_secs(20);
    let layered = FileStore::open_with(dir.path(), options)
        .await
        .unwrap()
        .with_retention(retention);
    let plain = FileStore::in_memory().with_retention(retention);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut now = 2_000u64;
    let mut claims: Vec<(Claimed, Claimed)> = Vec::new();
    let lease = Duration::from_secs(5);
    for step in 0..4_000 {
        match rng.below(10) {
            0..=2 => {
                let batch: Vec<Task> = (0..1 + rng.below(20))
                    .map(|_| new_task(&mut rng, now))
                    .collect();
                let a = layered.create(batch.clone()).await.unwrap();
                let b = plain.create(batch).await.unwrap();
                assert_eq!(a, b, "step {step}: create");
            }
            3 | 4 => {
                let limit = 1 + rng.below(30) as usize;
                let a = layered.claim(now, limit, lease).await.unwrap();
                let b = plain.claim(now, limit, lease).await.unwrap();
                same_claims(&a, &b, step);
                claims.extend(a.into_iter().zip(b));
            }
            5 | 6 if !claims.is_empty() => {
                let (a, b) = claims.swap_remove(rng.below(claims.len() as u64) as usize);
                let attempts = a.task.attempts + 1;
                let finish = match rng.below(3) {
                    0 => Finish::Retry {
                        attempts,
                        // Sometimes before the tasks claimed already.
                        next_due_ms: now.saturating_sub(3_000) + rng.below(6_000),
                        error: format!("failed at {now}"),
                    },
                    1 => Finish::Done {
                        state: TaskState::Delivered,
                        attempts,
                        error: None,
                    },
                    _ => Finish::Done {
                        state: TaskState::Dead,
                        attempts,
                        error: Some("gone".into()),
                    },
                };
                // Now and then with a clock behind: finished (for the
                // retention sweep) before tasks swept already.
                let at = if rng.below(4) == 0 {
                    now.saturating_sub(rng.below(3_000))
                } else {
                    now
                };
                let x = layered.finish(&a, finish.clone(), at).await.unwrap();
                let y = plain.finish(&b, finish, at).await.unwrap();
                assert_eq!(x, y, "step {step}: finish of {}", a.task.id());
            }
            7 => {
                let id = format!("k{}", rng.below(300));
                let a = layered.cancel(&id, now).await.unwrap();
                let b = plain.cancel(&id, now).await.unwrap();
                assert_eq!(a, b, "step {step}: cancel {id}");
            }
            8 if rng.below(2) == 0 => {
                let id = format!("k{}", rng.below(300));
                let a = layered.get(&id).await.unwrap();
                let b = plain.get(&id).await.unwrap();
                assert_eq!(a, b, "step {step}: get {id}");
            }
            8 => {
                let a = layered.next_due().await.unwrap();
                let b = plain.next_due().await.unwrap();
                assert_eq!(a, b, "step {step}: next due");
            }
            _ => {
                let state = [None, Some(TaskState::Scheduled), Some(TaskState::Delivered)]
                    [rng.below(3) as usize];
                let limit = 1 + rng.below(40) as usize;
                let a = pages(&layered, state, limit).await;
                let b = pages(&plain, state, limit).await;
                assert_eq!(a, b, "step {step}: list {state:?} by {limit}");
            }
        }
        now += rng.below(60);
        if rng.below(50) == 0 {
            // Time for the flusher: a checkpoint lands between two steps,
            // or in the middle of the next ones.
            tokio::time::sleep(Duration::from_millis(1 + rng.below(3))).await;
        }
    }
    let a = layered.list(&all()).await.unwrap().tasks;
    let b = plain.list(&all()).await.unwrap().tasks;
    assert!(
        a.len() > 100,
        "{} tasks: the sequence made too few",
        a.len()
    );
    assert_eq!(a, b, "at the end");
    assert_eq!(
        layered.next_due().await.unwrap(),
        plain.next_due().await.unwrap()
    );
    // Reopened: the same tasks, those in flight due again.
    drop(layered);
    let reopened = FileStore::open(dir.path()).await.unwrap();
    assert_eq!(reopened.list(&all()).await.unwrap().tasks, requeued(b));
}

#[tokio::test]
async fn a_listing_larger_than_its_window_pages_over_every_layer() {
    // 1,500 tasks in redb, then 2,500 more (ids interleaved with those)
    // and 300 cancels in the active memtable: a listing copies the active
    // memtable 1,024 rows at a time, over redb in between.
    let dir = tempfile::tempdir().unwrap();
    let plain = FileStore::in_memory();
    let id = |i: usize| format!("w{:05}", i);
    let first: Vec<Task> = (0..1_500).map(|i| task(&id(i * 3))).collect();
    {
        let store = FileStore::open(dir.path()).await.unwrap();
        store.create(first.clone()).await.unwrap();
    }
    plain.create(first).await.unwrap();
    let options = no_checkpoint();
    let layered = FileStore::open_with(dir.path(), options).await.unwrap();
    let second: Vec<Task> = (0..2_500)
        .map(|i| {
            task(&id(if i < 1_500 {
                i * 3 + 1
            } else {
                (i - 1_500) * 3 + 2
            }))
        })
        .collect();
    layered.create(second.clone()).await.unwrap();
    plain.create(second).await.unwrap();
    for i in (0..1_500).step_by(5) {
        for s in [&layered as &dyn Store, &plain] {
            s.cancel(&id(i * 3), 5_000).await.unwrap();
        }
    }
    for (state, limit) in [(None, 100), (Some(TaskState::Cancelled), 7), (None, 5_000)] {
        let a = pages(&layered, state, limit).await;
        let b = pages(&plain, state, limit).await;
        assert_eq!(a.len(), b.len(), "{state:?} by {limit}");
        assert_eq!(a, b, "{state:?} by {limit}");
    }
    assert_eq!(pages(&layered, None, 100).await.len(), 4_000);
}

/// Claims and `next_due` start after the entries claims deleted (which
/// redb holds until a checkpoint); an entry put before that point, as a
/// task created due earlier than those already claimed or one retried
/// earlier, must still be found, in either rank; and a claim cut short by
/// its limit leaves the rest to the next one.
#[tokio::test]
async fn a_task_due_before_the_claimed_ones_is_still_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let options = no_checkpoint();
    let store = FileStore::open_with(dir.path(), options).await.unwrap();
    let lease = Duration::from_secs(60);
    let at = |id: &str, created: u64, prio: bool| {
        let mut t = task(id);
        t.spec.is_priority = prio;
        Task::new(t.spec, created)
    };
    for prio in [false, true] {
        let tag = if prio { "p" } else { "n" };
        // Due at 10,000..10,049; all claimed at 20,000, so the next walk
        // of the rank starts after them, or at the end of what is due.
        let batch: Vec<Task> = (0..50)
            .map(|i| at(&format!("{tag}{i:02}"), 9_000 + i, prio))
            .collect();
        store.create(batch).await.unwrap();
        let first = store.claim(20_000, 30, lease).await.unwrap();
        assert_eq!(first.len(), 30);
        assert_eq!(store.claim(20_000, 100, lease).await.unwrap().len(), 20);
        assert!(store.claim(20_000, 100, lease).await.unwrap().is_empty());
        assert_eq!(store.next_due().await.unwrap(), Some(80_000), "the leases");

        // Due at 5,000 and at 10,020 (between claimed ones): before the
        // point every walk now starts from.
        store
            .create(vec![at(&format!("{tag}-early"), 4_000, prio)])
            .await
            .unwrap();
        store
            .create(vec![at(&format!("{tag}-between"), 9_020, prio)])
            .await
            .unwrap();
        assert_eq!(store.next_due().await.unwrap(), Some(5_000));
        let got = store.claim(20_000, 100, lease).await.unwrap();
        let ids: Vec<&str> = got.iter().map(|c| c.task.id()).collect();
        assert_eq!(ids, [format!("{tag}-early"), format!("{tag}-between")]);

        // Retried to 6,000: before everything claimed.
        let retry = Finish::Retry {
            attempts: 1,
            next_due_ms: 6_000,
            error: "again".into(),
        };
        assert!(store.finish(&first[5], retry, 20_000).await.unwrap());
        assert_eq!(store.next_due().await.unwrap(), Some(6_000));
        let again = store.claim(20_000, 100, lease).await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].task.id(), first[5].task.id());
    }
}

/// The retention sweep and the claims of expired leases walk their
/// indexes from where the last walk stopped; an entry put before that
/// point (a task finished, or a lease taken, by a caller whose clock is
/// behind) must still be found.
#[tokio::test]
async fn entries_put_before_where_the_last_walk_stopped_are_still_found() {
    let dir = tempfile::tempdir().unwrap();
    let options = no_checkpoint();
    let store = FileStore::open_with(dir.path(), options)
        .await
        .unwrap()
        .with_retention(Duration::from_secs(1));
    let lease = Duration::from_secs(60);
    let done = |attempts| Finish::Done {
        state: TaskState::Delivered,
        attempts,
        error: None,
    };
    store
        .create((0..21).map(|i| task(&format!("r{i:02}"))).collect())
        .await
        .unwrap();
    let claimed = store.claim(2_000, 21, lease).await.unwrap();
    assert_eq!(claimed.len(), 21);
    for (i, c) in claimed[..10].iter().enumerate() {
        assert!(store.finish(c, done(1), 10_000 + i as u64).await.unwrap());
    }
    assert_eq!(store.purge(100_000).await.unwrap(), 10);
    assert_eq!(store.purge(100_000).await.unwrap(), 0);
    // Finished at 5,000: before the ten swept.
    assert!(store.finish(&claimed[10], done(1), 5_000).await.unwrap());
    assert_eq!(store.purge(100_000).await.unwrap(), 1);
    assert_eq!(store.get(claimed[10].task.id()).await.unwrap(), None);

    // The other ten leases expire at 62,000. Claimed at 100,000: taken
    // again, and a walk of the expiry index up to 100,000 finds no more.
    let retaken = store.claim(100_000, 100, lease).await.unwrap();
    assert_eq!(retaken.len(), 10);
    assert!(store.claim(100_000, 100, lease).await.unwrap().is_empty());
    // A new task claimed with a clock at 2,000: its lease expires at
    // 62,000, before where that walk stopped.
    store.create(vec![task("late")]).await.unwrap();
    let late = store.claim(2_000, 1, lease).await.unwrap();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].task.id(), "late");
    assert_eq!(store.next_due().await.unwrap(), Some(62_000));
    let again = store.claim(70_000, 1, lease).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].task.id(), "late");
}
