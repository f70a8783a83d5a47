//! At-least-once: records are processed in chunks as they arrive (their
//! outputs sent at once); what was processed since the last commit is
//! kept in [`Uncommitted`] and committed every `commit_interval` (or
//! `max_batch` records), before a cooperative revoke gives partitions up,
//! and when stopping.

use std::collections::BTreeMap;

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
    /// Records processed, in all and per partition.
    records: usize,
    per_key: BTreeMap<TaskKey, usize>,
    /// The output producer's failure count when the interval began.
    failed_before: u64,
}

impl Uncommitted {
    /// Adds a processed chunk: its input ranges ([`ranges_of`]) and records.
    fn add(&mut self, chunk: Ranges, batch: &[Record]) {
        for (key, (first, next)) in chunk {
            let e = self.ranges.entry(key).or_insert((first, next));
            e.1 = e.1.max(next);
        }
        for r in batch {
            *self.per_key.entry((r.topic, r.partition)).or_default() += 1;
        }
        self.records += batch.len();
    }

    /// Forgets a partition's uncommitted work (it was lost: its state is
    /// dropped, its new owner reads the records again).
    pub(crate) fn forget(&mut self, key: &TaskKey) {
        self.ranges.remove(key);
        self.records -= self.per_key.remove(key).unwrap_or(0);
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
        self.pending.add(chunk, batch);
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

#[cfg(test)]
mod tests {
    use super::*;
    use rebound_core::Topic;

    fn records(topic: &str, partition: i32, offsets: std::ops::Range<i64>) -> Vec<Record> {
        offsets.map(|o| Record::new(topic, partition, o)).collect()
    }

    /// A lost partition takes its records out of the count that triggers
    /// the next commit: the others' room is not used up by work that is
    /// gone.
    #[test]
    fn forgetting_a_partition_forgets_its_records() {
        let mut u = Uncommitted::default();
        let b = records("a", 0, 0..5);
        u.add(ranges_of(&b), &b);
        let b = records("a", 1, 10..13);
        u.add(ranges_of(&b), &b);
        let b = records("a", 0, 5..7);
        u.add(ranges_of(&b), &b);
        assert_eq!(u.records, 10);
        assert_eq!(u.ranges[&(Topic::intern("a"), 0)], (0, 7));

        u.forget(&(Topic::intern("a"), 0));
        assert_eq!(u.records, 3);
        assert!(!u.ranges.contains_key(&(Topic::intern("a"), 0)));
        assert_eq!(u.ranges[&(Topic::intern("a"), 1)], (10, 13));

        u.forget(&(Topic::intern("b"), 0));
        u.forget(&(Topic::intern("a"), 1));
        assert_eq!(u.records, 0);
        assert!(u.ranges.is_empty());
    }
}
