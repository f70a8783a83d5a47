//! The dispatcher's state: assigned partitions, their lanes and trackers,
//! in-flight limits, backpressure and freezing. Pure logic, no I/O: the
//! runtime feeds it records and completions and carries out its actions.
//!
//! # Layout
//!
//! - this file: the partitions, fetched records in, jobs out.
//! - `finish`: finished and failed jobs, freezing and resuming a partition.
//! - [`types`]: jobs, outcomes, consumer actions, commit points, frozen info.
//! - `budget`: the byte budget over fetched, unfinished records.
//! - `revoke`: revoking partitions and the commit points sent to the broker.
//! - `held`: retry-tier records held until due (on an injectable clock).
//! - `tests`: the pure logic on injected time.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use rebound_core::{epoch_ms, Record, Topic};

/// Now, in epoch milliseconds: the wall clock, or a test's.
pub(crate) type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

use crate::config::Ordering;
use crate::lanes::{Lanes, Queued};
use crate::metrics::Metrics;
use crate::retained::Retained;
use crate::tracker::{OffsetTracker, Push};

mod budget;
#[cfg(test)]
mod budget_tests;
mod finish;
mod held;
mod revoke;
#[cfg(test)]
mod tests;
pub mod types;

use budget::size_of;
use held::due_of;
use types::Frozen;
pub(crate) use types::{Action, Job, Outcome};
pub use types::{CommitPoint, FrozenInfo};

/// A topic-partition.
pub type Tp = (Topic, i32);

struct Partition {
    tp: Tp,
    epoch: u64,
    /// Bytes of this partition's records fetched and not finished.
    bytes: usize,
    tracker: OffsetTracker,
    lanes: Lanes,
    in_flight: usize,
    buffered: usize,
    frozen: Option<Frozen>,
    revoking: bool,
    paused: bool,
    in_ready: bool,
    last_sent: Option<(i64, String)>,
    processed: prometheus::IntCounter,
    /// Retry-tier partition: records wait in `held` until their due time.
    delayed: bool,
    held: VecDeque<(i64, Queued)>,
}

/// Limits the dispatcher enforces.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub ordering: Ordering,
    pub max_in_flight: usize,
    pub per_partition: usize,
    pub max_buffered: usize,
    /// Bytes fetched and not finished, across partitions, before fetching pauses.
    pub max_buffered_bytes: usize,
    pub max_batch: usize,
    pub metadata_budget: usize,
    pub delayed_topics: Vec<String>,
}

/// Counters the runtime reports at the end.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DispatchStats {
    /// Records whose handler succeeded.
    pub processed: u64,
    /// Handler failures (each freezes a partition).
    pub failed: u64,
    /// Records skipped because commit metadata said they were finished.
    pub skipped_done: u64,
    /// Fetched records dropped because their partition was revoked.
    pub dropped_revoked: u64,
}

pub(crate) struct Dispatcher {
    limits: Limits,
    parts: Vec<Option<Partition>>,
    index: HashMap<Tp, usize>,
    free: Vec<usize>,
    ready: VecDeque<usize>,
    in_flight: usize,
    buffered: usize,
    next_epoch: u64,
    draining: bool,
    actions: Vec<Action>,
    last_lookup: Option<(Tp, usize)>,
    metrics: Arc<Metrics>,
    held: usize,
    gated: bool,
    /// Bytes of every record fetched and not finished (queued, held, in flight).
    bytes: usize,
    /// Fetching paused for the byte budget (until back under half of it).
    over_budget: bool,
    retained: Retained,
    /// Decides when held retry-tier records are due.
    clock: Clock,
    pub stats: DispatchStats,
}

impl Dispatcher {
    pub fn new(limits: Limits, metrics: Arc<Metrics>) -> Self {
        Self::with_clock(limits, metrics, Arc::new(epoch_ms))
    }

    /// Like [`Dispatcher::new`] on the given clock (tests inject time).
    pub fn with_clock(limits: Limits, metrics: Arc<Metrics>, clock: Clock) -> Self {
        Dispatcher {
            limits,
            parts: Vec::new(),
            index: HashMap::new(),
            free: Vec::new(),
            ready: VecDeque::new(),
            in_flight: 0,
            buffered: 0,
            next_epoch: 1,
            draining: false,
            actions: Vec::new(),
            last_lookup: None,
            metrics,
            held: 0,
            gated: false,
            bytes: 0,
            over_budget: false,
            retained: Retained::default(),
            clock,
            stats: DispatchStats::default(),
        }
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Bytes of every record fetched and not finished (the budget's measure).
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// Adds a newly assigned partition starting at its committed position.
    pub fn assign(&mut self, tp: Tp, committed: Option<i64>, metadata: &str) {
        if let Some(&slot) = self.index.get(&tp) {
            if self.parts[slot].as_ref().is_some_and(|p| !p.revoking) {
                return;
            }
            self.remove(slot);
        }
        let lanes = match self.limits.ordering {
            Ordering::Key => Lanes::keyed(),
            _ => Lanes::fifo(),
        };
        let epoch = self.next_epoch;
        self.next_epoch += 1;
        let start = self.retained.start(&tp, committed, metadata);
        if start.restored {
            tracing::info!(topic = %tp.0, partition = tp.1, group_offset = ?committed,
                resume_at = ?start.offset,
                "partition back unmoved: skipping the records this member finished before losing it");
        }
        let part = Partition {
            processed: self.metrics.processed_counter(&tp.0),
            tp,
            epoch,
            bytes: 0,
            tracker: OffsetTracker::new(start.offset, &start.metadata),
            lanes,
            in_flight: 0,
            buffered: 0,
            frozen: None,
            revoking: false,
            paused: false,
            in_ready: false,
            // A restored position is not the group's yet: commit it.
            last_sent: if start.restored {
                None
            } else {
                start.offset.map(|c| (c, start.metadata.clone()))
            },
            delayed: self.limits.delayed_topics.iter().any(|t| **t == *tp.0),
            held: VecDeque::new(),
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.parts[s] = Some(part);
                s
            }
            None => {
                self.parts.push(Some(part));
                self.parts.len() - 1
            }
        };
        self.index.insert(tp, slot);
    }

    fn lookup(&mut self, topic: Topic, partition: i32) -> Option<usize> {
        if let Some(((t, p), slot)) = &self.last_lookup {
            if *p == partition && *t == topic {
                return Some(*slot);
            }
        }
        let tp = (topic, partition);
        let slot = *self.index.get(&tp)?;
        self.last_lookup = Some((tp, slot));
        Some(slot)
    }

    /// Accepts a fetched record.
    pub fn push(&mut self, rec: Record) {
        let Some(slot) = self.lookup(rec.topic, rec.partition) else {
            self.stats.dropped_revoked += 1;
            return;
        };
        let p = self.parts[slot].as_mut().expect("indexed slot is live");
        if p.revoking {
            self.stats.dropped_revoked += 1;
            return;
        }
        match p.tracker.push_at(rec.offset, rec.timestamp) {
            Push::Track(seq) => {
                let size = size_of(&rec);
                p.bytes += size;
                self.bytes += size;
                let item = Queued { rec, seq };
                if p.delayed {
                    let due = due_of(&item.rec);
                    if !p.held.is_empty() || due > (self.clock)() {
                        p.held.push_back((due, item));
                        self.held += 1;
                    } else {
                        p.lanes.push(item);
                    }
                } else {
                    p.lanes.push(item);
                }
                p.buffered += 1;
                self.buffered += 1;
            }
            Push::AlreadyDone => self.stats.skipped_done += 1,
            Push::Stale => {}
        }
        self.check_budget();
        self.refresh(slot);
    }

    /// Re-evaluates readiness and pause state of a partition.
    fn refresh(&mut self, slot: usize) {
        let limits = &self.limits;
        let draining = self.draining;
        let Some(p) = self.parts[slot].as_mut() else {
            return;
        };
        if !p.in_ready && can_start(p, limits, draining) {
            p.in_ready = true;
            self.ready.push_back(slot);
        }
        let over = p.buffered >= limits.max_buffered;
        let under = p.buffered <= limits.max_buffered / 2;
        let want_paused =
            p.frozen.is_some() || self.gated || self.over_budget || over || (p.paused && !under);
        if want_paused != p.paused && !p.revoking {
            p.paused = want_paused;
            self.actions.push(if want_paused {
                Action::Pause(p.tp)
            } else {
                Action::Resume(p.tp)
            });
        }
    }

    /// The next job allowed to start, if any.
    pub fn next_job(&mut self) -> Option<Job> {
        if self.draining || self.gated {
            return None;
        }
        while self.in_flight < self.limits.max_in_flight {
            let slot = self.ready.pop_front()?;
            let limits = &self.limits;
            let Some(p) = self.parts[slot].as_mut() else {
                continue;
            };
            p.in_ready = false;
            if !can_start(p, limits, false) {
                continue;
            }
            let job = if limits.ordering == Ordering::Batch {
                let items = p.lanes.pop_batch(limits.max_batch);
                p.buffered -= items.len();
                self.buffered -= items.len();
                let (recs, seqs) = items.into_iter().map(|q| (q.rec, q.seq)).unzip();
                Job::Batch {
                    slot,
                    epoch: p.epoch,
                    recs,
                    seqs,
                }
            } else {
                let (lane, item) = p.lanes.pop_ready().expect("ready partition has a record");
                p.buffered -= 1;
                self.buffered -= 1;
                Job::One {
                    slot,
                    epoch: p.epoch,
                    lane,
                    item,
                }
            };
            p.in_flight += 1;
            self.in_flight += 1;
            self.refresh(slot);
            return Some(job);
        }
        None
    }

    fn remove(&mut self, slot: usize) {
        if let Some(p) = self.parts[slot].take() {
            self.buffered -= p.buffered;
            self.bytes -= p.bytes;
            self.held -= p.held.len();
            if p.frozen.is_some() {
                self.metrics.frozen_partitions.dec();
            }
            self.index.remove(&p.tp);
            self.free.push(slot);
            self.last_lookup = None;
        }
    }

    /// Stops (or restarts) starting records and pauses (resumes) every
    /// partition, e.g. while a circuit breaker is open.
    pub fn set_gated(&mut self, gated: bool) {
        if self.gated == gated {
            return;
        }
        self.gated = gated;
        for slot in 0..self.parts.len() {
            self.refresh(slot);
        }
    }

    /// Stops starting new jobs (shutdown).
    pub fn start_draining(&mut self) {
        self.draining = true;
    }

    /// Pending consumer actions, oldest first.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Assigned partitions.
    pub fn assigned(&self) -> Vec<Tp> {
        self.parts.iter().flatten().map(|p| p.tp).collect()
    }
}

fn can_start(p: &Partition, limits: &Limits, draining: bool) -> bool {
    let cap = match limits.ordering {
        Ordering::Partition | Ordering::Batch => 1,
        Ordering::Key | Ordering::Unordered => limits.per_partition,
    };
    !draining && p.frozen.is_none() && !p.revoking && p.in_flight < cap && p.lanes.has_ready()
}
