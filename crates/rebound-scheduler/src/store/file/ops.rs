//! The store's write operations, applied by the writer a group at a time
//! to the layered view of the tables ([`super::view`]). Same semantics as the Redis
//! scripts: claim takes expired leases first, then priority tasks, then the
//! others, each by due time; only the current lease token can finish.

use super::memtable::due_slot;
use super::redo::AtIndex;
use super::tables::{due_key, encode_lease, encode_task, Lease};
use super::view::Tx;
use crate::error::Result;
use crate::store::{Claimed, Finish};
use crate::task::{CancelOutcome, CreateOutcome, Task, TaskState};

/// Final tasks dropped per transaction by the background retention sweep, so
/// a sweep never makes one commit (and its callers) wait long.
const SWEEP_PER_BATCH: usize = 256;

/// A write, as queued for the writer.
#[derive(Debug)]
pub(crate) enum Op {
    /// New tasks, with their stored encoding made by the caller.
    Create(Vec<(Task, Vec<u8>)>),
    Cancel {
        id: String,
        now_ms: u64,
    },
    Claim {
        now_ms: u64,
        limit: usize,
        until_ms: u64,
    },
    Finish {
        claim: Box<Claimed>,
        finish: Finish,
        now_ms: u64,
    },
    /// Drops up to `max` final tasks past retention at `now_ms`.
    Purge {
        now_ms: u64,
        max: usize,
    },
    /// Nothing: answered once everything queued before it is durable and
    /// visible to readers.
    Barrier,
    /// The earliest due time or lease expiry (a read, answered at once).
    NextDue,
}

/// What an operation returned.
#[derive(Debug)]
pub(crate) enum Out {
    Created(Vec<CreateOutcome>),
    Cancelled(CancelOutcome),
    Claimed(Vec<Claimed>),
    Finished(bool),
    Purged(usize),
    NextDue(Option<u64>),
    Done,
}

impl Tx<'_> {
    fn put(&mut self, t: &Task) {
        self.task_put(t.id(), &encode_task(t));
    }

    fn schedule(&mut self, t: &Task) {
        self.due_put(due_key(t));
    }

    fn unschedule(&mut self, t: &Task) {
        self.due_del(due_key(t));
    }

    fn release(&mut self, id: &str) -> Result<Option<Lease>> {
        let Some(l) = self.lease(id)? else {
            return Ok(None);
        };
        self.lease_del(id);
        self.at_set(AtIndex::Expiry, false, l.until_ms, id);
        Ok(Some(l))
    }

    fn finalize(&mut self, t: &Task) {
        self.at_set(AtIndex::Finished, true, t.updated_at_ms, t.id());
        self.put(t);
    }

    /// Applies a group of operations in order, then the retention sweep
    /// if one of them carries the time.
    pub(crate) fn apply_group<'o>(
        &mut self,
        ops: impl IntoIterator<Item = &'o Op>,
        next_token: &mut u64,
        retention_ms: u64,
    ) -> Result<Vec<Out>> {
        let mut outs = Vec::new();
        let mut now = None;
        for op in ops {
            outs.push(self.apply(op, next_token, retention_ms)?);
            now = now.max(clock_of(op));
        }
        if let Some(now) = now {
            self.sweep_some(now, retention_ms)?;
        }
        Ok(outs)
    }

    /// Applies one operation. `next_token` numbers leases.
    pub(crate) fn apply(
        &mut self,
        op: &Op,
        next_token: &mut u64,
        retention_ms: u64,
    ) -> Result<Out> {
        Ok(match op {
            Op::Create(tasks) => Out::Created(self.create(tasks)?),
            Op::Cancel { id, now_ms } => Out::Cancelled(self.cancel(id, *now_ms)?),
            Op::Claim {
                now_ms,
                limit,
                until_ms,
            } => Out::Claimed(self.claim(*now_ms, *limit, *until_ms, next_token)?),
            Op::Finish {
                claim,
                finish,
                now_ms,
            } => Out::Finished(self.finish(claim, finish.clone(), *now_ms)?),
            Op::Purge { now_ms, max } => {
                Out::Purged(self.sweep(now_ms.saturating_sub(retention_ms), *max)?)
            }
            Op::Barrier => Out::Done,
            Op::NextDue => Out::NextDue(self.next_due()?),
        })
    }

    fn create(&mut self, tasks: &[(Task, Vec<u8>)]) -> Result<Vec<CreateOutcome>> {
        let mut out = Vec::with_capacity(tasks.len());
        for (t, enc) in tasks {
            out.push(match self.task(t.id())? {
                Some(old) if old.spec == t.spec => CreateOutcome::Duplicate,
                Some(_) => CreateOutcome::Conflict,
                None => {
                    self.task_put(t.id(), enc);
                    if t.state == TaskState::Scheduled {
                        self.schedule(t);
                    }
                    CreateOutcome::Created
                }
            });
        }
        Ok(out)
    }

    fn cancel(&mut self, id: &str, now_ms: u64) -> Result<CancelOutcome> {
        let mut t = match self.task(id)? {
            None => return Ok(CancelOutcome::NotFound),
            Some(t) if t.state.is_final() => return Ok(CancelOutcome::AlreadyFinal(t.state)),
            Some(t) => t,
        };
        if t.state == TaskState::Scheduled {
            self.unschedule(&t);
        }
        self.release(id)?;
        t.state = TaskState::Cancelled;
        t.next_due_ms = None;
        t.updated_at_ms = now_ms;
        self.finalize(&t);
        Ok(CancelOutcome::Cancelled)
    }

    fn claim(
        &mut self,
        now_ms: u64,
        limit: usize,
        until_ms: u64,
        next_token: &mut u64,
    ) -> Result<Vec<Claimed>> {
        let mut ids: Vec<String> = self
            .at_keys(AtIndex::Expiry, now_ms + 1, limit)?
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        for r in [0u8, 1] {
            let left = limit.saturating_sub(ids.len());
            if left == 0 {
                break;
            }
            let keys = self.due_keys(r, now_ms, left)?;
            for (r, at, id) in &keys {
                self.due_del((*r, *at, id));
            }
            if let (Some((_, at, id)), Some(slot)) = (keys.last(), due_slot(r)) {
                self.removed_to(slot, *at, id);
            }
            ids.extend(keys.into_iter().map(|(_, _, id)| id));
        }
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            self.release(&id)?;
            *next_token += 1;
            let lease = Lease {
                until_ms,
                token: *next_token,
            };
            self.lease_put(&id, &encode_lease(&id, lease));
            self.at_set(AtIndex::Expiry, true, until_ms, &id);
            let mut t = self.indexed(&id)?;
            t.state = TaskState::Delivering;
            self.put(&t);
            out.push(Claimed {
                task: t,
                token: lease.token.to_string(),
            });
        }
        Ok(out)
    }

    fn finish(&mut self, c: &Claimed, f: Finish, now_ms: u64) -> Result<bool> {
        let id = c.task.id();
        match self.lease(id)? {
            Some(l) if l.token.to_string() == c.token => {}
            _ => return Ok(false),
        }
        self.release(id)?;
        let mut t = self.indexed(id)?;
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
                self.finalize(&t);
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
                self.put(&t);
                self.schedule(&t);
            }
        }
        Ok(true)
    }

    /// The head of each index: nothing else is read.
    fn next_due(&mut self) -> Result<Option<u64>> {
        let due = [0u8, 1]
            .into_iter()
            .map(|r| self.due_keys(r, u64::MAX - 1, 1))
            .collect::<Result<Vec<_>>>()?;
        let expiry = self.at_keys(AtIndex::Expiry, u64::MAX, 1)?;
        let due = due.into_iter().flatten().map(|(_, at, _)| at);
        Ok(due.chain(expiry.into_iter().map(|(at, _)| at)).min())
    }

    /// Drops up to `max` final tasks last changed before `cutoff_ms`.
    pub(crate) fn sweep(&mut self, cutoff_ms: u64, max: usize) -> Result<usize> {
        let gone = self.at_keys(AtIndex::Finished, cutoff_ms, max)?;
        for (at, id) in &gone {
            self.at_set(AtIndex::Finished, false, *at, id);
            self.task_del(id);
        }
        if let Some((at, id)) = gone.last() {
            self.removed_to(AtIndex::Finished.slot(), *at, id);
        }
        Ok(gone.len())
    }

    /// The retention sweep that runs with every batch carrying a clock.
    pub(crate) fn sweep_some(&mut self, now_ms: u64, retention_ms: u64) -> Result<()> {
        if now_ms > retention_ms {
            self.sweep(now_ms - retention_ms, SWEEP_PER_BATCH)?;
        }
        Ok(())
    }

    /// At open: the leases of the previous process died with it, so every
    /// task it was delivering is due again (same attempt number). Bounded by
    /// what was in flight, not by the number of tasks.
    pub(crate) fn requeue_leased(&mut self) -> Result<usize> {
        let ids = self.leased_ids()?;
        for id in &ids {
            self.release(id)?;
            let mut t = self.indexed(id)?;
            if t.state == TaskState::Delivering {
                t.state = TaskState::Scheduled;
                self.put(&t);
                self.schedule(&t);
            }
        }
        Ok(ids.len())
    }
}

/// The current time carried by an operation, for the retention sweep.
fn clock_of(op: &Op) -> Option<u64> {
    match op {
        Op::Cancel { now_ms, .. } | Op::Claim { now_ms, .. } | Op::Finish { now_ms, .. } => {
            Some(*now_ms)
        }
        _ => None,
    }
}
