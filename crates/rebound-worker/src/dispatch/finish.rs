//! Finished jobs: a success marks its records done; a failure freezes the
//! partition (nothing of it starts, the watermark cannot pass the failed
//! record) until it is resumed, when the failed job runs again first.

use std::time::SystemTime;

use rebound_core::HandlerError;

use super::budget::{job_size, size_of};
use super::types::Frozen;
use super::{DispatchStats, Dispatcher, FrozenInfo, Job, Outcome, Partition, Tp};

impl Dispatcher {
    /// Applies a finished job. Returns the frozen partition's info when the
    /// job failed and froze its partition (a failure in an already frozen
    /// partition joins the failed jobs and returns nothing).
    pub fn complete(&mut self, job: Job, outcome: Outcome) -> Option<FrozenInfo> {
        self.in_flight -= 1;
        let (slot, epoch) = job.slot_epoch();
        let p = self.parts.get_mut(slot).and_then(|p| p.as_mut())?;
        if p.epoch != epoch {
            return None;
        }
        p.in_flight -= 1;
        if outcome.is_ok() {
            let size = job_size(&job);
            p.bytes -= size;
            self.bytes -= size;
        }
        let frozen = match (job, outcome) {
            (Job::One { lane, item, .. }, Ok(())) => {
                p.tracker.complete(item.seq);
                p.lanes.finish(lane);
                p.processed.inc();
                self.stats.processed += 1;
                None
            }
            (Job::Batch { seqs, .. }, Ok(())) => {
                finish_batch(p, &seqs, &mut self.stats);
                None
            }
            (job @ Job::One { .. }, Err((_, error))) => {
                self.stats.failed += 1;
                self.metrics.record_failure(&p.tp.0, error.kind);
                freeze(p, job, error)
            }
            (
                Job::Batch {
                    slot,
                    epoch,
                    mut recs,
                    mut seqs,
                },
                Err((at, error)),
            ) => {
                let at = at.min(seqs.len());
                let rest_recs = recs.split_off(at);
                let rest_seqs = seqs.split_off(at);
                let done: usize = recs.iter().map(size_of).sum();
                p.bytes -= done;
                self.bytes -= done;
                finish_batch(p, &seqs, &mut self.stats);
                let job = Job::Batch {
                    slot,
                    epoch,
                    recs: rest_recs,
                    seqs: rest_seqs,
                };
                self.stats.failed += 1;
                self.metrics.record_failure(&p.tp.0, error.kind);
                freeze(p, job, error)
            }
        };
        if frozen.is_some() {
            self.metrics.frozen_partitions.inc();
        }
        self.check_budget();
        self.refresh(slot);
        frozen
    }

    /// Unfreezes a partition: its failed jobs run again first. Returns the
    /// jobs to start, none if the partition is not frozen here.
    pub fn resume(&mut self, tp: &Tp) -> Vec<Job> {
        let Some(&slot) = self.index.get(tp) else {
            return Vec::new();
        };
        let Some(p) = self.parts[slot].as_mut() else {
            return Vec::new();
        };
        let Some(frozen) = p.frozen.take() else {
            return Vec::new();
        };
        if p.revoking {
            return Vec::new();
        }
        p.in_flight += frozen.jobs.len();
        self.in_flight += frozen.jobs.len();
        self.metrics.frozen_partitions.dec();
        self.refresh(slot);
        frozen.jobs
    }

    /// Currently frozen partitions.
    pub fn frozen(&self) -> Vec<FrozenInfo> {
        self.parts
            .iter()
            .flatten()
            .filter_map(|p| p.frozen.as_ref().map(|f| f.info.clone()))
            .collect()
    }
}

/// Marks the records `seqs` of a batch finished.
fn finish_batch(p: &mut Partition, seqs: &[u64], stats: &mut DispatchStats) {
    for &seq in seqs {
        p.tracker.complete(seq);
    }
    p.processed.inc_by(seqs.len() as u64);
    stats.processed += seqs.len() as u64;
}

/// Freezes `p` at its failed `job`; `None` when it was frozen already (the
/// job joins the failed ones, the first failure stays the one reported).
fn freeze(p: &mut Partition, job: Job, error: HandlerError) -> Option<FrozenInfo> {
    // The failed job keeps its lane busy and its records unfinished: nothing
    // of the partition starts while frozen, and the watermark cannot pass it.
    if let Some(f) = &mut p.frozen {
        f.jobs.push(job);
        return None;
    }
    let info = FrozenInfo {
        tp: p.tp,
        offset: job.first().map(|r| r.offset).unwrap_or(-1),
        error,
        since: SystemTime::now(),
    };
    p.frozen = Some(Frozen {
        jobs: vec![job],
        info: info.clone(),
    });
    Some(info)
}
