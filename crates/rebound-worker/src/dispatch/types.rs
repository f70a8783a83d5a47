//! What the dispatcher hands out and reports: jobs and their outcomes,
//! consumer actions, commit points, frozen partitions.

use std::time::SystemTime;

use rebound_core::{HandlerError, Record};

use super::Tp;
use crate::lanes::Queued;

/// Work handed to a handler.
#[derive(Debug)]
pub(crate) enum Job {
    One {
        slot: usize,
        epoch: u64,
        lane: u64,
        item: Queued,
    },
    Batch {
        slot: usize,
        epoch: u64,
        recs: Vec<Record>,
        seqs: Vec<u64>,
    },
}

impl Job {
    pub(super) fn slot_epoch(&self) -> (usize, u64) {
        match self {
            Job::One { slot, epoch, .. } | Job::Batch { slot, epoch, .. } => (*slot, *epoch),
        }
    }

    /// The first record of the job.
    pub fn first(&self) -> Option<&Record> {
        match self {
            Job::One { item, .. } => Some(&item.rec),
            Job::Batch { recs, .. } => recs.first(),
        }
    }
}

/// A finished job: `Err((i, e))` means records from index `i` on failed.
pub(crate) type Outcome = Result<(), (usize, HandlerError)>;

/// Something the runtime must do on the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    Pause(Tp),
    Resume(Tp),
}

/// A committable position for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitPoint {
    /// Topic and partition.
    pub tp: Tp,
    /// First unfinished offset.
    pub offset: i64,
    /// Finished offsets above it, encoded.
    pub metadata: String,
}

/// A partition halted by a failure.
#[derive(Debug, Clone)]
pub struct FrozenInfo {
    /// Topic and partition.
    pub tp: Tp,
    /// Offset of the failed record.
    pub offset: i64,
    /// The failure.
    pub error: HandlerError,
    /// When it froze.
    pub since: SystemTime,
}

/// A frozen partition's failed job (run again on resume) and its report.
pub(super) struct Frozen {
    /// The failed jobs, first failure first: in key or unordered mode more
    /// jobs of the partition were in flight and can fail after it froze.
    pub(super) jobs: Vec<Job>,
    pub(super) info: FrozenInfo,
}
