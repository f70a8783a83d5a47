//! Applying assignment changes: a revoked partition's state is closed
//! (exactly-once, it is committed already: revokes happen only between
//! commits; at-least-once, a cooperative revoke commits first and then
//! gives the partitions up, a lost partition's changes since the last
//! commit are dropped with its uncommitted offsets); an
//! assigned partition's state is opened and restored before any of its
//! records is processed.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::Consumer as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rebound_core::Topic;
use tracing::{info, warn};

use super::commit::Abort;
use super::consumer::{Consumer, Event};
use super::Runner;
use crate::error::{Result, StreamError};
use crate::state::{restore, Task};

/// An input partition (the topic interned: no allocation per lookup).
pub(crate) type TaskKey = (Topic, i32);

impl Runner {
    /// Applies `events` in order.
    pub(crate) async fn apply(&mut self, events: Vec<Event>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        for e in events {
            match e {
                Event::Revoked(parts) => {
                    for key in parts {
                        self.tasks.remove(&key);
                        self.pending.forget(&key);
                    }
                }
                Event::Revoking(parts) => {
                    // Still ours: commit, then give them up. A commit the
                    // group refuses because this member's generation is
                    // gone (fenced in the meantime) leaves it as a lost
                    // revoke would: the new owner processes that work again.
                    let committed = self.commit().await.map_err(Abort::into_error);
                    let fenced = matches!(&committed, Err(e) if fenced(e));
                    self.consumer.context().give_up(&self.consumer);
                    for key in parts {
                        self.tasks.remove(&key);
                    }
                    match committed {
                        Err(e) if fenced => {
                            warn!(error = %rebound_core::DisplayChain(&e), "the commit before a revoke was refused: the new owner processes that work again");
                        }
                        other => other?,
                    }
                }
                Event::Assigned(parts) => {
                    self.health.set_assigned();
                    self.open(parts).await?;
                }
            }
            self.metrics.active_partitions.set(self.tasks.len() as i64);
        }
        self.metrics
            .state_bytes
            .set(self.tasks.values().map(|t| t.file_bytes() as i64).sum());
        Ok(())
    }

    /// Opens and restores the state of `parts` (those not open already).
    pub(crate) async fn open(&mut self, parts: Vec<TaskKey>) -> Result<()> {
        let parts: Vec<TaskKey> = parts
            .into_iter()
            .filter(|k| !self.tasks.contains_key(k))
            .collect();
        if parts.is_empty() {
            return Ok(());
        }
        let committed = committed(&self.consumer, &parts, self.cfg.session_timeout).await?;
        self.health.restoring(parts.len());
        self.metrics.restoring.set(parts.len() as i64);
        // One blocking job opens the partitions' files and restores them
        // together: one changelog reader per store for all of them.
        let mut specs = Vec::with_capacity(parts.len());
        for key in &parts {
            let owned: Vec<(usize, String, String)> = self
                .topology
                .stores
                .iter()
                .enumerate()
                .filter(|(_, s)| s.source == key.0.as_str())
                .map(|(id, s)| (id, s.name.clone(), self.topology.changelog_topic(&s.name)))
                .collect();
            let path = self.dir.partition_file(&key.0, key.1);
            let m = committed.get(key).copied().unwrap_or(0);
            specs.push((*key, path, owned, m));
        }
        let total = self.topology.stores.len();
        let (src, metrics) = (self.restore_src.clone(), self.metrics.clone());
        let job = tokio::task::spawn_blocking(move || -> Result<Vec<(TaskKey, Task)>> {
            let mut ready = Vec::new();
            let (mut keys, mut restoring) = (Vec::new(), Vec::new());
            for (key, path, owned, m) in specs {
                let task = Task::open(key.1, path, &owned, total)?;
                if owned.is_empty() {
                    ready.push((key, task));
                } else {
                    // At-least-once writes the file before committing the
                    // input, so the file may be ahead of the group: keep it.
                    let target = task.checkpoint.max(m);
                    keys.push(key);
                    restoring.push(restore::Restoring { task, target });
                }
            }
            restore::restore(&src, &mut restoring, &metrics)?;
            ready.extend(keys.into_iter().zip(restoring.into_iter().map(|r| r.task)));
            Ok(ready)
        });
        let result = match job.await {
            Ok(r) => r,
            Err(e) => Err(StreamError::Stopped(format!("restore task: {e}"))),
        };
        self.metrics.restoring.set(0);
        self.health.looped();
        for (key, task) in result? {
            info!(
                topic = key.0.as_str(),
                partition = key.1,
                checkpoint = task.checkpoint,
                "partition ready"
            );
            self.tasks.insert(key, task);
        }
        self.health.restoring(0);
        Ok(())
    }
}

/// Whether a commit failed because this member is no longer in the group's
/// current generation (its partitions are someone else's now).
fn fenced(e: &StreamError) -> bool {
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode as C;
    matches!(
        e,
        StreamError::Kafka {
            source: KafkaError::ConsumerCommit(
                C::IllegalGeneration | C::UnknownMemberId | C::RebalanceInProgress
            ),
            ..
        }
    )
}

/// The group's committed offset of each of `parts` (absent: never committed).
async fn committed(
    consumer: &Consumer,
    parts: &[TaskKey],
    timeout: Duration,
) -> Result<HashMap<TaskKey, i64>> {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition(t, *p);
    }
    let c = consumer.clone();
    let got = tokio::task::spawn_blocking(move || c.committed_offsets(tpl, timeout))
        .await
        .map_err(|e| StreamError::Stopped(e.to_string()))?
        .map_err(|e| StreamError::kafka("reading the group's committed offsets", e))?;
    Ok(got
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((Topic::intern(e.topic()), e.partition()), o)),
            _ => None,
        })
        .collect())
}
