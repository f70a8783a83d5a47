//! [`PartitionReader`]: manual assignment, no consumer group, no commits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rebound_core::{Record, Topic};

use super::client;
use super::config::ReaderConfig;
use super::cursor::Cursor;
use super::error::{ReaderError, Result};
use super::plan::{self, PartitionSpan};
use super::Polled;
use crate::cluster_check::LastError;
use crate::record_from_message;

/// Reads chosen partitions (or all) of one topic with explicit assignment:
/// it joins no group and never commits. Blocking.
///
/// ```no_run
/// use rebound_worker::reader::{PartitionReader, ReaderConfig, StartAt};
/// # fn run() -> Result<(), rebound_worker::reader::ReaderError> {
/// let cfg = ReaderConfig::new("127.0.0.1:9092", "orders").with_start(StartAt::Offset(100));
/// for rec in PartitionReader::open(&cfg)? {
///     let rec = rec?;
///     println!("{}:{} {:?}", rec.partition, rec.offset, rec.value_str());
/// }
/// # Ok(()) }
/// ```
pub struct PartitionReader {
    consumer: BaseConsumer<LastError>,
    topic: Topic,
    cursors: BTreeMap<i32, Cursor>,
    spans: Vec<PartitionSpan>,
    follow: bool,
    timeout: Duration,
    last_progress: Instant,
}

impl std::fmt::Debug for PartitionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReader")
            .field("topic", &self.topic)
            .field("cursors", &self.cursors)
            .finish_non_exhaustive()
    }
}

impl PartitionReader {
    /// Connects, checks the topic and partitions, finds where each
    /// partition starts and ends, and assigns them.
    pub fn open(cfg: &ReaderConfig) -> Result<Self> {
        let consumer = client::manual_consumer(cfg)?;
        let all = client::partitions(&consumer, cfg)?;
        let chosen = plan::selected(cfg, &all)?;
        let parts: Vec<i32> = chosen.keys().copied().collect();
        let spans = plan::topic_spans(&consumer, cfg, &parts)?;
        let cursors = plan::cursors(&consumer, cfg, &chosen, &spans)?;
        let mut tpl = TopicPartitionList::new();
        for (&p, c) in cursors.iter().filter(|(_, c)| !c.is_done()) {
            tpl.add_partition_offset(&cfg.topic, p, Offset::Offset(c.fetch_from()))
                .map_err(|source| ReaderError::Partition {
                    op: "assigning",
                    topic: cfg.topic.clone(),
                    partition: p,
                    source: source.into(),
                })?;
        }
        if tpl.count() > 0 {
            consumer.assign(&tpl).map_err(|source| ReaderError::Topic {
                op: "assigning the partitions",
                topic: cfg.topic.clone(),
                source: source.into(),
            })?;
        }
        Ok(PartitionReader {
            consumer,
            topic: Topic::intern(&cfg.topic),
            cursors,
            spans,
            follow: cfg.follow,
            timeout: cfg.timeout,
            last_progress: Instant::now(),
        })
    }

    /// The partitions read, with the offsets each held at opening.
    pub fn spans(&self) -> &[PartitionSpan] {
        &self.spans
    }

    /// Where each partition read starts: partition → first offset handed on.
    pub fn starts(&self) -> BTreeMap<i32, i64> {
        self.cursors.iter().map(|(&p, c)| (p, c.start)).collect()
    }

    /// Offsets still to read before the end (an upper bound: transaction
    /// markers and gaps count); 0 when following without a bound.
    pub fn remaining(&self) -> u64 {
        self.cursors.values().map(Cursor::remaining).sum()
    }

    /// Whether every partition reached its end (never when following).
    pub fn is_finished(&self) -> bool {
        self.cursors.values().all(Cursor::is_done)
    }

    /// Every record up to the end of each partition as of opening, in
    /// offset order per partition (not for a following reader: it has no end).
    pub fn read_to_end(mut self) -> Result<Vec<rebound_core::Record>> {
        let mut out = Vec::new();
        loop {
            match self.poll(Duration::from_millis(200))? {
                Polled::Record(r) => out.push(r),
                Polled::Idle => {}
                Polled::End => return Ok(out),
            }
        }
    }

    /// Waits up to `timeout` for the next record. Not following, fails when
    /// nothing arrived for the configured timeout while a partition is
    /// unfinished.
    pub fn poll(&mut self, timeout: Duration) -> Result<Polled> {
        let deadline = Instant::now() + timeout;
        loop {
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
                    let p = m.partition();
                    let Some(cursor) = self.cursors.get_mut(&p) else {
                        continue;
                    };
                    let take = cursor.accept(m.offset(), m.timestamp().to_millis());
                    let done = cursor.is_done();
                    let rec = take.then(|| record_from_message(&m, self.topic));
                    drop(m);
                    if done {
                        self.pause(p);
                    }
                    if let Some(rec) = rec {
                        return Ok(Polled::Record(rec));
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    self.last_progress = Instant::now();
                    if let Some(c) = self.cursors.get_mut(&p) {
                        c.at_eof();
                        if c.is_done() {
                            self.pause(p);
                        }
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

    /// Stops fetching a finished partition.
    fn pause(&self, partition: i32) {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(self.topic.as_str(), partition);
        if let Err(e) = self.consumer.pause(&tpl) {
            tracing::debug!(partition, "pausing a finished partition failed: {e}");
        }
    }

    fn timed_out(&self) -> ReaderError {
        ReaderError::Timeout {
            what: "reading",
            topic: self.topic.to_string(),
            partitions: self
                .cursors
                .iter()
                .filter(|(_, c)| !c.is_done())
                .map(|(&p, _)| p)
                .collect(),
            timeout: self.timeout,
        }
    }
}

/// Yields every record up to the end (for ever when following), blocking.
impl Iterator for PartitionReader {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.poll(Duration::from_secs(1)) {
                Ok(Polled::Record(r)) => return Some(Ok(r)),
                Ok(Polled::Idle) => {}
                Ok(Polled::End) => return None,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
