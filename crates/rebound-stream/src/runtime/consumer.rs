//! The group consumer: its context remembers assignments and revokes (in
//! order) for the loop, and `collect` gathers one batch.
//!
//! Rebalance callbacks run only inside `recv`, i.e. while a batch is being
//! collected, never while one is processed or committed: a partition is
//! never taken away in the middle of a transaction. Records fetched from a
//! partition before it was revoked are dropped from the batch (its new
//! owner reads them from the last commit).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer as _, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::ClientContext;
use rebound_core::{Record, Topic};
use rebound_worker::record_from_message;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A change of assignment, as the loop must apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Assigned(Vec<(Topic, i32)>),
    Revoked(Vec<(Topic, i32)>),
}

#[derive(Default)]
pub(crate) struct StreamCtx {
    events: Mutex<Vec<Event>>,
}

fn partitions(tpl: &rdkafka::TopicPartitionList) -> Vec<(Topic, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (Topic::intern(e.topic()), e.partition()))
        .collect()
}

impl ClientContext for StreamCtx {}

impl ConsumerContext for StreamCtx {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            info!(partitions = tpl.count(), "partitions revoked");
            self.push(Event::Revoked(partitions(tpl)));
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            info!(partitions = tpl.count(), "partitions assigned");
            self.push(Event::Assigned(partitions(tpl)));
        }
    }
}

impl StreamCtx {
    fn push(&self, e: Event) {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(e);
    }

    fn take(&self) -> Vec<Event> {
        std::mem::take(&mut *self.events.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

pub(crate) type Consumer = Arc<StreamConsumer<StreamCtx>>;

/// Collects records for `interval` (or until `max` records), moving the
/// assignment changes seen meanwhile to `events` and dropping records of
/// revoked partitions. Returns whether `cancel` fired.
pub(crate) async fn collect(
    consumer: &Consumer,
    cancel: &CancellationToken,
    interval: Duration,
    max: usize,
    batch: &mut Vec<Record>,
    events: &mut Vec<Event>,
) -> bool {
    let deadline = Instant::now() + interval;
    let stopping = loop {
        let msg = tokio::select! {
            biased;
            _ = cancel.cancelled() => break true,
            _ = tokio::time::sleep_until(deadline) => break false,
            m = consumer.recv() => m,
        };
        match msg {
            Ok(m) => {
                let rec = record_from_message(&m, Topic::intern(m.topic()));
                drop(m);
                note_events(consumer, batch, events);
                batch.push(rec);
                if batch.len() >= max {
                    break false;
                }
            }
            Err(e) => {
                warn!(error = %e, "consume error");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    note_events(consumer, batch, events);
    stopping
}

fn note_events(consumer: &Consumer, batch: &mut Vec<Record>, events: &mut Vec<Event>) {
    for e in consumer.context().take() {
        if let Event::Revoked(parts) = &e {
            batch.retain(|r| {
                !parts
                    .iter()
                    .any(|(t, p)| r.topic == *t && r.partition == *p)
            });
        }
        events.push(e);
    }
}
