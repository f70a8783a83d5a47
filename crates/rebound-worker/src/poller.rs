//! The poll loop: one OS thread owns the rdkafka consumer. It fetches
//! records in batches, serves rebalance callbacks (revoke waits for the
//! dispatcher to drain and commits the watermark) and carries out the
//! dispatcher's pause / resume / commit commands.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use rebound_core::{Header, Record, Topic};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::dispatch::{CommitPoint, Tp};
use crate::health::Health;
use crate::metrics::Metrics;

/// Poll loop → dispatcher, in order.
pub(crate) enum Event {
    Records(Vec<Record>),
    Assigned(Vec<(Tp, Option<i64>, String)>),
    Revoke {
        tps: Vec<Tp>,
        reply: std::sync::mpsc::Sender<Vec<CommitPoint>>,
    },
    Committed {
        points: Vec<CommitPoint>,
        result: Result<(), KafkaError>,
    },
}

/// Dispatcher → poll loop.
pub(crate) enum Command {
    Pause(Vec<Tp>),
    Resume(Vec<Tp>),
    Commit(Vec<CommitPoint>),
    /// Commit and answer directly (at-most-once: before the handlers run).
    CommitNow {
        points: Vec<CommitPoint>,
        reply: oneshot::Sender<Result<(), KafkaError>>,
    },
    /// Commit these points, then leave the group and stop.
    Stop {
        points: Vec<CommitPoint>,
        reply: oneshot::Sender<Result<(), KafkaError>>,
    },
    /// Stop without committing anything (crash simulation).
    Abort,
}

pub(crate) struct Ctx {
    pub events: mpsc::Sender<Event>,
    pub revoke_wait: Duration,
    pub closing: AtomicBool,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
}

impl ClientContext for Ctx {
    fn stats(&self, stats: Statistics) {
        let up = stats
            .brokers
            .values()
            .any(|b| b.nodeid >= 0 && b.state == "UP");
        self.health.set_brokers_up(up);
        for (topic, t) in &stats.topics {
            for (p, part) in &t.partitions {
                if *p < 0 || part.hi_offset < 0 {
                    continue;
                }
                let committed = self.metrics.committed(topic, *p);
                if committed > 0 || part.hi_offset == 0 {
                    self.metrics
                        .set_lag(topic, *p, (part.hi_offset - committed).max(0));
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.set_brokers_up(false);
        }
        warn!(%error, reason, "kafka client error");
    }

    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        match level {
            L::Emerg | L::Alert | L::Critical | L::Error => error!(fac, "{log_message}"),
            L::Warning => warn!(fac, "{log_message}"),
            _ => debug!(fac, "{log_message}"),
        }
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(tpl) = rebalance else {
            return;
        };
        let tps = tps_of(tpl);
        self.metrics.rebalanced("revoke", tps.len());
        if self.closing.load(Ordering::SeqCst) || tps.is_empty() {
            return;
        }
        info!(partitions = tps.len(), "partitions revoked: draining");
        let (tx, rx) = std::sync::mpsc::channel();
        if self
            .events
            .blocking_send(Event::Revoke { tps, reply: tx })
            .is_err()
        {
            return;
        }
        match rx.recv_timeout(self.revoke_wait) {
            Ok(points) if !points.is_empty() => {
                let result = commit(consumer, &points, &self.metrics);
                if let Err(e) = &result {
                    warn!(error = %e, "commit on revoke failed");
                }
                // The dispatcher keeps what it gave up; it needs to know
                // whether the group now holds it.
                let _ = self
                    .events
                    .blocking_send(Event::Committed { points, result });
            }
            Ok(_) => {}
            Err(_) => warn!("dispatcher did not answer the revoke in time; nothing committed"),
        }
    }

    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(tpl) = rebalance else {
            return;
        };
        self.health.set_joined();
        self.metrics.rebalanced("assign", tpl.count());
        if tpl.count() == 0 || self.closing.load(Ordering::SeqCst) {
            return;
        }
        let committed = consumer
            .committed_offsets((*tpl).clone(), Duration::from_secs(10))
            .unwrap_or_else(|e| {
                warn!(error = %e, "could not read committed offsets; no finished records will be skipped");
                (*tpl).clone()
            });
        let assigned = committed
            .elements()
            .iter()
            .map(|e| {
                let start = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                (
                    (Topic::intern(e.topic()), e.partition()),
                    start,
                    e.metadata().to_string(),
                )
            })
            .collect::<Vec<_>>();
        info!(partitions = assigned.len(), "partitions assigned");
        let _ = self.events.blocking_send(Event::Assigned(assigned));
    }
}

fn tps_of(tpl: &TopicPartitionList) -> Vec<Tp> {
    tpl.elements()
        .iter()
        .map(|e| (Topic::intern(e.topic()), e.partition()))
        .collect()
}

fn tpl_of(tps: &[Tp]) -> TopicPartitionList {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in tps {
        tpl.add_partition(t, *p);
    }
    tpl
}

/// Commits `points` synchronously and records the latency.
pub(crate) fn commit(
    consumer: &BaseConsumer<Ctx>,
    points: &[CommitPoint],
    metrics: &Metrics,
) -> Result<(), KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for p in points {
        let mut e = tpl.add_partition(&p.tp.0, p.tp.1);
        e.set_offset(Offset::Offset(p.offset))?;
        if !p.metadata.is_empty() {
            e.set_metadata(p.metadata.as_str());
        }
    }
    let started = Instant::now();
    let res = consumer.commit(&tpl, CommitMode::Sync);
    metrics
        .commit_latency
        .observe(started.elapsed().as_secs_f64());
    match &res {
        Ok(()) => {
            for p in points {
                metrics.set_committed(&p.tp.0, p.tp.1, p.offset);
            }
        }
        Err(_) => metrics.commit_failed(),
    }
    res
}

/// Remembers the last topic so interning is a string compare per record.
#[derive(Default)]
struct Topics {
    last: Option<Topic>,
}

impl Topics {
    fn get(&mut self, name: &str) -> Topic {
        match self.last {
            Some(t) if *t == *name => t,
            _ => {
                let t = Topic::intern(name);
                self.last = Some(t);
                t
            }
        }
    }
}

fn to_record(m: &BorrowedMessage<'_>, topics: &mut Topics) -> Record {
    record_from_message(m, topics.get(m.topic()))
}

/// Copies a consumed rdkafka message into an owned [`Record`] of `topic`.
pub fn record_from_message(m: &BorrowedMessage<'_>, topic: Topic) -> Record {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| Header {
                    name: h.key.to_string(),
                    value: h.value.map(<[u8]>::to_vec),
                })
                .collect()
        })
        .unwrap_or_default();
    Record {
        topic,
        partition: m.partition(),
        offset: m.offset(),
        timestamp: m.timestamp().to_millis(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
    }
}

pub(crate) struct PollLoop {
    pub consumer: BaseConsumer<Ctx>,
    pub commands: std::sync::mpsc::Receiver<Command>,
    pub events: mpsc::Sender<Event>,
    pub batch_max: usize,
    pub health: Arc<Health>,
    pub metrics: Arc<Metrics>,
}

impl PollLoop {
    /// Runs until told to stop; dropping the consumer leaves the group.
    pub fn run(self) {
        let mut topics = Topics::default();
        'outer: loop {
            loop {
                match self.commands.try_recv() {
                    Ok(cmd) => {
                        if !self.apply(cmd) {
                            break 'outer;
                        }
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        self.consumer
                            .context()
                            .closing
                            .store(true, Ordering::SeqCst);
                        break 'outer;
                    }
                }
            }
            self.health.polled();
            let mut batch = Vec::with_capacity(self.batch_max.min(64));
            let mut timeout = Duration::from_millis(20);
            while batch.len() < self.batch_max {
                match self.consumer.poll(timeout) {
                    None => break,
                    Some(Ok(m)) => batch.push(to_record(&m, &mut topics)),
                    Some(Err(e)) => {
                        warn!(error = %e, "consumer error");
                        break;
                    }
                }
                timeout = Duration::ZERO;
            }
            if batch.is_empty() {
                continue;
            }
            if self.events.blocking_send(Event::Records(batch)).is_err() {
                self.consumer
                    .context()
                    .closing
                    .store(true, Ordering::SeqCst);
                break;
            }
        }
        debug!("poll loop stopped; closing consumer");
    }

    /// Applies a command; `false` means stop.
    fn apply(&self, cmd: Command) -> bool {
        match cmd {
            Command::Pause(tps) => {
                if let Err(e) = self.consumer.pause(&tpl_of(&tps)) {
                    warn!(error = %e, "pause failed");
                }
                true
            }
            Command::Resume(tps) => {
                if let Err(e) = self.consumer.resume(&tpl_of(&tps)) {
                    warn!(error = %e, "resume failed");
                }
                true
            }
            Command::Commit(points) => {
                let result = commit(&self.consumer, &points, &self.metrics);
                let _ = self
                    .events
                    .blocking_send(Event::Committed { points, result });
                true
            }
            Command::CommitNow { points, reply } => {
                let _ = reply.send(commit(&self.consumer, &points, &self.metrics));
                true
            }
            Command::Stop { points, reply } => {
                let result = if points.is_empty() {
                    Ok(())
                } else {
                    commit(&self.consumer, &points, &self.metrics)
                };
                self.consumer
                    .context()
                    .closing
                    .store(true, Ordering::SeqCst);
                let _ = reply.send(result);
                false
            }
            Command::Abort => {
                self.consumer
                    .context()
                    .closing
                    .store(true, Ordering::SeqCst);
                false
            }
        }
    }
}
