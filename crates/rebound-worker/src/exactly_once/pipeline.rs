//! Starting and running a pipeline: the consumer, the transactional
//! producer, the loop that collects a batch and runs its transaction.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rebound_core::Topic;
use rebound_producer::{admin, ProducerConfig, TransactionalProducer};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::batch::Batch;
use super::config::PipelineConfig;
use super::error::PipelineError;
use super::metrics::{PipelineMetrics, PipelineStats};
use super::shared::{EosCtx, Shared};
use super::transform::Transform;
use super::txn::Abort;
use crate::cluster_check::check_cluster;
use crate::error::Error;
use crate::poller::record_from_message;
use crate::worker::group_consumer_config;

/// Exactly-once consume-transform-produce.
#[derive(Debug)]
pub struct Pipeline;

impl Pipeline {
    /// Checks the cluster, creates missing dead-letter topics, registers the
    /// transactional id (fencing an earlier instance with the same id and
    /// aborting what it left open), subscribes, and starts the loop.
    pub async fn start<T: Transform>(
        cfg: PipelineConfig,
        transform: T,
    ) -> Result<PipelineHandle, PipelineError> {
        let mut cc = group_consumer_config(&cfg.brokers, &cfg.group, cfg.session_timeout);
        cc.set("isolation.level", "read_committed");
        for (k, v) in &cfg.client_config {
            cc.set(k, v);
        }
        let consumer: StreamConsumer<EosCtx> =
            cc.create_with_context(EosCtx::default())
                .map_err(|source| Error::Kafka {
                    context: "creating the consumer",
                    source,
                })?;
        let consumer = Arc::new(consumer);
        let (brokers, topics) = (cfg.brokers.clone(), cfg.topics.clone());
        tokio::task::spawn_blocking(move || {
            check_cluster(&cc, &brokers, &topics, Duration::from_secs(10))
        })
        .await
        .map_err(|e| PipelineError::Stopped(e.to_string()))??;
        create_dead_letter_topics(&cfg).await?;
        let producer = TransactionalProducer::init(
            &ProducerConfig::new(&cfg.brokers).with_linger(Duration::from_millis(5)),
            &cfg.transactional_id,
            cfg.transaction_timeout,
        )
        .await?;
        let topics: Vec<&str> = cfg.topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topics).map_err(|source| Error::Kafka {
            context: "subscribing",
            source,
        })?;
        let metrics = Arc::new(PipelineMetrics::new());
        let shared = Shared {
            cfg,
            consumer,
            producer,
            transform,
            metrics: metrics.clone(),
            tracer: rebound_core::trace::tracer(),
        };
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(shared, cancel.clone()));
        Ok(PipelineHandle {
            cancel,
            task,
            metrics,
        })
    }
}

async fn create_dead_letter_topics(cfg: &PipelineConfig) -> Result<(), PipelineError> {
    let Some(names) = &cfg.dead_letter else {
        return Ok(());
    };
    // The pipeline's own client settings (TLS, SASL) reach the admin calls.
    let extra: Vec<(String, String)> = cfg
        .client_config
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for t in &cfg.topics {
        let (brokers, topic, x) = (cfg.brokers.clone(), t.clone(), extra.clone());
        let parts = tokio::task::spawn_blocking(move || {
            admin::partition_count(&brokers, &x, &topic, Duration::from_secs(10))
        })
        .await
        .map_err(|e| PipelineError::Stopped(e.to_string()))??
        .unwrap_or(1);
        admin::ensure_topic(&cfg.brokers, &extra, &names.dlq(t), parts as i32).await?;
    }
    Ok(())
}

async fn run<T: Transform>(
    shared: Shared<T>,
    cancel: CancellationToken,
) -> Result<PipelineStats, PipelineError> {
    let mut txn = 0u64;
    let result = loop {
        let (batch, stopping) = collect(&shared, &cancel).await;
        if !batch.is_empty() {
            txn += 1;
            match shared.transact(txn, &batch).await {
                Ok(()) => {}
                Err(Abort::Again(why)) => {
                    warn!(txn, records = batch.len(), reason = %why, "transaction aborted; reading the batch again");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(Abort::Fail(e)) => break Err(e),
            }
        }
        if stopping {
            break Ok(shared.metrics.stats());
        }
    };
    shared.consumer.unsubscribe();
    // Dropping the clients stops their threads and waits for them (up to
    // about half a second): not on an async worker thread.
    let _ = tokio::task::spawn_blocking(move || drop(shared)).await;
    result
}

/// Collects up to `max_batch_size` records, waiting at most `linger` after the
/// first. Returns early (with what it has) when `cancel` fires.
async fn collect<T>(shared: &Shared<T>, cancel: &CancellationToken) -> (Batch, bool) {
    let mut batch = Batch::default();
    let mut deadline: Option<Instant> = None;
    let stopping = loop {
        let until = deadline;
        let msg = tokio::select! {
            biased;
            _ = cancel.cancelled() => break true,
            _ = sleep_until(until), if until.is_some() => break false,
            m = shared.consumer.recv() => m,
        };
        match msg {
            Ok(m) => {
                let rec = record_from_message(&m, Topic::intern(m.topic()));
                drop(m);
                drop_revoked(shared, &mut batch);
                batch.records.push(rec);
                deadline.get_or_insert_with(|| Instant::now() + shared.cfg.linger);
                if batch.len() >= shared.cfg.max_batch_size {
                    break false;
                }
            }
            Err(e) => {
                warn!(error = %e, "consume error");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    drop_revoked(shared, &mut batch);
    (batch, stopping)
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at).await;
    }
}

fn drop_revoked<T>(shared: &Shared<T>, batch: &mut Batch) {
    let revoked = std::mem::take(&mut *shared.consumer.context().revoked.lock().expect("revoked"));
    batch.drop_partitions(&revoked);
}

/// A running pipeline.
#[derive(Debug)]
pub struct PipelineHandle {
    cancel: CancellationToken,
    task: JoinHandle<Result<PipelineStats, PipelineError>>,
    metrics: Arc<PipelineMetrics>,
}

impl PipelineHandle {
    /// Counts so far.
    pub fn stats(&self) -> PipelineStats {
        self.metrics.stats()
    }

    /// The pipeline's Prometheus metrics.
    pub fn metrics(&self) -> &Arc<PipelineMetrics> {
        &self.metrics
    }

    /// Whether the loop has ended (stopped or failed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Finishes the transaction being collected (commits it), leaves the
    /// group and returns the counts.
    pub async fn stop(self) -> Result<PipelineStats, PipelineError> {
        self.cancel.cancel();
        self.join().await
    }

    /// Waits for the loop to end on its own (it ends only on a fatal error).
    pub async fn join(self) -> Result<PipelineStats, PipelineError> {
        self.task
            .await
            .map_err(|e| PipelineError::Stopped(e.to_string()))?
    }

    /// Drops everything at once, committing nothing (crash simulation): the
    /// open transaction is aborted by the broker when the transactional id
    /// is next registered, or when the transaction timeout passes.
    pub async fn abort(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
