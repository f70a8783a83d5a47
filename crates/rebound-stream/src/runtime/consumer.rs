//! The group consumer: its context remembers assignments and revokes (in
//! order) for the loop, and `collect` gathers one batch.
//!
//! Rebalance callbacks run only inside `recv`, i.e. while a batch is being
//! collected, never while one is processed or committed: a partition is
//! never taken away in the middle of a transaction. Records fetched from a
//! partition before it was revoked are dropped from the batch (its new
//! owner reads them from the last commit).
//!
//! At-least-once collects batch N+1 while batch N waits for its
//! acknowledgements. A revoke then must not take effect before N is
//! committed, or the new owner would start below N's offsets with N's
//! changelog records already in its restore. While the loop says a batch
//! is pending ([`StreamCtx::defer_revokes`]), a revoke is only noted:
//! librdkafka keeps the partitions assigned (the rebalance waits for the
//! application's unassign call, heartbeats go on) until the loop has
//! committed N and calls [`give_up`]. A lost assignment (session timeout)
//! is not deferred: it is gone already.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use rdkafka::consumer::{
    BaseConsumer, Consumer as _, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::Message;
use rdkafka::types::RDKafkaRespErr as RespErr;
use rdkafka::{ClientContext, TopicPartitionList};
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
    /// Whether `events` holds any: checked after every record, so an
    /// atomic load rather than a lock.
    pending: AtomicBool,
    /// Set by the loop while a batch waits for its acknowledgements.
    defer: AtomicBool,
    /// Revoked partitions still assigned until the loop gives them up.
    deferred: Mutex<Vec<Vec<(Topic, i32)>>>,
    /// The first failure of an asynchronous offset commit, for the loop.
    commit_failed: Mutex<Option<KafkaError>>,
    /// A revoke arrived as a lost assignment (session timeout): the
    /// partitions are someone else's already.
    lost: AtomicBool,
}

fn partitions(tpl: &rdkafka::TopicPartitionList) -> Vec<(Topic, i32)> {
    tpl.elements()
        .iter()
        .map(|e| (Topic::intern(e.topic()), e.partition()))
        .collect()
}

impl ClientContext for StreamCtx {}

impl ConsumerContext for StreamCtx {
    /// An asynchronous commit's outcome (served while collecting): a
    /// failure is kept for the loop, which stops at its next commit.
    fn commit_callback(&self, result: KafkaResult<()>, _: &TopicPartitionList) {
        if let Err(e) = result {
            warn!(error = %e, "committing the input offsets failed");
            lock(&self.commit_failed).get_or_insert(e);
        }
    }

    /// rdkafka's default (pre-rebalance, then assign or unassign), except
    /// that a revoke while a batch is pending is deferred (module docs).
    fn rebalance(&self, c: &BaseConsumer<Self>, err: RespErr, tpl: &mut TopicPartitionList) {
        let revoke = err == RespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS;
        if revoke && self.defer.load(Ordering::Acquire) && !c.assignment_lost() {
            info!(
                partitions = tpl.count(),
                "partitions revoked; given up once the pending batch is committed"
            );
            let parts = partitions(tpl);
            lock(&self.deferred).push(parts.clone());
            self.push(Event::Revoked(parts));
            return;
        }
        if revoke && c.assignment_lost() {
            self.lost.store(true, Ordering::Release);
        }
        let cooperative = matches!(c.rebalance_protocol(), RebalanceProtocol::Cooperative);
        let done = match err {
            RespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if cooperative {
                    c.incremental_assign(tpl)
                } else {
                    c.assign(tpl)
                }
            }
            _ => {
                if revoke {
                    info!(partitions = tpl.count(), "partitions revoked");
                    self.push(Event::Revoked(partitions(tpl)));
                } else {
                    warn!(error = ?err, "rebalance error; giving up the assignment");
                }
                unassign(c, cooperative, tpl)
            }
        };
        if let Err(e) = done {
            warn!(error = %e, "applying a rebalance failed");
        }
        if err == RespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            info!(partitions = tpl.count(), "partitions assigned");
            self.push(Event::Assigned(partitions(tpl)));
        }
    }
}

fn unassign<C: rdkafka::consumer::Consumer<X>, X: ConsumerContext>(
    c: &C,
    cooperative: bool,
    tpl: &TopicPartitionList,
) -> KafkaResult<()> {
    if cooperative {
        c.incremental_unassign(tpl)
    } else {
        c.unassign()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Gives up the partitions whose revoke was deferred (the pending batch is
/// committed) and stops deferring until the loop says so again. Returns
/// how many revokes it gave up.
pub(crate) fn give_up(consumer: &Consumer) -> KafkaResult<usize> {
    let ctx = consumer.context();
    ctx.defer_revokes(false);
    let deferred = std::mem::take(&mut *lock(&ctx.deferred));
    let cooperative = matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    );
    let n = deferred.len();
    for parts in deferred {
        let mut tpl = TopicPartitionList::new();
        for (t, p) in &parts {
            tpl.add_partition(t.as_str(), *p);
        }
        info!(partitions = parts.len(), "revoked partitions given up");
        unassign(consumer.as_ref(), cooperative, &tpl)?;
    }
    Ok(n)
}

impl StreamCtx {
    /// Whether a revoke must wait for [`give_up`] (a batch is pending).
    pub(crate) fn defer_revokes(&self, on: bool) {
        self.defer.store(on, Ordering::Release);
    }

    /// Whether a revoke since the last call was a lost assignment.
    pub(crate) fn take_lost(&self) -> bool {
        self.lost.swap(false, Ordering::AcqRel)
    }

    /// The failure of an asynchronous commit since the last call, if any.
    pub(crate) fn take_commit_failure(&self) -> Option<KafkaError> {
        lock(&self.commit_failed).take()
    }

    fn push(&self, e: Event) {
        lock(&self.events).push(e);
        self.pending.store(true, Ordering::Release);
    }

    fn take(&self) -> Vec<Event> {
        if !self.pending.load(Ordering::Acquire) {
            return Vec::new();
        }
        let mut events = lock(&self.events);
        self.pending.store(false, Ordering::Release);
        std::mem::take(&mut *events)
    }
}

pub(crate) type Consumer = Arc<StreamConsumer<StreamCtx>>;

/// Collects records for `interval` (or until `max` records, or a revoke),
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
    interval: Duration,
    max: usize,
    batch: &mut Vec<Record>,
    events: &mut Vec<Event>,
) -> bool {
    let deadline = Instant::now() + interval;
    let mut stream = consumer.stream();
    let sleep = tokio::time::sleep_until(deadline);
    let cancelled = cancel.cancelled();
    tokio::pin!(sleep, cancelled);
    // The topic of the last record, interned (a lookup under a global lock).
    let mut last_topic: Option<Topic> = None;
    let mut n = 0usize;
    let stopping = loop {
        let msg = match stream.next().now_or_never() {
            Some(m) => m,
            None => tokio::select! {
                biased;
                _ = &mut cancelled => break true,
                _ = &mut sleep => break false,
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
                // After the push: a revoke deferred by this poll leaves the
                // partition assigned, so this record may be one of it.
                batch.push(rec);
                if note_events(consumer, batch, events) {
                    // Let the loop commit and give the partitions up now.
                    break false;
                }
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

/// Moves the context's events to `events`; whether one was a revoke.
fn note_events(consumer: &Consumer, batch: &mut Vec<Record>, events: &mut Vec<Event>) -> bool {
    let mut revoked = false;
    for e in consumer.context().take() {
        if let Event::Revoked(parts) = &e {
            revoked = true;
            batch.retain(|r| {
                !parts
                    .iter()
                    .any(|(t, p)| r.topic == *t && r.partition == *p)
            });
        }
        events.push(e);
    }
    revoked
}
