//! In-memory state of the embedded store: tasks by id, due queues (priority
//! and normal, sorted by due time) and leases (sorted by expiry). Pure logic;
//! [`super::file::FileStore`] logs every change before acknowledging it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::{Claimed, Finish, ListQuery, Page};
use crate::task::{CancelOutcome, CreateOutcome, Task, TaskState};

/// One log record.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Event {
    /// A task and all its state (creation, and compaction snapshots).
    Put {
        /// The task.
        task: Box<Task>,
    },
    /// A state change of an existing task.
    Update {
        id: String,
        state: TaskState,
        attempts: u32,
        next_due_ms: Option<u64>,
        last_error: Option<String>,
        updated_at_ms: u64,
    },
}

#[derive(Debug, Default)]
pub(crate) struct State {
    tasks: BTreeMap<String, Task>,
    due_prio: BTreeSet<(u64, String)>,
    due: BTreeSet<(u64, String)>,
    leases: HashMap<String, (u64, String)>,
    lease_index: BTreeSet<(u64, String)>,
    next_token: u64,
}

impl State {
    /// Applies a replayed record. Leases are not logged: after a restart every
    /// unfinished task is simply due again (its lease died with the process).
    pub(crate) fn replay(&mut self, ev: Event) {
        match ev {
            Event::Put { task } => {
                self.unindex(task.id());
                self.insert(*task);
            }
            Event::Update {
                id,
                state,
                attempts,
                next_due_ms,
                last_error,
                updated_at_ms,
            } => {
                self.unindex(&id);
                if let Some(mut t) = self.tasks.remove(&id) {
                    t.state = state;
                    t.attempts = attempts;
                    t.next_due_ms = next_due_ms;
                    t.last_error = last_error;
                    t.updated_at_ms = updated_at_ms;
                    self.insert(t);
                }
            }
        }
    }

    fn insert(&mut self, mut task: Task) {
        if task.state == TaskState::Delivering {
            task.state = TaskState::Scheduled;
        }
        if task.state == TaskState::Scheduled {
            let due = task.next_due_ms.unwrap_or(task.created_at_ms);
            self.queue(task.spec.is_priority)
                .insert((due, task.spec.id.clone()));
        }
        self.tasks.insert(task.spec.id.clone(), task);
    }

    fn queue(&mut self, prio: bool) -> &mut BTreeSet<(u64, String)> {
        if prio {
            &mut self.due_prio
        } else {
            &mut self.due
        }
    }

    fn unindex(&mut self, id: &str) {
        if let Some(t) = self.tasks.get(id) {
            let key = (t.next_due_ms.unwrap_or(t.created_at_ms), id.to_string());
            let prio = t.spec.is_priority;
            self.queue(prio).remove(&key);
        }
        if let Some((until, _)) = self.leases.remove(id) {
            self.lease_index.remove(&(until, id.to_string()));
        }
    }

    /// Inserts a new task, or reports how it compares to the existing one.
    pub(crate) fn create(&mut self, task: &Task) -> CreateOutcome {
        match self.tasks.get(task.id()) {
            Some(t) if t.spec == task.spec => CreateOutcome::Duplicate,
            Some(_) => CreateOutcome::Conflict,
            None => {
                self.insert(task.clone());
                CreateOutcome::Created
            }
        }
    }

    pub(crate) fn get(&self, id: &str) -> Option<Task> {
        self.tasks.get(id).cloned()
    }

    /// Cancels; returns the log record to write when something changed.
    pub(crate) fn cancel(&mut self, id: &str, now_ms: u64) -> (CancelOutcome, Option<Event>) {
        let state = match self.tasks.get(id) {
            None => return (CancelOutcome::NotFound, None),
            Some(t) if t.state.is_final() => return (CancelOutcome::AlreadyFinal(t.state), None),
            Some(t) => t.state,
        };
        debug_assert!(!state.is_final());
        self.unindex(id);
        let t = self.tasks.get_mut(id).expect("present");
        t.state = TaskState::Cancelled;
        t.next_due_ms = None;
        t.updated_at_ms = now_ms;
        (CancelOutcome::Cancelled, Some(update_of(t)))
    }

    pub(crate) fn list(&self, q: &ListQuery) -> Page {
        use std::ops::Bound;
        let start = match &q.cursor {
            Some(c) => Bound::Excluded(c.clone()),
            None => Bound::Unbounded,
        };
        let mut tasks = Vec::new();
        let mut next_cursor = None;
        for (id, t) in self.tasks.range((start, Bound::Unbounded)) {
            if q.state.is_some_and(|s| s != t.state)
                || q.client_id.as_ref().is_some_and(|c| *c != t.spec.client_id)
            {
                continue;
            }
            if tasks.len() == q.limit {
                next_cursor = tasks.last().map(|t: &Task| t.spec.id.clone());
                let _ = id;
                break;
            }
            tasks.push(t.clone());
        }
        Page { tasks, next_cursor }
    }

    /// Claims due tasks: expired leases first, then priority, then normal.
    pub(crate) fn claim(&mut self, now_ms: u64, limit: usize, lease_until: u64) -> Vec<Claimed> {
        let mut ids: Vec<String> = Vec::new();
        for (until, id) in self.lease_index.iter() {
            if *until > now_ms || ids.len() >= limit {
                break;
            }
            ids.push(id.clone());
        }
        for prio in [true, false] {
            let q = self.queue(prio);
            while ids.len() < limit {
                match q.first() {
                    Some((due, _)) if *due <= now_ms => {
                        let (_, id) = q.pop_first().expect("non-empty");
                        ids.push(id);
                    }
                    _ => break,
                }
            }
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((until, _)) = self.leases.remove(&id) {
                self.lease_index.remove(&(until, id.clone()));
            }
            self.next_token += 1;
            let token = self.next_token.to_string();
            self.leases.insert(id.clone(), (lease_until, token.clone()));
            self.lease_index.insert((lease_until, id.clone()));
            let t = self.tasks.get_mut(&id).expect("indexed tasks exist");
            t.state = TaskState::Delivering;
            out.push(Claimed {
                task: t.clone(),
                token,
            });
        }
        out
    }

    /// Ends a claimed attempt; `None` when the lease is no longer held.
    pub(crate) fn finish(&mut self, c: &Claimed, f: Finish, now_ms: u64) -> Option<Event> {
        let id = c.task.id();
        match self.leases.get(id) {
            Some((_, token)) if *token == c.token => {}
            _ => return None,
        }
        self.unindex(id);
        let t = self.tasks.get_mut(id)?;
        t.updated_at_ms = now_ms;
        match f {
            Finish::Done {
                state,
                attempts,
                error,
            } => {
                t.state = state;
                t.attempts = attempts;
                t.next_due_ms = None;
                if error.is_some() {
                    t.last_error = error;
                }
                Some(update_of(t))
            }
            Finish::Retry {
                attempts,
                next_due_ms,
                error,
            } => {
                t.state = TaskState::Scheduled;
                t.attempts = attempts;
                t.next_due_ms = Some(next_due_ms);
                t.last_error = Some(error);
                let ev = update_of(t);
                let prio = t.spec.is_priority;
                self.queue(prio).insert((next_due_ms, id.to_string()));
                Some(ev)
            }
        }
    }

    pub(crate) fn next_due(&self) -> Option<u64> {
        [
            self.due_prio.first().map(|x| x.0),
            self.due.first().map(|x| x.0),
            self.lease_index.first().map(|x| x.0),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Drops final tasks last changed before `cutoff_ms` and returns every
    /// remaining task, for a compaction snapshot.
    pub(crate) fn retain_and_snapshot(&mut self, cutoff_ms: u64) -> Vec<&Task> {
        self.tasks
            .retain(|_, t| !(t.state.is_final() && t.updated_at_ms < cutoff_ms));
        self.tasks.values().collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.tasks.len()
    }
}

fn update_of(t: &Task) -> Event {
    Event::Update {
        id: t.spec.id.clone(),
        state: t.state,
        attempts: t.attempts,
        next_due_ms: t.next_due_ms,
        last_error: t.last_error.clone(),
        updated_at_ms: t.updated_at_ms,
    }
}
