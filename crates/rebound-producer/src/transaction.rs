//! The transactional producer: records sent between [`begin`] and
//! [`commit`] become visible to `read_committed` readers together, or (after
//! [`abort`], a crash, or fencing) never. Consumed offsets can join the
//! transaction ([`send_offsets`]), which is what makes
//! consume-transform-produce exactly once.
//!
//! The transactional id is the identity of one pipeline instance: a new
//! producer with the same id fences the old one (its epoch is bumped and its
//! open transaction aborted), so a restarted instance can never commit
//! beside its own zombie.
//!
//! [`begin`]: TransactionalProducer::begin
//! [`commit`]: TransactionalProducer::commit
//! [`abort`]: TransactionalProducer::abort
//! [`send_offsets`]: TransactionalProducer::send_offsets

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::ConsumerGroupMetadata;
use rdkafka::error::{KafkaError, RDKafkaError};
use rdkafka::producer::{Producer as _, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::oneshot;

use crate::delivery::{Completion, Delivered, DeliveryContext, Notify, Pending};
use crate::error::is_retriable;
use crate::flush;
use crate::metrics::ProducerMetrics;
use crate::producer::ProducerConfig;
use crate::record::OutRecord;

/// What a failed transactional call means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnErrorKind {
    /// The call may be repeated as it is.
    Retriable,
    /// The transaction must be aborted; the producer stays usable.
    Abortable,
    /// The producer is fenced or broken: drop it (another instance owns the
    /// transactional id, or the broker refused it for good).
    Fatal,
}

/// A transactional call failed.
#[derive(Debug, thiserror::Error)]
#[error("transaction {op} failed ({kind:?}) for transactional id {transactional_id}")]
pub struct TxnError {
    /// Which call: `init`, `begin`, `send`, `send_offsets`, `commit`, `abort`.
    pub op: &'static str,
    /// The transactional id.
    pub transactional_id: String,
    /// What the caller must do.
    pub kind: TxnErrorKind,
    /// The client error.
    #[source]
    pub source: KafkaError,
}

fn classify(e: &KafkaError) -> TxnErrorKind {
    let txn: Option<&RDKafkaError> = match e {
        KafkaError::Transaction(t) => Some(t),
        _ => None,
    };
    match txn {
        Some(t) if t.is_fatal() => TxnErrorKind::Fatal,
        Some(t) if t.txn_requires_abort() => TxnErrorKind::Abortable,
        Some(t) if t.is_retriable() => TxnErrorKind::Retriable,
        Some(_) => TxnErrorKind::Abortable,
        // A local refusal to queue (e.g. the queue is full) leaves the
        // transaction intact: the same call may be made again.
        None => match e.rdkafka_error_code() {
            Some(code) if is_retriable(code) => TxnErrorKind::Retriable,
            _ => TxnErrorKind::Abortable,
        },
    }
}

/// A producer whose sends belong to transactions. Not `Clone`: one
/// transaction at a time, driven by one owner.
pub struct TransactionalProducer {
    inner: ThreadedProducer<DeliveryContext>,
    id: String,
    call_timeout: Duration,
}

impl std::fmt::Debug for TransactionalProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalProducer")
            .field("transactional_id", &self.id)
            .finish_non_exhaustive()
    }
}

// `TxnError` carries the whole client error (its public fields are the API);
// boxing it would change that API for a few bytes on a cold path.
#[allow(clippy::result_large_err)]
impl TransactionalProducer {
    /// Creates the producer for `transactional_id` and registers it with the
    /// transaction coordinator, fencing any earlier producer with the same
    /// id (whose open transaction is aborted). `timeout` is the broker-side
    /// transaction timeout; each transactional call waits at most the
    /// smaller of it and 10 s (see [`with_call_timeout`](Self::with_call_timeout)).
    pub async fn init(
        config: &ProducerConfig,
        transactional_id: &str,
        timeout: Duration,
    ) -> Result<Self, TxnError> {
        let call_timeout = timeout.min(Duration::from_secs(10));
        let mut c = config.client_config();
        c.set("transactional.id", transactional_id)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("transaction.timeout.ms", timeout.as_millis().to_string())
            // librdkafka refuses a delivery timeout above the transaction
            // timeout: a record cannot outlive its transaction.
            .set(
                "message.timeout.ms",
                config
                    .delivery_timeout
                    .min(timeout)
                    .as_millis()
                    .max(1)
                    .to_string(),
            );
        let err = |op, source: KafkaError| TxnError {
            op,
            transactional_id: transactional_id.to_string(),
            kind: classify(&source),
            source,
        };
        let metrics = config.metrics.clone().unwrap_or_default();
        let inner: ThreadedProducer<DeliveryContext> = c
            .create_with_context(DeliveryContext::new(metrics))
            .map_err(|e| err("init", e))?;
        let p = inner.clone();
        tokio::task::spawn_blocking(move || p.init_transactions(call_timeout))
            .await
            .expect("init_transactions does not panic")
            .map_err(|e| err("init", e))?;
        Ok(TransactionalProducer {
            inner,
            id: transactional_id.to_string(),
            call_timeout,
        })
    }

    /// How long each transactional call (send offsets, commit, abort) waits
    /// before it returns a retriable timeout.
    pub fn with_call_timeout(mut self, t: Duration) -> Self {
        self.call_timeout = t;
        self
    }

    /// The transactional id.
    pub fn transactional_id(&self) -> &str {
        &self.id
    }

    fn err(&self, op: &'static str, source: KafkaError) -> TxnError {
        TxnError {
            op,
            transactional_id: self.id.clone(),
            kind: classify(&source),
            source,
        }
    }

    /// The producer's metrics: records as for [`Producer`](crate::Producer),
    /// plus `rebound_producer_transactions_total{outcome}`.
    pub fn metrics(&self) -> &Arc<ProducerMetrics> {
        &self.inner.context().metrics
    }

    /// Runs a blocking transactional call off the async threads.
    async fn blocking(
        &self,
        op: &'static str,
        f: impl FnOnce(&ThreadedProducer<DeliveryContext>) -> Result<(), KafkaError> + Send + 'static,
    ) -> Result<(), TxnError> {
        let p = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&p))
            .await
            .expect("transactional calls do not panic")
            .map_err(|e| self.err(op, e))
    }

    /// Starts a transaction (local; no round trip).
    pub fn begin(&self) -> Result<(), TxnError> {
        self.inner
            .begin_transaction()
            .map_err(|e| self.err("begin", e))
    }

    /// Queues `rec` in the current transaction. The returned future resolves
    /// when the broker acknowledged it; [`commit`](Self::commit) waits for
    /// all of them anyway, so it may be dropped.
    pub fn send(&self, rec: &OutRecord) -> Result<PendingDelivery, TxnError> {
        let (tx, rx) = oneshot::channel();
        match self.inner.send(
            self.inner
                .context()
                .traced(rec, Completion::new(Notify::Future(tx))),
        ) {
            Ok(()) => {
                self.metrics().record_sent();
                Ok(PendingDelivery(Pending { rx }))
            }
            Err((e, _)) => {
                self.metrics().record_failed(&e);
                Err(self.err("send", e))
            }
        }
    }

    /// Adds consumed positions to the transaction: `(topic, partition,
    /// next offset to read)`. They are committed for the consumer group of
    /// `group` when the transaction commits; `group` carries the member's
    /// generation, so a member that lost its partitions in a rebalance is
    /// refused (fenced) instead of committing over the new owner.
    pub async fn send_offsets(
        &self,
        offsets: &[(String, i32, i64)],
        group: ConsumerGroupMetadata,
    ) -> Result<(), TxnError> {
        let mut tpl = TopicPartitionList::new();
        for (t, p, o) in offsets {
            tpl.add_partition_offset(t, *p, Offset::Offset(*o))
                .map_err(|e| self.err("send_offsets", e))?;
        }
        let timeout = self.call_timeout;
        self.blocking("send_offsets", move |p| {
            p.send_offsets_to_transaction(&tpl, &group, timeout)
        })
        .await
    }

    /// Commits the transaction: waits for every queued record, then makes
    /// them and the sent offsets visible at once.
    pub async fn commit(&self) -> Result<(), TxnError> {
        let timeout = self.call_timeout;
        // Wait for the records here first: rust-rdkafka's commit flushes
        // in 100 ms steps (see `flush`), which capped a producer at ten
        // transactions a second.
        if let Err(e) = flush::flush_async(&self.inner, timeout).await {
            self.metrics().record_transaction("failed");
            return Err(self.err("commit", e));
        }
        let r = self
            .blocking("commit", move |p| p.commit_transaction(timeout))
            .await;
        self.metrics()
            .record_transaction(if r.is_ok() { "committed" } else { "failed" });
        r
    }

    /// Aborts the transaction: its records are never shown to
    /// `read_committed` readers and its offsets are not committed.
    pub async fn abort(&self) -> Result<(), TxnError> {
        let timeout = self.call_timeout;
        let r = self
            .blocking("abort", move |p| p.abort_transaction(timeout))
            .await;
        self.metrics()
            .record_transaction(if r.is_ok() { "aborted" } else { "failed" });
        r
    }
}

/// The acknowledgement of one record sent in a transaction.
pub struct PendingDelivery(Pending);

impl std::fmt::Debug for PendingDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingDelivery").finish_non_exhaustive()
    }
}

impl PendingDelivery {
    /// Waits for the broker's acknowledgement.
    pub async fn delivered(self) -> Result<Delivered, KafkaError> {
        self.0.await.map_err(|e| e.source)
    }
}
