//! Reading a DLQ topic without a consumer group: every partition is assigned
//! explicitly, the watermarks say where to stop, nothing is committed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rebound_core::{Record, Topic};

/// The offsets one partition holds, `low..high`, as the watermarks say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionSpan {
    /// Partition number.
    pub partition: i32,
    /// First offset still stored.
    pub low: i64,
    /// Offset the next record will get (exclusive end). An estimate: see
    /// [`TopicReader::read`].
    pub high: i64,
}

/// Sends librdkafka's own logs and connection errors to `debug`: a failed
/// read is reported once, as the command's error, not as dozens of lines.
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        tracing::debug!(?level, fac, "librdkafka: {log_message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("librdkafka: {error}: {reason}");
    }
}

impl ConsumerContext for Quiet {}

/// A connected reader of one topic.
pub struct TopicReader {
    consumer: BaseConsumer<Quiet>,
    topic: String,
    timeout: Duration,
    spans: Vec<PartitionSpan>,
}

impl TopicReader {
    /// Connects, checks that `topic` exists and fetches its watermarks.
    /// Blocking: call from a blocking thread.
    pub fn open(brokers: &str, topic: &str, timeout: Duration) -> anyhow::Result<Self> {
        // librdkafka wants a group id even for `assign`; it is never joined
        // and nothing is committed under it.
        let consumer: BaseConsumer<Quiet> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "rebound-dlq-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "true")
            // An offset past the end resets to the end, so EOF still comes.
            .set("auto.offset.reset", "latest")
            .set("allow.auto.create.topics", "false")
            .create_with_context(Quiet)
            .context("cannot create the Kafka client")?;
        let md = consumer
            .fetch_metadata(Some(topic), timeout)
            .with_context(|| {
                format!(
                    "could not reach Kafka brokers at {brokers} within {}",
                    humanize(timeout)
                )
            })?;
        let Some(t) = md.topics().iter().find(|t| t.name() == topic) else {
            bail!("topic {topic} does not exist");
        };
        if t.error().is_some() || t.partitions().is_empty() {
            bail!("topic {topic} does not exist (or cannot be described)");
        }
        let mut parts: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
        parts.sort_unstable();
        let mut spans = Vec::with_capacity(parts.len());
        for p in parts {
            let (low, high) = consumer
                .fetch_watermarks(topic, p, timeout)
                .with_context(|| format!("cannot read the offsets of {topic} partition {p}"))?;
            spans.push(PartitionSpan {
                partition: p,
                low,
                high,
            });
        }
        Ok(TopicReader {
            consumer,
            topic: topic.to_string(),
            timeout,
            spans,
        })
    }

    /// Every partition with the offsets it holds, by partition number.
    pub fn spans(&self) -> &[PartitionSpan] {
        &self.spans
    }

    /// The span of `partition`, if the topic has it.
    pub fn span(&self, partition: i32) -> Option<PartitionSpan> {
        self.spans
            .iter()
            .copied()
            .find(|s| s.partition == partition)
    }

    /// Reads every stored record of every partition.
    pub fn read_all(&self, on_record: impl FnMut(Record)) -> anyhow::Result<()> {
        let ranges = self
            .spans
            .iter()
            .map(|s| (s.partition, s.low, None))
            .collect::<Vec<_>>();
        self.read(&ranges, on_record)
    }

    /// Reads each `(partition, start, end)` from offset `start` up to the
    /// exclusive `end`, or to the end of the partition, in offset order per
    /// partition. The end of a partition is where the broker says it is
    /// while fetching (librdkafka's partition EOF), not the watermark fetched
    /// at open: tansu 0.6 reports a high watermark below the last offset
    /// after a multi-record batch. Fails when nothing arrives for the timeout
    /// while some partition is unfinished.
    pub fn read(
        &self,
        ranges: &[(i32, i64, Option<i64>)],
        mut on_record: impl FnMut(Record),
    ) -> anyhow::Result<()> {
        let mut pending: BTreeMap<i32, (i64, Option<i64>)> = BTreeMap::new();
        let mut tpl = TopicPartitionList::new();
        let mut total = 0;
        for &(p, start, end) in ranges {
            if end.is_some_and(|e| e <= start) {
                continue;
            }
            // Past the (estimated) end, fetch from the last record instead:
            // brokers do not all answer a fetch beyond the end with
            // OFFSET_OUT_OF_RANGE, and then no EOF would ever come.
            let (low, high) = self.span(p).map_or((start, start), |s| (s.low, s.high));
            let fetch_from = if start >= high {
                low.max(high - 1)
            } else {
                start
            };
            tpl.add_partition_offset(&self.topic, p, Offset::Offset(fetch_from))
                .context("cannot build the partition assignment")?;
            pending.insert(p, (start, end));
            total += end.unwrap_or(high).min(high).saturating_sub(start).max(0);
        }
        if pending.is_empty() {
            return Ok(());
        }
        let bar = read_bar(&self.topic, total);
        self.consumer
            .assign(&tpl)
            .with_context(|| format!("cannot assign the partitions of {}", self.topic))?;
        let topic = Topic::intern(&self.topic);
        let mut last_progress = Instant::now();
        let result = loop {
            if pending.is_empty() {
                break Ok(());
            }
            match self.consumer.poll(Duration::from_millis(100)) {
                None => {
                    if last_progress.elapsed() > self.timeout {
                        let waiting = pending
                            .keys()
                            .map(|p| format!("partition {p}"))
                            .collect::<Vec<_>>()
                            .join(", ");
                        break Err(anyhow::anyhow!(
                            "timed out after {} reading {}: nothing arrived from {waiting}",
                            humanize(self.timeout),
                            self.topic
                        ));
                    }
                }
                Some(Ok(m)) => {
                    last_progress = Instant::now();
                    if let Some(&(start, end)) = pending.get(&m.partition()) {
                        let wanted = m.offset() >= start && end.is_none_or(|e| m.offset() < e);
                        if wanted {
                            bar.inc(1);
                            on_record(to_record(&m, &topic));
                        }
                        if end.is_some_and(|e| m.offset() + 1 >= e) {
                            pending.remove(&m.partition());
                        }
                    }
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    last_progress = Instant::now();
                    pending.remove(&p);
                }
                Some(Err(e)) => {
                    break Err(
                        anyhow::Error::new(e).context(format!("reading {} failed", self.topic))
                    )
                }
            }
        };
        bar.finish_and_clear();
        let _ = self.consumer.unassign();
        result
    }
}

fn read_bar(topic: &str, total: i64) -> ProgressBar {
    let bar = ProgressBar::new(u64::try_from(total).unwrap_or(0));
    bar.set_style(
        ProgressStyle::with_template("reading {msg} [{bar:40}] {pos}/~{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(topic.to_string());
    bar
}

fn to_record(m: &BorrowedMessage<'_>, topic: &Topic) -> Record {
    rebound_worker::record_from_message(m, *topic)
}

/// `30s`, `1.5s`, `250ms`.
pub fn humanize(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}
