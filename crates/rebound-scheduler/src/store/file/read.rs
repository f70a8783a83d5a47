//! The store handle's reads (`get`, `list`): the layers as they are when
//! read, under their lock ([`super::memtable`]), over a redb read
//! transaction begun under the same lock. Each answer comes with the last
//! group it may depend on; the handle waits for that group to be synced
//! before it answers.

use std::ops::Bound;
use std::path::Path;

use redb::{Database, ReadableDatabase};

use super::shared::Shared;
use super::tables::{db_errs, decode_task, TASKS};
use super::view;
use crate::error::Result;
use crate::store::{ListQuery, Page};
use crate::task::Task;

/// Rows of the active memtable a listing copies at a time.
const LIST_WINDOW: usize = 1_024;

/// A task as the store has it now, and the last group that answer
/// may depend on (0 when it comes from redb: checkpointed, so durable).
pub(crate) fn get(
    db: &Database,
    path: &Path,
    shared: &Shared,
    id: &str,
) -> Result<(Option<Task>, u64)> {
    let layers = shared.overlay.lock();
    // Checked under the lock: a failed write may have left part of its
    // group in the active memtable.
    shared.check()?;
    let newest = view::newest(&layers.active, layers.frozen.as_deref(), |m| {
        m.tasks.get(id)
    })
    .cloned();
    let (bytes, seq) = match newest {
        Some(v) => (v, layers.seq),
        None => {
            // Begun under the lock: what the memtables no longer hold,
            // redb does.
            let txn = db.begin_read().map_err(db_errs(path))?;
            drop(layers);
            let tasks = txn.open_table(TASKS).map_err(db_errs(path))?;
            let v = tasks.get(id).map_err(db_errs(path))?;
            (v.map(|v| v.value().to_vec()), 0)
        }
    };
    let task = bytes.map(|v| decode_task(path, id, &v)).transpose()?;
    Ok((task, seq))
}

/// A page of tasks as the store has them now, and the last group that
/// state holds. The tasks are read a window at a time, each window a
/// consistent view of the layers (taken under their lock, with at most
/// [`LIST_WINDOW`] rows of the active memtable copied): a task is in
/// exactly one window, as it was when that window was taken.
pub(crate) fn list(
    db: &Database,
    path: &Path,
    shared: &Shared,
    q: &ListQuery,
) -> Result<(Page, u64)> {
    let mut tasks: Vec<Task> = Vec::new();
    let mut after = q.cursor.clone();
    let mut seq = 0;
    loop {
        let from = || match &after {
            Some(c) => Bound::Excluded(c.clone()),
            None => Bound::Unbounded,
        };
        let (active, end, frozen, txn) = {
            let layers = shared.overlay.lock();
            shared.check()?;
            seq = seq.max(layers.seq);
            let mut active: Vec<(String, Option<Vec<u8>>)> = layers
                .active
                .tasks
                .range((from(), Bound::Unbounded))
                .take(LIST_WINDOW + 1)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            // The window ends at the last active row copied, unless
            // none is left after it.
            let end = (active.len() > LIST_WINDOW).then(|| {
                active.pop();
                active.last().expect("a full window").0.clone()
            });
            let txn = db.begin_read().map_err(db_errs(path))?;
            (active, end, layers.frozen.clone(), txn)
        };
        let to = || match &end {
            Some(e) => Bound::Included(e.clone()),
            None => Bound::Unbounded,
        };
        let table = txn.open_table(TASKS).map_err(db_errs(path))?;
        let (lo, hi) = (from(), to());
        let stored = table
            .range::<&str>((
                lo.as_ref().map(String::as_str),
                hi.as_ref().map(String::as_str),
            ))
            .map_err(db_errs(path))?;
        let mut sources: Vec<view::Source<'_, String, Vec<u8>>> =
            vec![Box::new(active.into_iter().map(Ok))];
        if let Some(f) = &frozen {
            sources.push(view::layer(&f.tasks, (from(), to())));
        }
        sources.push(Box::new(stored.map(|row| {
            let (k, v) = row.map_err(db_errs(path))?;
            Ok((k.value().to_string(), Some(v.value().to_vec())))
        })));
        for row in view::merge(sources) {
            let (id, v) = row?;
            let t = decode_task(path, &id, &v)?;
            if q.state.is_some_and(|s| s != t.state)
                || q.client_id.as_ref().is_some_and(|c| *c != t.spec.client_id)
            {
                continue;
            }
            if tasks.len() == q.limit {
                let next_cursor = tasks.last().map(|t| t.spec.id.clone());
                return Ok((Page { tasks, next_cursor }, seq));
            }
            tasks.push(t);
        }
        match end {
            Some(e) => after = Some(e),
            None => {
                return Ok((
                    Page {
                        tasks,
                        next_cursor: None,
                    },
                    seq,
                ))
            }
        }
    }
}
