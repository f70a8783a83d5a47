//! Where each partition starts and stops.

use std::collections::BTreeMap;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::client::{self, probe_ends};
use super::config::{Chosen, ReaderConfig, StartAt};
use super::cursor::Cursor;
use super::error::{ReaderError, Result};

/// The offsets one partition holds, `low..end`, as of opening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSpan {
    /// Partition number.
    pub partition: i32,
    /// First offset still stored.
    pub low: i64,
    /// Offset after the last record (exclusive end), found by fetching to
    /// the end rather than from the reported high watermark alone.
    pub end: i64,
}

impl PartitionSpan {
    /// How many offsets the partition holds (records, plus any transaction
    /// markers and compacted gaps).
    pub fn len(&self) -> i64 {
        self.end - self.low
    }

    /// Whether the partition holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() <= 0
    }
}

/// Every partition of the topic with the offsets it holds now, by
/// partition number. Blocking.
pub fn spans(cfg: &ReaderConfig) -> Result<Vec<PartitionSpan>> {
    let consumer = client::manual_consumer(cfg)?;
    let all = client::partitions(&consumer, cfg)?;
    topic_spans(&consumer, cfg, &all)
}

/// Spans of `parts`.
pub(crate) fn topic_spans<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    cfg: &ReaderConfig,
    parts: &[i32],
) -> Result<Vec<PartitionSpan>> {
    let mut marks = BTreeMap::new();
    for &p in parts {
        marks.insert(p, client::watermarks(consumer, cfg, p)?);
    }
    let ends = probe_ends(cfg, &marks)?;
    Ok(marks
        .iter()
        .map(|(&partition, &(low, _))| PartitionSpan {
            partition,
            low,
            end: ends[&partition],
        })
        .collect())
}

/// The partitions `cfg` selects: the chosen ones (checked against the
/// topic) or all.
pub(crate) fn selected(cfg: &ReaderConfig, all: &[i32]) -> Result<BTreeMap<i32, Chosen>> {
    if cfg.chosen.is_empty() {
        return Ok(all
            .iter()
            .map(|&p| {
                (
                    p,
                    Chosen {
                        start: cfg.start,
                        stop: None,
                    },
                )
            })
            .collect());
    }
    for &p in cfg.chosen.keys() {
        if !all.contains(&p) {
            return Err(ReaderError::UnknownPartition {
                topic: cfg.topic.clone(),
                partition: p,
                count: all.len(),
            });
        }
    }
    Ok(cfg.chosen.clone())
}

/// One cursor per selected partition: its start offset resolved, its stop
/// (the caller's end, and the end as of now unless following).
pub(crate) fn cursors<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    cfg: &ReaderConfig,
    chosen: &BTreeMap<i32, Chosen>,
    spans: &[PartitionSpan],
) -> Result<BTreeMap<i32, Cursor>> {
    let span = |p: i32| {
        spans
            .iter()
            .find(|s| s.partition == p)
            .copied()
            .expect("a span for every selected partition")
    };
    let times = by_time(consumer, cfg, chosen)?;
    let mut out = BTreeMap::new();
    for (&p, c) in chosen {
        let s = span(p);
        let (start, not_before) = match c.start {
            StartAt::Beginning => (s.low, None),
            StartAt::End => (s.end, None),
            StartAt::Offset(o) if o < s.low => {
                return Err(ReaderError::OffsetDeleted {
                    topic: cfg.topic.clone(),
                    partition: p,
                    offset: o,
                    low: s.low,
                })
            }
            StartAt::Offset(o) => (o, None),
            StartAt::Timestamp(t) => match times.get(&p) {
                Some(&o) => (o.clamp(s.low, s.end), Some(t)),
                None => (s.end, Some(t)),
            },
        };
        let mut stop = c.stop;
        if !cfg.follow {
            stop = Some(stop.map_or(s.end, |e| e.min(s.end)));
        }
        out.insert(p, Cursor::new(start, stop, not_before, cfg.follow));
    }
    Ok(out)
}

/// `offsets_for_times` for the partitions that start at a timestamp:
/// partition → offset, absent when the broker says "after the end".
fn by_time<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    cfg: &ReaderConfig,
    chosen: &BTreeMap<i32, Chosen>,
) -> Result<BTreeMap<i32, i64>> {
    let mut tpl = TopicPartitionList::new();
    for (&p, c) in chosen {
        if let StartAt::Timestamp(t) = c.start {
            tpl.add_partition_offset(&cfg.topic, p, Offset::Offset(t))
                .map_err(|source| ReaderError::Partition {
                    op: "looking up offsets by time",
                    topic: cfg.topic.clone(),
                    partition: p,
                    source: source.into(),
                })?;
        }
    }
    if tpl.count() == 0 {
        return Ok(BTreeMap::new());
    }
    let got = consumer
        .offsets_for_times(tpl, cfg.timeout)
        .map_err(|source| ReaderError::Topic {
            op: "looking up offsets by time",
            topic: cfg.topic.clone(),
            source: source.into(),
        })?;
    let mut out = BTreeMap::new();
    for e in got.elements() {
        if let Err(source) = e.error() {
            return Err(ReaderError::Partition {
                op: "looking up offsets by time",
                topic: cfg.topic.clone(),
                partition: e.partition(),
                source: source.into(),
            });
        }
        if let Offset::Offset(o) = e.offset() {
            out.insert(e.partition(), o);
        }
    }
    Ok(out)
}
