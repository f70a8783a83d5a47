//! At-least-once, pipelined: batch N's acknowledgements are awaited while
//! batch N+1 is collected and processed.
//!
//! Per loop turn: collect N+1 → (on a revoke: finish N, give the revoked
//! partitions up) → apply assignment changes → process N+1 (outputs
//! queued) → finish N → seal N+1 (its changelog queued). *Finishing* a
//! batch waits until every one of its outputs and changelog records is
//! acknowledged, writes its sealed changes and checkpoint to the state
//! files, then commits its input offsets: no offset moves past an
//! unacknowledged record, and a failed one stops the application with the
//! batch uncommitted (a restart processes it again). At most one batch is
//! pending besides the one being built.
//!
//! A revoke seen while N is pending is deferred (see `consumer`): N is
//! finished first, then the partitions are given up, so the new owner
//! starts at N's end with N's state in the changelog and nothing counted
//! twice.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rebound_core::headers::STREAM_INPUT_OFFSET;
use rebound_core::{Header, Record};
use rebound_producer::OutRecord;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::acks::BatchAcks;
use super::commit::{changelog_positions, Abort, Ack, Ranges, Sink};
use super::consumer::{collect, give_up, Event};
use super::tasks::TaskKey;
use super::{Output, Runner};
use crate::error::{Result, StreamError};
use crate::state::Sealed;

/// How long a batch's outputs may take to be acknowledged (librdkafka
/// reports each one by its delivery timeout anyway).
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// A processed batch waiting for its acknowledgements.
pub(crate) struct PendingBatch {
    ranges: Ranges,
    outputs: Arc<BatchAcks>,
    changelog: Vec<(TaskKey, usize, Ack)>,
    sealed: Vec<(TaskKey, Sealed)>,
}

impl Runner {
    /// The at-least-once loop; returns when `cancel` fires (everything
    /// processed committed) or on the first failure.
    pub(crate) async fn run_alo(&mut self, cancel: &CancellationToken) -> Result<()> {
        let mut batch = Vec::with_capacity(self.cfg.max_batch);
        let mut pending: Option<PendingBatch> = None;
        loop {
            batch.clear();
            let mut events = Vec::new();
            let stopping = collect(
                &self.consumer,
                cancel,
                self.cfg.commit_interval,
                self.cfg.max_batch,
                &mut batch,
                &mut events,
            )
            .await;
            self.health.looped();
            if events.iter().any(|e| matches!(e, Event::Revoked(_))) {
                // Lost partitions are someone else's already: their
                // offsets are not committed (the new owner starts from
                // the group's; the state file may be ahead, as after a
                // crash).
                let lost = self.consumer.context().take_lost();
                if let Some(p) = pending.take() {
                    self.finish(p, (!lost).then_some(CommitMode::Sync)).await?;
                }
                let n = give_up(&self.consumer)
                    .map_err(|e| StreamError::kafka("giving up revoked partitions", e))?;
                self.metrics.revokes_deferred.inc_by(n as u64);
            }
            self.apply(events).await?;
            let next = if batch.is_empty() {
                None
            } else {
                Some(self.start(&mut batch).await.map_err(Abort::into_error)?)
            };
            if let Some(p) = pending.take() {
                self.finish(p, Some(CommitMode::Async)).await?;
            }
            if let Some((ranges, outputs)) = next {
                pending = Some(self.seal(ranges, outputs).await?);
            }
            self.consumer.context().defer_revokes(pending.is_some());
            if stopping {
                if let Some(p) = pending.take() {
                    self.finish(p, Some(CommitMode::Sync)).await?;
                }
                self.consumer.context().defer_revokes(false);
                return Ok(());
            }
        }
    }

    /// Processes `batch`, its outputs queued; returns its offset ranges
    /// and its outputs' acknowledgements.
    async fn start(&mut self, batch: &mut [Record]) -> Result<(Ranges, Arc<BatchAcks>), Abort> {
        let ranges = self.ranges(batch).await?;
        let outputs = Arc::new(BatchAcks::default());
        self.process(batch, &mut Sink::Alo(&outputs)).await?;
        Ok((ranges, outputs))
    }

    /// Seals the batch's state changes and queues them to the changelogs,
    /// each tagged with the input offset that changed it.
    async fn seal(&mut self, ranges: Ranges, outputs: Arc<BatchAcks>) -> Result<PendingBatch> {
        let Output::Alo(p) = &self.out else {
            unreachable!("only at-least-once pipelines batches")
        };
        let (mut changelog, mut sealed) = (Vec::new(), Vec::with_capacity(ranges.len()));
        for key in ranges.keys() {
            let task = self.tasks.get_mut(key).expect("opened by start");
            let mut changes = task.seal();
            for (id, rows) in changes.stores.iter_mut().enumerate() {
                let Some(store) = task.stores[id].as_ref().filter(|_| !rows.is_empty()) else {
                    continue;
                };
                // One record reused for the store: each row's key and value
                // are moved in to be queued (librdkafka copies them) and
                // moved back for the state file, never cloned.
                let mut rec = OutRecord {
                    topic: store.changelog.clone(),
                    partition: Some(task.partition),
                    key: None,
                    value: None,
                    headers: vec![Header {
                        name: STREAM_INPUT_OFFSET.to_string(),
                        value: None,
                    }],
                    timestamp: None,
                };
                for (k, v, tag) in rows.iter_mut() {
                    rec.key = Some(std::mem::take(k));
                    rec.value = v.take();
                    rec.headers[0].value = Some(tag.to_string().into_bytes());
                    let queued = p.enqueue(&rec).await;
                    (*k, *v) = (rec.key.take().unwrap_or_default(), rec.value.take());
                    changelog.push((*key, id, Ack::Alo(queued?)));
                }
                self.metrics.changelog_writes.inc_by(rows.len() as u64);
            }
            sealed.push((*key, changes));
        }
        Ok(PendingBatch {
            ranges,
            outputs,
            changelog,
            sealed,
        })
    }

    /// Waits for every acknowledgement of `p`, writes its state and
    /// commits its input offsets: asynchronously while the partitions stay
    /// (a failure stops the loop at the next commit; a later commit
    /// carries later offsets anyway), synchronously before they are given
    /// up or the application stops; not at all when `mode` is `None` (the
    /// partitions were lost).
    async fn finish(&mut self, p: PendingBatch, mode: Option<CommitMode>) -> Result<()> {
        p.outputs.wait(ACK_TIMEOUT).await?;
        let positions = changelog_positions(p.changelog)
            .await
            .map_err(Abort::into_error)?;
        for (key, sealed) in &p.sealed {
            let task = self
                .tasks
                .get_mut(key)
                .expect("revokes wait for the pending batch");
            let next = p.ranges[key].1;
            let cl = positions.get(key).map_or(&[][..], Vec::as_slice);
            task.persist_sealed(sealed, task.checkpoint.max(next), cl)?;
        }
        match mode {
            Some(mode) => {
                self.commit_offsets(&p.ranges, mode).await?;
                self.metrics.commit("committed");
            }
            None => warn!(
                partitions = p.ranges.len(),
                "assignment lost with a batch pending: its offsets are not committed"
            ),
        }
        Ok(())
    }

    async fn commit_offsets(&self, ranges: &Ranges, mode: CommitMode) -> Result<()> {
        let failed = |e| StreamError::kafka("committing the input offsets", e);
        if let Some(e) = self.consumer.context().take_commit_failure() {
            return Err(failed(e));
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), (_, next)) in ranges {
            tpl.add_partition_offset(t.as_str(), *p, Offset::Offset(*next))
                .map_err(|e| StreamError::kafka("committing", e))?;
        }
        match mode {
            // Only queues the request.
            CommitMode::Async => self.consumer.commit(&tpl, mode).map_err(failed),
            CommitMode::Sync => {
                let c = self.consumer.clone();
                tokio::task::spawn_blocking(move || c.commit(&tpl, mode))
                    .await
                    .map_err(|e| StreamError::Stopped(e.to_string()))?
                    .map_err(failed)
            }
        }
    }
}
