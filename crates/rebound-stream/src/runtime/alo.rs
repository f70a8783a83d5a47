//! At-least-once: records are processed in chunks as they arrive (their
//! outputs sent at once); what was processed since the last commit is
//! kept in [`Uncommitted`] and committed every `commit_interval` (or
//! `max_batch` records), before a cooperative revoke gives partitions up,
//! and when stopping.

use rebound_core::Record;
use tokio_util::sync::CancellationToken;

use super::commit::{ranges_of, Abort, Ranges};
use super::tasks::TaskKey;
use super::{Output, Runner};
use crate::config::CHUNK;
use crate::error::Result;

/// At-least-once: what was processed since the last commit.
#[derive(Default)]
pub(crate) struct Uncommitted {
    ranges: Ranges,
    records: usize,
    /// The output producer's failure count when the interval began.
    failed_before: u64,
}

impl Uncommitted {
    /// Forgets a partition's uncommitted work (it was lost: its state is
    /// dropped, its new owner reads the records again).
    pub(crate) fn forget(&mut self, key: &TaskKey) {
        self.ranges.remove(key);
    }
}

/// The at-least-once loop (see the module doc).
pub(super) async fn run_alo(r: &mut Runner, cancel: &CancellationToken) -> Result<()> {
    let mut batch = Vec::with_capacity(CHUNK.min(r.cfg.max_batch));
    let mut due = tokio::time::Instant::now() + r.cfg.commit_interval;
    loop {
        batch.clear();
        let room = r.cfg.max_batch.saturating_sub(r.pending_records()).max(1);
        let stopping = r
            .gather(cancel, due, room.min(CHUNK), true, &mut batch)
            .await?;
        if !batch.is_empty() {
            r.process(&mut batch).await.map_err(Abort::into_error)?;
        }
        let now = tokio::time::Instant::now();
        if stopping || now >= due || r.pending_records() >= r.cfg.max_batch {
            r.commit().await.map_err(Abort::into_error)?;
            due = now + r.cfg.commit_interval;
        }
        if stopping {
            return Ok(());
        }
    }
}

impl Runner {
    /// Records processed since the last commit.
    fn pending_records(&self) -> usize {
        self.pending.records
    }

    /// Processes `batch` and sends its outputs; its state
    /// changes and offsets wait for [`Runner::commit`].
    pub(crate) async fn process(&mut self, batch: &mut [Record]) -> Result<(), Abort> {
        let chunk = ranges_of(batch);
        self.open_missing(&chunk).await?;
        if self.pending.ranges.is_empty() {
            self.pending.failed_before = self.failed_total();
        }
        for (key, (first, next)) in chunk {
            let e = self.pending.ranges.entry(key).or_insert((first, next));
            e.1 = e.1.max(next);
        }
        self.pending.records += batch.len();
        self.fill(batch, &mut Vec::new()).await
    }

    /// Commits what was processed since the last commit.
    pub(crate) async fn commit(&mut self) -> Result<(), Abort> {
        let p = std::mem::take(&mut self.pending);
        if p.ranges.is_empty() {
            return Ok(());
        }
        self.finish(&p.ranges, Vec::new(), p.failed_before).await?;
        self.metrics.commit("committed");
        Ok(())
    }

    fn failed_total(&self) -> u64 {
        match &self.out {
            Output::Alo(p) => p.metrics().failed_total(),
            Output::Eos(_) => 0,
        }
    }
}
