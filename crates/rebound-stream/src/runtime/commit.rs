//! Processing records and committing them.
//!
//! At-least-once: each chunk of records is processed as it comes (its
//! outputs sent at once); every commit interval, the changelog records of
//! the keys changed are sent, every output and changelog record is
//! acknowledged, the state files written (with the checkpoint), then the
//! input offsets committed. Exactly-once: one batch's outputs, changelog
//! and input offsets go in one transaction; after it commits the state
//! files are written. An aborted transaction drops the batch's state
//! changes and rewinds the consumer.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::FutureExt as _;
use rdkafka::consumer::{CommitMode, Consumer as _};
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use rebound_core::headers::STREAM_INPUT_OFFSET;
use rebound_core::{epoch_ms, Header, Record, Topic};
use rebound_producer::{OutRecord, Pending, PendingDelivery, TxnError, TxnErrorKind};
use tracing::warn;

use super::tasks::TaskKey;
use super::{Output, Runner};
use crate::error::{FailedOutput, Result, StreamError};
use crate::topology::node::{Ctx, Source};

/// Per input partition: the first offset in the batch and the next one.
pub(super) type Ranges = BTreeMap<TaskKey, (i64, i64)>;

/// The input ranges of `batch`.
pub(super) fn ranges_of(batch: &[Record]) -> Ranges {
    let mut ranges = Ranges::new();
    for r in batch {
        let e = ranges
            .entry((r.topic, r.partition))
            .or_insert((r.offset, r.offset + 1));
        e.1 = e.1.max(r.offset + 1);
    }
    ranges
}

/// How a batch ended when it did not commit.
pub(crate) enum Abort {
    /// The transaction was aborted and the input rewound: read it again.
    /// Why, and the record whose failure caused it when known.
    Again(String, Option<FailedOutput>),
    /// The application must stop.
    Fail(StreamError),
}

impl Abort {
    /// At-least-once has no abort: every failure stops the application.
    pub(crate) fn into_error(self) -> StreamError {
        match self {
            Abort::Fail(e) => e,
            Abort::Again(why, _) => StreamError::Stopped(why),
        }
    }
}

impl From<StreamError> for Abort {
    fn from(e: StreamError) -> Self {
        Abort::Fail(e)
    }
}

impl From<TxnError> for Abort {
    fn from(e: TxnError) -> Self {
        match e.kind {
            TxnErrorKind::Fatal => Abort::Fail(e.into()),
            _ => Abort::Again(rebound_core::DisplayChain(&e).to_string(), None),
        }
    }
}

/// A changelog record's acknowledgement, by task and store.
enum Ack {
    Alo(Pending),
    Eos(PendingDelivery),
}

impl Runner {
    pub(super) async fn open_missing(&mut self, ranges: &Ranges) -> Result<(), Abort> {
        let missing: Vec<TaskKey> = ranges
            .keys()
            .filter(|k| !self.tasks.contains_key(*k))
            .cloned()
            .collect();
        self.open(missing).await?;
        Ok(())
    }

    /// Exactly-once: processes and commits `batch` in one transaction; on
    /// `Abort::Again` nothing of it is committed and it will be read again.
    pub(crate) async fn run_batch(&mut self, batch: &mut [Record]) -> Result<(), Abort> {
        let ranges = ranges_of(batch);
        self.open_missing(&ranges).await?;
        // A transaction that could not begin has nothing to abort, but the
        // batch must still be read again: the consumer is past it.
        let begun = match &self.out {
            Output::Eos(p) => p.begin().map_err(Abort::from),
            Output::Alo(_) => Ok(()),
        };
        let began = begun.is_ok();
        let result = match begun {
            Ok(()) => self.fill_and_commit(batch, &ranges).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {
                self.metrics.commit("committed");
                Ok(())
            }
            Err(Abort::Again(why, failed)) => {
                self.abort(&ranges, began).await?;
                Err(Abort::Again(why, failed))
            }
            Err(fail) => Err(fail),
        }
    }

    async fn fill_and_commit(
        &mut self,
        batch: &mut [Record],
        ranges: &Ranges,
    ) -> Result<(), Abort> {
        // Each output's acknowledgement, to name the record that made a
        // commit fail.
        let mut sent = Vec::new();
        self.fill(batch, &mut sent).await?;
        self.finish(ranges, sent, 0).await
    }

    /// Runs `batch` through the topology and sends the outputs (in the
    /// transaction, exactly-once, with their acknowledgements in `sent`).
    pub(super) async fn fill(
        &mut self,
        batch: &mut [Record],
        sent: &mut Vec<Sent>,
    ) -> Result<(), Abort> {
        let mut out = Vec::with_capacity(1024);
        // Records processed per topic (few topics: a short list).
        let mut counts: Vec<(Topic, u64, Source)> = Vec::new();
        for rec in batch.iter_mut() {
            let task = self
                .tasks
                .get_mut(&(rec.topic, rec.partition))
                .expect("opened above");
            if rec.offset < task.checkpoint {
                continue; // in the state already (at-least-once, after a crash)
            }
            let i = match counts.iter().position(|(t, _, _)| *t == rec.topic) {
                Some(i) => i,
                None => {
                    let source = self.topology.sources[rec.topic.as_str()].clone();
                    counts.push((rec.topic, 0, source));
                    counts.len() - 1
                }
            };
            counts[i].1 += 1;
            let source = &counts[i].2;
            let (key, value) = (rec.key.take(), rec.value.take());
            let rec = &*rec;
            let mut ctx = Ctx {
                task,
                out: &mut out,
                record: rec,
                timestamp: rec.timestamp.unwrap_or_else(epoch_ms),
                metrics: &self.metrics,
            };
            source(&mut ctx, key, value)?;
            if out.len() >= 1024 {
                self.send_all(&mut out, sent).await?;
            }
        }
        for (topic, n, _) in counts {
            self.metrics.processed(topic.as_str(), n);
        }
        self.send_all(&mut out, sent).await
    }

    /// Sends the changelog records of `ranges`' partitions and commits:
    /// the transaction (exactly-once), or every record acknowledged and
    /// then the offsets (at-least-once; `failed_before` is the output
    /// failure count before the first of these records was sent).
    pub(super) async fn finish(
        &mut self,
        ranges: &Ranges,
        sent: Vec<Sent>,
        failed_before: u64,
    ) -> Result<(), Abort> {
        let changelog = self.send_changelogs(ranges).await?;
        let offsets: Vec<(String, i32, i64)> = ranges
            .iter()
            .map(|((t, p), (_, next))| (t.to_string(), *p, *next))
            .collect();
        match &self.out {
            Output::Eos(p) => {
                let group = self.consumer.group_metadata().ok_or_else(|| {
                    Abort::Again(
                        "the consumer has no group metadata (not in the group yet)".into(),
                        None,
                    )
                })?;
                p.send_offsets(&offsets, group).await?;
                if let Err(e) = p.commit().await {
                    return Err(match Abort::from(e) {
                        Abort::Again(why, _) => match self.failed_send(sent, changelog) {
                            Some((record, failed)) => {
                                Abort::Again(format!("{record}; {why}"), Some(failed))
                            }
                            None => Abort::Again(why, None),
                        },
                        fail => fail,
                    });
                }
            }
            Output::Alo(p) => {
                // Every output acknowledged (or failed) before the offsets
                // move; a failure stops the app (a restart redoes the batch).
                p.flush_async(Duration::from_secs(60))
                    .await
                    .map_err(StreamError::from)?;
                let failed = p.metrics().failed_total().saturating_sub(failed_before);
                if failed > 0 {
                    return Err(Abort::Fail(StreamError::Stopped(format!(
                        "{failed} output record(s) failed delivery; the batch is not committed"
                    ))));
                }
            }
        }
        let positions = changelog_positions(changelog).await?;
        for ((t, p), (_, next)) in ranges {
            let key = (*t, *p);
            let task = self.tasks.get_mut(&key).expect("task");
            let cl: Vec<(usize, i64)> = positions.get(&key).cloned().unwrap_or_default();
            task.persist(task.checkpoint.max(*next), &cl)?;
        }
        if let Output::Alo(_) = &self.out {
            self.commit_offsets(&offsets).await?;
        }
        Ok(())
    }

    async fn send_all(&self, out: &mut Vec<OutRecord>, sent: &mut Vec<Sent>) -> Result<(), Abort> {
        for rec in out.drain(..) {
            match &self.out {
                Output::Alo(p) => p.send_and_forget(&rec).await.map_err(StreamError::from)?,
                Output::Eos(p) => {
                    let ack = send_txn(p, &rec).await?;
                    sent.push((rec.topic, rec.partition, ack));
                }
            }
        }
        Ok(())
    }

    /// The first output or changelog record whose delivery failed (all
    /// are reported once a commit has failed: it flushes first), named by
    /// topic and partition.
    fn failed_send(
        &self,
        sent: Vec<Sent>,
        changelog: Vec<(TaskKey, usize, Ack)>,
    ) -> Option<(String, FailedOutput)> {
        let changelog = changelog
            .into_iter()
            .filter_map(|(key, id, ack)| match ack {
                Ack::Eos(d) => {
                    let store = self.tasks.get(&key)?.stores[id].as_ref()?;
                    Some((store.changelog.clone(), Some(key.1), d))
                }
                Ack::Alo(_) => None,
            });
        sent.into_iter()
            .chain(changelog)
            .find_map(|(topic, partition, d)| {
                let err = d.delivered().now_or_never()?.err()?;
                Some(failed_record(&topic, partition, &err))
            })
    }

    /// Sends each dirty key of each store of the batch's partitions to its
    /// changelog partition, tagged with the input offset that changed it.
    async fn send_changelogs(&self, ranges: &Ranges) -> Result<Vec<(TaskKey, usize, Ack)>, Abort> {
        let mut acks = Vec::new();
        for key in ranges.keys() {
            let task = &self.tasks[key];
            for (id, store) in task.stores.iter().enumerate() {
                let Some(store) = store else { continue };
                for (k, v, tag) in store.dirty() {
                    let rec = OutRecord {
                        topic: store.changelog.clone(),
                        partition: Some(task.partition),
                        key: Some(k.to_vec()),
                        value: v.map(<[u8]>::to_vec),
                        headers: vec![Header {
                            name: STREAM_INPUT_OFFSET.to_string(),
                            value: Some(tag.to_string().into_bytes()),
                        }],
                        timestamp: None,
                    };
                    let ack = match &self.out {
                        Output::Alo(p) => {
                            Ack::Alo(p.enqueue(&rec).await.map_err(StreamError::from)?)
                        }
                        Output::Eos(p) => Ack::Eos(send_txn(p, &rec).await?),
                    };
                    acks.push((*key, id, ack));
                }
                self.metrics
                    .changelog_writes
                    .inc_by(store.dirty_count() as u64);
            }
        }
        Ok(acks)
    }

    async fn commit_offsets(&self, offsets: &[(String, i32, i64)]) -> Result<(), Abort> {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))
                .map_err(|e| StreamError::kafka("committing", e))?;
        }
        let c = self.consumer.clone();
        tokio::task::spawn_blocking(move || c.commit(&tpl, CommitMode::Sync))
            .await
            .map_err(|e| StreamError::Stopped(e.to_string()))?
            .map_err(|e| Abort::Fail(StreamError::kafka("committing the input offsets", e)))
    }

    /// Aborts the transaction, forgets the batch's state changes and moves
    /// the consumer back to the batch's first records.
    async fn abort(&mut self, ranges: &Ranges, begun: bool) -> Result<(), Abort> {
        self.metrics.commit("aborted");
        if let (Output::Eos(p), true) = (&self.out, begun) {
            p.abort().await.map_err(|e| Abort::Fail(e.into()))?;
        }
        for key in ranges.keys() {
            if let Some(t) = self.tasks.get_mut(key) {
                t.rollback();
            }
        }
        let mut tpl = TopicPartitionList::new();
        for ((t, p), (first, _)) in ranges {
            tpl.add_partition_offset(t, *p, Offset::Offset(*first))
                .map_err(|e| StreamError::kafka("rewinding after an abort", e))?;
        }
        let c = self.consumer.clone();
        let tpl =
            tokio::task::spawn_blocking(move || c.seek_partitions(tpl, Duration::from_secs(10)))
                .await
                .map_err(|e| StreamError::Stopped(e.to_string()))?
                .map_err(|e| StreamError::kafka("rewinding after an abort", e))?;
        if let Some(err) = tpl.elements().iter().find_map(|e| e.error().err()) {
            return Err(Abort::Fail(StreamError::kafka(
                "rewinding after an abort",
                err,
            )));
        }
        Ok(())
    }
}

/// An output record sent in a transaction: its topic (moved out of the
/// record sent, no copy), its partition (when chosen, not left to the
/// partitioner) and its acknowledgement.
type Sent = (String, Option<i32>, PendingDelivery);

/// Names a record that could not be produced, in words and typed.
fn failed_record(
    topic: &str,
    partition: Option<i32>,
    err: &dyn std::fmt::Display,
) -> (String, FailedOutput) {
    let words = match partition {
        Some(p) => format!("a record for {topic} partition {p} failed: {err}"),
        None => format!("a record for {topic} failed: {err}"),
    };
    let failed = FailedOutput {
        topic: topic.to_string(),
        partition,
    };
    (words, failed)
}

/// Queues `rec` in the transaction, waiting while the local queue is full.
async fn send_txn(
    p: &rebound_producer::TransactionalProducer,
    rec: &OutRecord,
) -> Result<PendingDelivery, Abort> {
    loop {
        match p.send(rec) {
            Ok(d) => return Ok(d),
            Err(TxnError {
                source: KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                ..
            }) => tokio::time::sleep(Duration::from_millis(2)).await,
            Err(e) => {
                return Err(match Abort::from(e) {
                    Abort::Again(why, _) => {
                        let (record, failed) = failed_record(&rec.topic, rec.partition, &why);
                        Abort::Again(record, Some(failed))
                    }
                    fail => fail,
                })
            }
        }
    }
}

/// The next changelog offset per task and store, from the acknowledgements.
async fn changelog_positions(
    acks: Vec<(TaskKey, usize, Ack)>,
) -> Result<HashMap<TaskKey, Vec<(usize, i64)>>, Abort> {
    let mut next: HashMap<TaskKey, BTreeMap<usize, i64>> = HashMap::new();
    for (key, id, ack) in acks {
        let offset = match ack {
            Ack::Alo(p) => p.await.map_err(|e| Abort::Fail(e.into()))?.offset,
            Ack::Eos(p) => {
                p.delivered()
                    .await
                    .map_err(|e| Abort::Fail(StreamError::kafka("changelog delivery", e)))?
                    .offset
            }
        };
        let slot = next.entry(key).or_default().entry(id).or_insert(0);
        *slot = (*slot).max(offset + 1);
    }
    if next.values().any(|m| m.values().any(|&o| o <= 0)) {
        warn!("a changelog acknowledgement carried no offset");
    }
    Ok(next
        .into_iter()
        .map(|(k, m)| (k, m.into_iter().collect()))
        .collect())
}
