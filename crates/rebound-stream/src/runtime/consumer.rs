//! The group consumer: its context remembers assignments and revokes (in
//! order) for the loop, and `collect` gathers one batch.
//!
//! Rebalance callbacks run only inside `recv`, i.e. while records are
//! being collected, never while they are processed or committed (and when
//! the consumer is closed, after the loop: see
//! [`StreamCtx::stop_deferring`]): a
//! partition is never taken away in the middle of a transaction. Records
//! fetched from a partition before it was revoked are dropped from the
//! batch (its new owner reads them from the last commit). At-least-once,
//! a revoke comes between two chunks of one commit interval: a
//! cooperative revoke waits while the loop commits what it processed,
//! then the loop gives the partitions up; a lost partition's uncommitted
//! work is dropped with its state (its outputs were sent: the new owner
//! sends them again).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use rdkafka::consumer::{
    BaseConsumer, Consumer as _, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientContext;
use rdkafka::TopicPartitionList;
use rebound_core::{Record, Topic};
use rebound_worker::record_from_message;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A change of assignment, as the loop must apply it.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    Assigned(Vec<(Topic, i32)>),
    /// Gone already (lost, or revoked without [`StreamCtx::commit_before_revoke`]).
    Revoked(Vec<(Topic, i32)>),
    /// Revoked, still assigned until the loop has committed them and
    /// gives them up ([`StreamCtx::give_up`]).
    Revoking(Vec<(Topic, i32)>),
}

#[derive(Default)]
pub(crate) struct StreamCtx {
    /// Cooperative revokes (not lost partitions) wait for the loop to
    /// commit before the partitions are given up (at-least-once: their
    /// processed work is committed instead of done again by the new
    /// owner).
    pub(crate) commit_before_revoke: AtomicBool,
    /// Revokes left to the loop and not given up yet (librdkafka waits
    /// for each one's `incremental_unassign`).
    deferred: Mutex<Vec<TopicPartitionList>>,
    events: Mutex<Vec<Event>>,
    /// Whether `events` holds any: checked after every record, so an
    /// atomic load rather than a lock.
    pending: AtomicBool,
    /// Wakes an eager `collect` waiting for records when an event comes.
    arrived: Notify,
}

fn partitions(tpl: &rdkafka::TopicPartitionList) -> Vec<(Topic, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (Topic::intern(e.topic()), e.partition()))
        .collect()
}

impl ClientContext for StreamCtx {}

impl ConsumerContext for StreamCtx {
    /// rdkafka's own handling (events pushed for the loop), except that a
    /// cooperative revoke of partitions that are not lost is left to the
    /// loop when [`StreamCtx::commit_before_revoke`] is set: librdkafka
    /// waits for the `incremental_unassign` call.
    fn rebalance(&self, c: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        let cooperative = matches!(c.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let revoke = err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS;
        if revoke
            && cooperative
            && self.commit_before_revoke.load(Ordering::Acquire)
            && !c.assignment_lost()
        {
            info!(
                partitions = tpl.count(),
                "partitions revoked: committing before giving them up"
            );
            self.deferred
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(tpl.clone());
            self.push(Event::Revoking(partitions(tpl)));
            return;
        }
        let done = if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            let done = if cooperative {
                c.incremental_assign(tpl)
            } else {
                c.assign(tpl)
            };
            info!(partitions = tpl.count(), "partitions assigned");
            self.push(Event::Assigned(partitions(tpl)));
            done
        } else {
            if !revoke {
                warn!(error = ?err, "rebalance error: giving the partitions up");
            }
            info!(
                partitions = tpl.count(),
                lost = c.assignment_lost(),
                "partitions revoked"
            );
            self.push(Event::Revoked(partitions(tpl)));
            if cooperative {
                c.incremental_unassign(tpl)
            } else {
                c.unassign()
            }
        };
        if let Err(e) = done {
            warn!(error = %e, "applying the rebalance failed");
        }
    }
}

impl StreamCtx {
    fn push(&self, e: Event) {
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        events.push(e);
        self.pending.store(true, Ordering::Release);
        self.arrived.notify_one();
    }

    /// Gives up the partitions of every revoke left to the loop. Called
    /// once the loop has committed (everything it processed), so all of
    /// them can go.
    pub(crate) fn give_up(&self, consumer: &StreamConsumer<StreamCtx>) {
        let left = std::mem::take(&mut *self.deferred.lock().unwrap_or_else(|e| e.into_inner()));
        for tpl in left {
            if let Err(e) = consumer.incremental_unassign(&tpl) {
                warn!(error = %e, "giving up revoked partitions");
            }
        }
    }

    /// When the loop ends however it ends (stop, error, abort, panic):
    /// revokes are no longer left to it — closing the consumer revokes
    /// everything and would wait for the loop forever — and a revoke it
    /// did not get to gives its partitions up now.
    pub(crate) fn stop_deferring(&self, consumer: &StreamConsumer<StreamCtx>) {
        self.commit_before_revoke.store(false, Ordering::Release);
        self.give_up(consumer);
    }

    fn has_events(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    fn take(&self) -> Vec<Event> {
        if !self.pending.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *events)
    }
}

pub(crate) type Consumer = Arc<StreamConsumer<StreamCtx>>;

/// Collects records until `deadline` (or until `max` records; with
/// `eager`, as soon as no more are fetched and at least one is taken or
/// an assignment changed),
/// moving the assignment changes seen meanwhile to `events` and dropping
/// records of revoked partitions. Returns whether `cancel` fired.
///
/// Per record this costs no timer, waker or lock: one message stream, one
/// deadline timer and one cancellation future serve the whole batch, and
/// records already fetched are taken without waiting (`now_or_never`);
/// the `select!` runs only when the queue is empty. The clock is read
/// every [`CLOCK_EVERY`] records.
pub(crate) async fn collect(
    consumer: &Consumer,
    cancel: &CancellationToken,
    deadline: Instant,
    max: usize,
    eager: bool,
    batch: &mut Vec<Record>,
    events: &mut Vec<Event>,
) -> bool {
    let mut stream = consumer.stream();
    let sleep = tokio::time::sleep_until(deadline);
    let cancelled = cancel.cancelled();
    let arrived = consumer.context().arrived.notified();
    tokio::pin!(sleep, cancelled, arrived);
    // The topic of the last record, interned (a lookup under a global lock).
    let mut last_topic: Option<Topic> = None;
    let mut n = 0usize;
    let stopping = loop {
        let msg = match stream.next().now_or_never() {
            Some(m) => m,
            None if eager && (!batch.is_empty() || consumer.context().has_events()) => break false,
            None => tokio::select! {
                biased;
                _ = &mut cancelled => break true,
                _ = &mut sleep => break false,
                _ = &mut arrived, if eager => break false,
                m = stream.next() => m,
            },
        };
        match msg.expect("a Kafka message stream never ends") {
            Ok(m) => {
                let topic = match last_topic {
                    Some(t) if t.as_str() == m.topic() => t,
                    _ => *last_topic.insert(Topic::intern(m.topic())),
                };
                let rec = record_from_message(&m, topic);
                drop(m);
                note_events(consumer, batch, events);
                batch.push(rec);
                if batch.len() >= max {
                    break false;
                }
                n += 1;
                if n.is_multiple_of(CLOCK_EVERY) {
                    if cancel.is_cancelled() {
                        break true;
                    }
                    if Instant::now() >= deadline {
                        break false;
                    }
                    // Records already fetched never make this loop wait:
                    // let the runtime's other tasks (health, timers) run.
                    tokio::task::consume_budget().await;
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

/// Records taken between looks at the clock and the cancellation.
const CLOCK_EVERY: usize = 64;

fn note_events(consumer: &Consumer, batch: &mut Vec<Record>, events: &mut Vec<Event>) {
    for e in consumer.context().take() {
        if let Event::Revoked(parts) | Event::Revoking(parts) = &e {
            batch.retain(|r| {
                !parts
                    .iter()
                    .any(|(t, p)| r.topic == *t && r.partition == *p)
            });
        }
        events.push(e);
    }
}
