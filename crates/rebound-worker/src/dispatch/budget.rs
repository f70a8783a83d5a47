//! The byte budget: every record fetched and not finished (queued, held for
//! a retry tier, in flight or frozen) counts its bytes; at the budget all
//! fetching pauses, at half it resumes. The per-partition record limit stays
//! as a fairness bound.

use rebound_core::Record;

use super::{Dispatcher, Job};

impl Dispatcher {
    /// Pauses fetching everywhere once the fetched-but-unfinished bytes reach
    /// the budget, and resumes once they fall to half of it.
    pub(super) fn check_budget(&mut self) {
        let budget = self.limits.max_buffered_bytes;
        let over = if self.over_budget {
            self.bytes > budget / 2
        } else {
            self.bytes >= budget
        };
        if over != self.over_budget {
            self.over_budget = over;
            tracing::debug!(bytes = self.bytes, budget, over, "fetch byte budget");
            for slot in 0..self.parts.len() {
                self.refresh(slot);
            }
        }
    }
}

/// Memory a fetched record holds: its bytes plus a fixed allowance for the
/// record and its bookkeeping.
pub(super) fn size_of(rec: &Record) -> usize {
    const OVERHEAD: usize = 128;
    OVERHEAD
        + rec.key.as_ref().map_or(0, Vec::len)
        + rec.value.as_ref().map_or(0, Vec::len)
        + rec
            .headers
            .iter()
            .map(|h| h.name.len() + h.value.as_ref().map_or(0, Vec::len))
            .sum::<usize>()
}

pub(super) fn job_size(job: &Job) -> usize {
    match job {
        Job::One { item, .. } => size_of(&item.rec),
        Job::Batch { recs, .. } => recs.iter().map(size_of).sum(),
    }
}
