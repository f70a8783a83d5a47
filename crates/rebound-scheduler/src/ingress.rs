//! Kafka ingress: task JSON read from a topic by a rebound [`Worker`] and
//! created with the same validation as `POST /tasks`.
//!
//! - A record that is not a valid task (bad JSON, a field out of range, too
//!   large) is a permanent failure: it goes to `<topic>.dlq` with the
//!   provenance headers (`rebound.original.*`, `rebound.error.*`), and its
//!   offset commits only once the dead letter is acknowledged.
//! - A store failure is transient: retried in place with backoff for as long
//!   as it takes, nothing committed past it; nothing is lost.
//! - Duplicates after a restart are harmless: create is idempotent by id.

use std::sync::Arc;
use std::time::Duration;

use rebound_core::{Backoff, HandlerError, Jitter, Record};
use rebound_producer::{Producer, ProducerConfig};
use rebound_worker::{
    handler_fn, DeadLetterLayer, DeadLetterPolicy, Layer, Metrics, Ordering, RetryLayer, Worker,
    WorkerConfig,
};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::scheduler::Scheduler;
use crate::validate::parse_new_task;

/// Where the ingress reads task JSON.
#[derive(Debug, Clone, Copy)]
pub struct Ingress<'a> {
    /// Bootstrap servers.
    pub brokers: &'a str,
    /// librdkafka properties (TLS, SASL) of its clients.
    pub kafka_config: &'a [(String, String)],
    /// The topic of task JSON.
    pub topic: &'a str,
    /// Its consumer group.
    pub group: &'a str,
}

/// Consumes the ingress topic until `shutdown`, then drains and commits.
pub async fn run(sched: Scheduler, at: Ingress<'_>, shutdown: CancellationToken) -> Result<()> {
    let Ingress {
        brokers,
        kafka_config,
        topic,
        group,
    } = at;
    // Every way start or stop can fail, named with its causes.
    let failed = |e: &dyn std::error::Error| Error::Ingress {
        topic: topic.to_string(),
        reason: rebound_core::DisplayChain(e).to_string(),
    };
    let policy = DeadLetterPolicy::new(group);
    let dlq = policy.dlq_topic(topic);
    let partitions = {
        let (b, x, t) = (
            brokers.to_string(),
            kafka_config.to_vec(),
            topic.to_string(),
        );
        tokio::task::spawn_blocking(move || {
            rebound_producer::admin::partition_count(&b, &x, &t, Duration::from_secs(30))
        })
        .await
        .map_err(|e| failed(&e))?
        .map_err(|e| failed(&e))?
        .unwrap_or(1)
    };
    rebound_producer::admin::ensure_topic(brokers, kafka_config, &dlq, partitions as i32)
        .await
        .map_err(|e| failed(&e))?;
    // Its metrics, the dead-letter producer's included, show on the
    // scheduler's `/metrics`.
    let shared = sched.metrics();
    let mut producer_config = ProducerConfig::new(brokers).with_metrics(shared.producer.clone());
    for (k, v) in kafka_config {
        producer_config = producer_config.with_client_config(k, v);
    }
    let producer = Producer::new(&producer_config).map_err(|e| failed(&e))?;
    let metrics = Arc::new(Metrics::in_registry(shared.registry().clone()));
    let store_retry = Backoff::exponential(Duration::from_millis(200), Duration::from_secs(10))
        .with_max_attempts(None)
        .with_jitter(Jitter::Full);
    let create = handler_fn(move |rec: &Record| {
        let sched = sched.clone();
        let payload = rec.value.clone().unwrap_or_default();
        async move {
            let created = match parse_new_task(&payload) {
                Ok(mut req) => {
                    // Handled inside the record's `process` span.
                    req.trace_parent = rebound_core::trace::current_traceparent();
                    sched.create_task(req).await
                }
                Err(e) => Err(e),
            };
            match created {
                Ok(outcome) => {
                    tracing::debug!(?outcome, "ingested task");
                    Ok(())
                }
                Err(
                    e @ (Error::InvalidBody(_)
                    | Error::Validation(_)
                    | Error::PayloadTooLarge { .. }),
                ) => Err(HandlerError::permanent(format!("not a valid task: {e}"))),
                Err(e) => Err(HandlerError::transient(format!(
                    "storing the task failed: {}",
                    rebound_core::DisplayChain(&e)
                ))),
            }
        }
    });
    let handler = DeadLetterLayer::new(producer, policy, metrics.clone())
        .layer(RetryLayer::new(store_retry).layer(create));
    let mut builder = WorkerConfig::builder()
        .with_brokers(brokers)
        .with_group(group)
        .with_topic(topic)
        .with_ordering(Ordering::Key)
        .with_max_in_flight(64)
        .with_metrics(metrics);
    for (k, v) in kafka_config {
        builder = builder.with_client_config(k, v);
    }
    let config = builder.build().map_err(|e| failed(&e))?;
    let worker = Worker::start(config, handler)
        .await
        .map_err(|e| failed(&e))?;
    tracing::info!(topic, group, dlq, "task ingress started");
    shutdown.cancelled().await;
    worker.stop().await.map_err(|e| failed(&e))?;
    Ok(())
}
