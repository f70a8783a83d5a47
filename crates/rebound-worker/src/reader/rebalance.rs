//! A group member's rebalance handling: where each assigned partition
//! starts (the group's committed offset, else the reader's start), and
//! committing what was acknowledged before partitions are revoked.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;

use super::cursor::Cursor;
use super::error::{ReaderError, Result};

/// What the rebalance callback and the reader share.
#[derive(Default)]
pub(crate) struct State {
    /// Assigned partitions.
    pub(crate) cursors: BTreeMap<i32, Cursor>,
    /// Acknowledged, not yet committed: partition → next offset.
    pub(crate) acked: BTreeMap<i32, i64>,
    /// First error met in a rebalance callback.
    pub(crate) error: Option<ReaderError>,
}

pub(crate) struct GroupCtx {
    pub(crate) topic: String,
    pub(crate) timeout: Duration,
    /// Where each partition starts when the group has no committed offset,
    /// as a template cursor.
    pub(crate) fresh: BTreeMap<i32, Cursor>,
    /// End as of subscribing (unless following).
    pub(crate) stops: BTreeMap<i32, Option<i64>>,
    pub(crate) follow: bool,
    pub(crate) state: Arc<Mutex<State>>,
}

impl GroupCtx {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn assign(&self, consumer: &BaseConsumer<Self>, tpl: &mut TopicPartitionList) -> Result<()> {
        let kerr = |op, source: KafkaError| ReaderError::Topic {
            op,
            topic: self.topic.clone(),
            source: source.into(),
        };
        let committed = consumer
            .committed_offsets(tpl.clone(), self.timeout)
            .map_err(|e| kerr("reading the group's committed offsets", e))?;
        let mut state = self.state();
        for e in tpl.elements_for_topic(&self.topic) {
            let p = e.partition();
            let stored = committed
                .find_partition(&self.topic, p)
                .and_then(|c| match c.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                });
            let stop = self.stops.get(&p).copied().flatten();
            let cursor = match (stored, self.fresh.get(&p)) {
                (Some(o), _) => Cursor::new(o, stop, None, self.follow),
                (None, Some(fresh)) => fresh.clone(),
                // A partition added since subscribing: from its beginning.
                (None, None) => Cursor::new(0, None, None, self.follow),
            };
            state.cursors.insert(p, cursor);
        }
        drop(state);
        let state = self.state();
        let mut with_offsets = TopicPartitionList::new();
        for e in tpl.elements_for_topic(&self.topic) {
            let p = e.partition();
            let from = state.cursors[&p].fetch_from();
            with_offsets
                .add_partition_offset(&self.topic, p, Offset::Offset(from))
                .map_err(|e| kerr("assigning", e))?;
        }
        drop(state);
        match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_assign(&with_offsets),
            _ => consumer.assign(&with_offsets),
        }
        .map_err(|e| kerr("assigning the partitions", e))
    }

    fn revoke(&self, consumer: &BaseConsumer<Self>, tpl: &TopicPartitionList) -> Result<()> {
        let revoked: Vec<i32> = tpl
            .elements_for_topic(&self.topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        let result = commit_acked(consumer, &self.topic, &mut self.state(), Some(&revoked));
        {
            // Forget them even when the commit failed: committing them later,
            // for partitions another member owns by then, could move the
            // group's offsets back over its progress.
            let mut state = self.state();
            for p in &revoked {
                state.cursors.remove(p);
                state.acked.remove(p);
            }
        }
        let unassigned = match consumer.rebalance_protocol() {
            RebalanceProtocol::Cooperative => consumer.incremental_unassign(tpl),
            _ => consumer.unassign(),
        };
        result?;
        unassigned.map_err(|source| ReaderError::Topic {
            op: "unassigning the partitions",
            topic: self.topic.clone(),
            source: source.into(),
        })
    }
}

impl ClientContext for GroupCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(?level, fac, "librdkafka: {log_message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("librdkafka: {error}: {reason}");
    }
}

impl ConsumerContext for GroupCtx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        let result = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => self.assign(consumer, tpl),
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => self.revoke(consumer, tpl),
            other => {
                let _ = consumer.unassign();
                Err(ReaderError::Topic {
                    op: "rebalancing",
                    topic: self.topic.clone(),
                    source: Box::new(KafkaError::Rebalance(other.into())),
                })
            }
        };
        if let Err(e) = result {
            self.state().error.get_or_insert(e);
        }
    }
}

/// Commits the acknowledged offsets (of `only` these partitions, or all)
/// synchronously and forgets them.
pub(crate) fn commit_acked(
    consumer: &BaseConsumer<GroupCtx>,
    topic: &str,
    state: &mut State,
    only: Option<&[i32]>,
) -> Result<()> {
    let mut tpl = TopicPartitionList::new();
    let picked: Vec<(i32, i64)> = state
        .acked
        .iter()
        .filter(|(p, _)| only.is_none_or(|o| o.contains(p)))
        .map(|(&p, &o)| (p, o))
        .collect();
    if picked.is_empty() {
        return Ok(());
    }
    for &(p, o) in &picked {
        tpl.add_partition_offset(topic, p, Offset::Offset(o))
            .map_err(|source| ReaderError::Partition {
                op: "committing",
                topic: topic.to_string(),
                partition: p,
                source: source.into(),
            })?;
    }
    consumer
        .commit(&tpl, CommitMode::Sync)
        .map_err(|source| ReaderError::Topic {
            op: "committing",
            topic: topic.to_string(),
            source: source.into(),
        })?;
    for (p, o) in picked {
        if state.acked.get(&p) == Some(&o) {
            state.acked.remove(&p);
        }
    }
    Ok(())
}
