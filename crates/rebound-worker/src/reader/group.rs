//! [`GroupReader`]: a member of a consumer group that commits what its
//! caller acknowledged.

use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rebound_core::{Record, Topic};

use super::client;
use super::config::ReaderConfig;
use super::cursor::Cursor;
use super::error::{ReaderError, Result};
use super::plan;
use super::rebalance::{commit_acked, GroupCtx, State};
use super::Polled;
use crate::record_from_message;

/// Reads a topic as a member of consumer group `group`.
///
/// Each assigned partition starts at the group's committed offset; a
/// partition the group has never committed starts where
/// [`ReaderConfig::with_start`] says. Not following, the reader ends when
/// every partition assigned to it reached its end as of subscribing.
/// Nothing is committed until [`commit`](Self::commit) (or a revoke, or
/// [`close`](Self::close)), and only offsets passed to [`ack`](Self::ack).
pub struct GroupReader {
    consumer: BaseConsumer<GroupCtx>,
    topic: Topic,
    group: String,
    follow: bool,
    timeout: Duration,
    last_progress: Instant,
}

impl std::fmt::Debug for GroupReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupReader")
            .field("topic", &self.topic)
            .field("group", &self.group)
            .finish_non_exhaustive()
    }
}

impl GroupReader {
    /// Finds where each partition starts (for partitions the group never
    /// committed) and ends, then subscribes. The group join happens while
    /// polling. `cfg` must not choose partitions: the group assigns them.
    pub fn subscribe(cfg: &ReaderConfig, group: &str) -> Result<Self> {
        if !cfg.chosen.is_empty() {
            return Err(ReaderError::Config {
                topic: cfg.topic.clone(),
                reason: "a group member reads the partitions the group assigns it; \
                         choosing partitions needs a reader without a group"
                    .into(),
            });
        }
        let probe = client::manual_consumer(cfg)?;
        let all = client::partitions(&probe, cfg)?;
        let chosen = plan::selected(cfg, &all)?;
        let spans = plan::topic_spans(&probe, cfg, &all)?;
        let fresh = plan::cursors(&probe, cfg, &chosen, &spans)?;
        drop(probe);
        let stops = spans
            .iter()
            .map(|s| (s.partition, (!cfg.follow).then_some(s.end)))
            .collect();
        let ctx = GroupCtx {
            topic: cfg.topic.clone(),
            timeout: cfg.timeout,
            fresh,
            stops,
            follow: cfg.follow,
            state: Arc::default(),
        };
        let consumer: BaseConsumer<GroupCtx> = client::client_config(cfg, Some(group))
            .set(
                "session.timeout.ms",
                cfg.session_timeout.as_millis().max(1).to_string(),
            )
            .set(
                "heartbeat.interval.ms",
                (cfg.session_timeout.as_millis() / 3).max(1).to_string(),
            )
            .create_with_context(ctx)
            .map_err(|source| ReaderError::Client {
                topic: cfg.topic.clone(),
                source: source.into(),
            })?;
        consumer
            .subscribe(&[&cfg.topic])
            .map_err(|source| ReaderError::Topic {
                op: "subscribing",
                topic: cfg.topic.clone(),
                source: source.into(),
            })?;
        Ok(GroupReader {
            consumer,
            topic: Topic::intern(&cfg.topic),
            group: group.to_string(),
            follow: cfg.follow,
            timeout: cfg.timeout,
            last_progress: Instant::now(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.consumer.context().state()
    }

    /// Partitions assigned to this member now.
    pub fn assigned(&self) -> Vec<i32> {
        self.state().cursors.keys().copied().collect()
    }

    /// Whether every partition assigned to this member reached its end as
    /// of subscribing (never when following, nor before the first assignment).
    pub fn is_finished(&self) -> bool {
        let state = self.state();
        !self.follow && !state.cursors.is_empty() && state.cursors.values().all(Cursor::is_done)
    }

    /// Waits up to `timeout` for the next record (see
    /// [`PartitionReader::poll`](super::PartitionReader::poll)).
    pub fn poll(&mut self, timeout: Duration) -> Result<Polled> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.state().error.take() {
                return Err(e);
            }
            if self.is_finished() {
                return Ok(Polled::End);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.consumer.poll(left.min(Duration::from_millis(100))) {
                None => {
                    if !self.follow && self.last_progress.elapsed() > self.timeout {
                        self.last_progress = Instant::now();
                        return Err(self.timed_out());
                    }
                }
                Some(Ok(m)) => {
                    self.last_progress = Instant::now();
                    let take = {
                        let mut state = self.consumer.context().state();
                        state
                            .cursors
                            .get_mut(&m.partition())
                            .is_some_and(|c| c.accept(m.offset(), m.timestamp().to_millis()))
                    };
                    if take {
                        return Ok(Polled::Record(record_from_message(&m, self.topic)));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    self.last_progress = Instant::now();
                    if let Some(c) = self.state().cursors.get_mut(&p) {
                        c.at_eof();
                    }
                }
                Some(Err(source)) => {
                    return Err(ReaderError::Topic {
                        op: "reading",
                        topic: self.topic.to_string(),
                        source: source.into(),
                    })
                }
            }
            if Instant::now() >= deadline {
                return Ok(Polled::Idle);
            }
        }
    }

    /// Marks `rec` handled: the next commit covers it (and everything
    /// before it in its partition).
    pub fn ack(&mut self, rec: &Record) {
        self.ack_offset(rec.partition, rec.offset);
    }

    /// Marks the record at `offset` of `partition` handled (see
    /// [`ack`](Self::ack)), for callers that kept only its position.
    pub fn ack_offset(&mut self, partition: i32, offset: i64) {
        let mut state = self.state();
        let next = state.acked.entry(partition).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
    }

    /// Commits every acknowledged offset, synchronously.
    pub fn commit(&mut self) -> Result<()> {
        let mut state = self.consumer.context().state();
        commit_acked(&self.consumer, self.topic.as_str(), &mut state, None)
    }

    /// Commits what was acknowledged and leaves the group.
    pub fn close(mut self) -> Result<()> {
        let result = self.commit();
        self.consumer.unsubscribe();
        result
    }

    fn timed_out(&self) -> ReaderError {
        let state = self.state();
        if state.cursors.is_empty() {
            return ReaderError::NotAssigned {
                topic: self.topic.to_string(),
                group: self.group.clone(),
                timeout: self.timeout,
            };
        }
        ReaderError::Timeout {
            what: "reading",
            topic: self.topic.to_string(),
            partitions: state
                .cursors
                .iter()
                .filter(|(_, c)| !c.is_done())
                .map(|(&p, _)| p)
                .collect(),
            timeout: self.timeout,
        }
    }
}
