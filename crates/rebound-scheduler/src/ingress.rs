//! Kafka ingress: a consumer loop reading task JSON from a topic and creating
//! tasks with the same validation as `POST /tasks`. Invalid records are logged
//! with the offending field and committed (skipped); a store failure is retried
//! without committing, so nothing is lost. Duplicates after a restart are
//! harmless: create is idempotent by task id.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::scheduler::Scheduler;
use crate::validate::parse_new_task;

/// Consumes `topic` in `group` from `brokers` until `shutdown`.
pub async fn run(
    sched: Scheduler,
    brokers: &str,
    topic: &str,
    group: &str,
    shutdown: CancellationToken,
) -> Result<()> {
    let kerr = |source| Error::Kafka {
        brokers: brokers.to_string(),
        source,
    };
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .create()
        .map_err(kerr)?;
    consumer.subscribe(&[topic]).map_err(kerr)?;
    tracing::info!(topic, group, "task ingress started");
    loop {
        let msg = tokio::select! {
            m = consumer.recv() => m,
            _ = shutdown.cancelled() => break,
        };
        let msg = match msg {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, topic, "ingress consume error");
                continue;
            }
        };
        let payload = msg.payload().unwrap_or_default();
        let (partition, offset) = (msg.partition(), msg.offset());
        loop {
            let r = match parse_new_task(payload) {
                Ok(req) => sched.create_task(req).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(outcome) => {
                    tracing::debug!(partition, offset, ?outcome, "ingested task");
                    break;
                }
                Err(
                    e @ (Error::InvalidBody(_)
                    | Error::Validation(_)
                    | Error::PayloadTooLarge { .. }),
                ) => {
                    tracing::warn!(topic, partition, offset, error = %e, "skipping invalid task record");
                    break;
                }
                Err(e) => {
                    tracing::error!(topic, partition, offset, error = %rebound_core::DisplayChain(&e), "store failed; retrying the record");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => return Ok(()),
                    }
                }
            }
        }
        if let Err(e) = consumer.store_offset_from_message(&msg) {
            tracing::warn!(error = %e, "could not store ingress offset");
        }
    }
    if let Err(e) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        tracing::debug!(error = %e, "final ingress commit");
    }
    Ok(())
}
