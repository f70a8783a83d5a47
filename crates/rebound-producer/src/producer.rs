//! [`Producer`]: one librdkafka client, five ways to hand it a record.
//!
//! | call | returns | what it guarantees |
//! |---|---|---|
//! | [`send`](Producer::send) | once acknowledged: partition + offset | delivered per the config's [`Acks`](crate::Acks) (default `all`, idempotent), or an error; retried per [`with_retry`](crate::ProducerConfig::with_retry) |
//! | [`enqueue`](Producer::enqueue) | once queued: a [`Pending`] future | same as `send` when awaited, but many records in flight; no extra retries |
//! | [`send_with_callback`](Producer::send_with_callback) | once queued | the callback runs exactly once per queued record with its outcome |
//! | [`send_and_forget`](Producer::send_and_forget) | once queued | nothing: failures only count in the metrics (with `acks=0`: at most once) |
//! | [`flush`](Producer::flush) | once every queued record is reported | batching: `linger`, `batch_size`, `batch_records` decide how records are grouped |
//!
//! Records with the same key go to the same partition as with the Java
//! client (`murmur2_random`, see [`partitioner`](crate::partitioner)) and, with
//! idempotence, keep their order.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{Producer as _, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use tokio::sync::oneshot;

pub use crate::config::ProducerConfig;
pub use crate::delivery::Delivered;
use crate::delivery::{Completion, DeliveryContext, DeliveryOutcome, Notify, Pending};
use crate::error::ProduceError;
use crate::flush;
use crate::metrics::ProducerMetrics;
use crate::record::OutRecord;
use crate::retry::retrying;

/// How long an enqueue waits before trying again when librdkafka's local
/// queue (`queue.buffering.max.messages`) is full.
const QUEUE_FULL_WAIT: Duration = Duration::from_millis(2);

/// A cheap-to-clone producer (clones share one client).
///
/// Records still queued when the last clone is dropped are purged (they fail
/// with a purge error): call [`flush`](Self::flush) first.
#[derive(Clone)]
pub struct Producer {
    inner: ThreadedProducer<DeliveryContext>,
    config: Arc<ProducerConfig>,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("acks", &self.config.acks)
            .field("idempotent", &self.config.idempotent)
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// Creates the client (no network round trip yet). An invalid setting
    /// or librdkafka property fails here, naming it.
    pub fn new(config: &ProducerConfig) -> Result<Self, ProduceError> {
        config
            .validate()
            .map_err(|e| ProduceError::new("<producer>", KafkaError::ClientCreation(e)))?;
        let metrics = config.metrics.clone().unwrap_or_default();
        let inner = config
            .client_config()
            .create_with_context(DeliveryContext::new(metrics))
            .map_err(|e| ProduceError::new("<producer>", e))?;
        Ok(Producer {
            inner,
            config: Arc::new(config.clone()),
        })
    }

    /// The settings this producer was made with.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// The producer's metrics.
    pub fn metrics(&self) -> &Arc<ProducerMetrics> {
        &self.inner.context().metrics
    }

    /// Sends `rec` and waits until the broker acknowledged it (synchronous
    /// mode). Retriable failures are tried again per the config's
    /// [`with_retry`](ProducerConfig::with_retry); final ones return at once.
    pub async fn send(&self, rec: &OutRecord) -> Result<Delivered, ProduceError> {
        retrying(self.config.retry.as_ref(), self.metrics(), || async {
            self.enqueue(rec).await?.await
        })
        .await
    }

    /// Queues `rec` and returns its [`Pending`] acknowledgement at once
    /// (asynchronous mode): await many together to keep them in flight.
    /// Waits only while librdkafka's local queue is full.
    pub async fn enqueue(&self, rec: &OutRecord) -> Result<Pending, ProduceError> {
        let (tx, rx) = oneshot::channel();
        self.queue(rec, Completion::new(Notify::Future(tx))).await?;
        Ok(Pending { rx })
    }

    /// Queues `rec`; `callback` runs exactly once with its outcome when the
    /// report arrives (callback mode). It runs on the producer's polling
    /// thread: keep it short and never block in it. When queueing fails the
    /// error is returned and the callback never runs.
    pub async fn send_with_callback<F>(
        &self,
        rec: &OutRecord,
        callback: F,
    ) -> Result<(), ProduceError>
    where
        F: FnOnce(DeliveryOutcome) + Send + 'static,
    {
        self.queue(rec, Completion::callback(callback)).await
    }

    /// Queues `rec` and forgets it (fire-and-forget mode): returns once
    /// queued; a later failure is only counted in the metrics. With
    /// [`ProducerConfig::fire_and_forget`] (`acks=0`, no retries) this is
    /// at most once.
    pub async fn send_and_forget(&self, rec: &OutRecord) -> Result<(), ProduceError> {
        self.queue(rec, Completion::new(Notify::Forget)).await
    }

    async fn queue(
        &self,
        rec: &OutRecord,
        completion: Box<Completion>,
    ) -> Result<(), ProduceError> {
        let mut base = self.inner.context().traced(rec, completion);
        loop {
            match self.inner.send(base) {
                Ok(()) => {
                    self.metrics().record_sent();
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), b)) => {
                    base = b;
                    tokio::time::sleep(QUEUE_FULL_WAIT).await;
                }
                Err((e, _)) => {
                    self.metrics().record_failed(&e);
                    return Err(ProduceError::new(&rec.topic, e));
                }
            }
        }
    }

    /// Records queued or in flight, not yet reported.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight_count().max(0) as usize
    }

    /// Waits until every queued record is reported (delivered or failed) or
    /// `timeout` passes; lingering batches are sent at once. Blocking: from
    /// async code use [`flush_async`](Self::flush_async).
    pub fn flush(&self, timeout: Duration) -> Result<(), ProduceError> {
        flush::flush_blocking(&self.inner, timeout).map_err(|e| ProduceError::new("<flush>", e))
    }

    /// [`flush`](Self::flush) without blocking the thread.
    pub async fn flush_async(&self, timeout: Duration) -> Result<(), ProduceError> {
        flush::flush_async(&self.inner, timeout)
            .await
            .map_err(|e| ProduceError::new("<flush>", e))
    }
}
