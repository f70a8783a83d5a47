//! One transaction: transform a batch lane by lane, send the output and the
//! input offsets, commit — or abort and rewind so the batch is read again.

use std::time::{Duration, Instant};

use futures::{stream, StreamExt, TryStreamExt};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use rebound_core::{epoch_ms, Backoff, Jitter, Next, Record};
use rebound_producer::{OutRecord, TxnError, TxnErrorKind};
use tracing::{debug, warn};

use super::batch::Batch;
use super::error::PipelineError;
use super::observer::InputRange;
use super::shared::Shared;
use super::transform::{run_caught, Transform};
use crate::layers::provenance::{failed_record, History, Route};
use crate::layers::retry::retry_in_place;
use rebound_core::trace::{self, FutureExt as _};

/// How a transaction ended, when it did not commit.
pub(crate) enum Abort {
    /// Aborted (or never begun); the batch must be read again.
    Again(String),
    /// The pipeline cannot go on.
    Fail(PipelineError),
}

impl From<TxnError> for Abort {
    fn from(e: TxnError) -> Self {
        match e.kind {
            TxnErrorKind::Fatal => Abort::Fail(e.into()),
            _ => Abort::Again(rebound_core::DisplayChain(&e).to_string()),
        }
    }
}

impl<T: Transform> Shared<T> {
    /// Runs transaction `txn` over `batch`. On `Abort::Again` the
    /// transaction was aborted and the consumer rewound to the batch's
    /// first records; on `Abort::Fail` the pipeline must stop (nothing of
    /// the batch is committed, a restart resumes from the last commit).
    pub(crate) async fn transact(&self, txn: u64, batch: &Batch) -> Result<(), Abort> {
        let ranges = batch.ranges();
        let started = Instant::now();
        let result = async {
            self.producer.begin()?;
            self.fill(batch, &ranges).await?;
            self.observe(|o| o.committing(txn, &ranges));
            self.commit().await
        }
        .await;
        match result {
            Ok(()) => {
                self.observe(|o| o.committed(txn, &ranges));
                self.metrics.committed(batch.len(), started.elapsed());
                Ok(())
            }
            Err(Abort::Fail(e)) => Err(Abort::Fail(e)),
            Err(again) => {
                self.abort().await?;
                self.observe(|o| o.aborted(txn, &ranges));
                self.metrics.aborted();
                self.rewind(&ranges).await?;
                Err(again)
            }
        }
    }

    /// Aborts, repeating the call (a few times) while the client says it
    /// may; any other failure stops the pipeline. A fenced producer's abort
    /// can time out again and again (seen on tansu): stopping then is right,
    /// as nothing of the transaction is committed.
    async fn abort(&self) -> Result<(), Abort> {
        repeat_retriable("abort", repeats(3, Duration::ZERO), || {
            self.producer.abort()
        })
        .await
        .map_err(|e| Abort::Fail(e.into()))
    }

    /// Transforms every record and sends the output and the offsets.
    async fn fill(&self, batch: &Batch, ranges: &[InputRange]) -> Result<(), Abort> {
        stream::iter(batch.lanes(self.cfg.ordering))
            .map(|lane| async move {
                for i in lane {
                    self.one(&batch.records[i]).await?;
                }
                Ok::<(), Abort>(())
            })
            .buffer_unordered(self.cfg.max_in_flight)
            .try_collect::<()>()
            .await?;
        let offsets: Vec<(String, i32, i64)> = ranges
            .iter()
            .map(|r| (r.topic.clone(), r.partition, r.next))
            .collect();
        let group = self.consumer.group_metadata().ok_or_else(|| {
            Abort::Again("the consumer has no group metadata (not in the group yet)".into())
        })?;
        self.producer.send_offsets(&offsets, group).await?;
        Ok(())
    }

    /// Transforms one record (retrying in place) and sends its output, or
    /// its dead letter, inside the record's `process` span: the output's
    /// `send` spans are its children.
    async fn one(&self, rec: &Record) -> Result<(), Abort> {
        let cx = trace::process_span(&self.tracer, rec, Some(&self.cfg.group));
        let r = self.transform_and_send(rec).with_context(cx.clone()).await;
        let failed = match &r {
            Err(Abort::Again(why)) => Some(why.clone()),
            Err(Abort::Fail(e)) => Some(e.to_string()),
            Ok(()) => None,
        };
        trace::end(&cx, failed.as_ref().map_or(Ok(()), Err));
        r
    }

    async fn transform_and_send(&self, rec: &Record) -> Result<(), Abort> {
        let t = &self.transform;
        match retry_in_place(&self.cfg.retry, rec, || run_caught(t, rec)).await {
            Ok(out) => {
                for o in &out {
                    self.send(o).await?;
                }
                self.metrics.sent(out.len());
                Ok(())
            }
            Err(error) => {
                let Some(names) = &self.cfg.dead_letter else {
                    return Err(Abort::Fail(PipelineError::Failed {
                        topic: rec.topic.to_string(),
                        partition: rec.partition,
                        offset: rec.offset,
                        error,
                    }));
                };
                let history = History::of(rec);
                let dest = names.dlq(&history.original_topic);
                let out = failed_record(rec, &error, &self.cfg.group, Route::Dlq, dest, epoch_ms());
                debug!(topic = %rec.topic, partition = rec.partition, offset = rec.offset,
                    error = %error, "dead-lettering inside the transaction");
                self.send(&out).await?;
                self.metrics.dead_lettered();
                Ok(())
            }
        }
    }

    /// Queues `out` in the transaction, waiting while the local queue is full.
    async fn send(&self, out: &OutRecord) -> Result<(), Abort> {
        loop {
            match self.producer.send(out) {
                Ok(_) => return Ok(()),
                Err(TxnError {
                    source: KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull),
                    ..
                }) => tokio::time::sleep(Duration::from_millis(2)).await,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Commits, repeating the call while the client says it may.
    async fn commit(&self) -> Result<(), Abort> {
        repeat_retriable("commit", repeats(5, Duration::from_millis(100)), || {
            self.producer.commit()
        })
        .await
        .map_err(Abort::from)
    }

    /// Moves the consumer back to the first record of the aborted batch in
    /// each partition, so it is read (and transformed) again.
    async fn rewind(&self, ranges: &[InputRange]) -> Result<(), Abort> {
        let mut tpl = TopicPartitionList::new();
        for r in ranges {
            tpl.add_partition_offset(&r.topic, r.partition, Offset::Offset(r.first))
                .map_err(|e| Abort::Fail(kafka("rewinding after an abort", e)))?;
        }
        let consumer = self.consumer.clone();
        let result = tokio::task::spawn_blocking(move || {
            consumer.seek_partitions(tpl, Duration::from_secs(10))
        })
        .await
        .map_err(|e| Abort::Fail(PipelineError::Stopped(e.to_string())))?;
        let tpl = result.map_err(|e| Abort::Fail(kafka("rewinding after an abort", e)))?;
        // A partition left where it is would skip the aborted records at
        // the next commit: stop instead; a restart resumes from the commit.
        match tpl.elements().iter().find_map(|e| e.error().err()) {
            Some(err) => Err(Abort::Fail(kafka("rewinding after an abort", err))),
            None => Ok(()),
        }
    }
}

/// Calls `call` again while it fails with a retriable error, as often as
/// `backoff` allows; returns the first other error, or the last one.
async fn repeat_retriable<F, Fut>(what: &str, backoff: Backoff, call: F) -> Result<(), TxnError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), TxnError>>,
{
    rebound_core::retry(&backoff, call, |e: &TxnError, f| {
        if e.kind != TxnErrorKind::Retriable {
            return Next::Stop;
        }
        warn!(error = %e, attempt = f.attempt, "{what} did not succeed; trying again");
        Next::Retry
    })
    .await
    .map_err(|gave_up| gave_up.error)
}

/// `retries` more attempts after the first, `first_pause` before the first
/// retry and doubling up to a second, no jitter.
fn repeats(retries: u32, first_pause: Duration) -> Backoff {
    Backoff::exponential(first_pause, Duration::from_secs(1).max(first_pause))
        .with_jitter(Jitter::None)
        .with_max_attempts(Some(retries + 1))
}

fn kafka(context: &'static str, source: KafkaError) -> PipelineError {
    PipelineError::Worker(crate::Error::Kafka { context, source })
}
