//! Reading a DLQ topic without a consumer group, through
//! [`rebound_worker::reader`]: every partition is assigned explicitly, the
//! end of each is found by fetching to it (not from watermarks alone),
//! nothing is committed. This adds the progress bar.

use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rebound_core::Record;
use rebound_worker::reader::{spans, PartitionReader, PartitionSpan, ReaderConfig, StartAt};

/// A reader of one topic, with the offsets each partition held when opened.
pub struct TopicReader {
    config: ReaderConfig,
    spans: Vec<PartitionSpan>,
}

impl TopicReader {
    /// Connects, checks that `topic` exists and finds where its partitions
    /// start and end. Blocking: call from a blocking thread.
    pub fn open(
        brokers: &str,
        props: &[(String, String)],
        topic: &str,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let config = crate::security::reader_config(brokers, topic, props).with_timeout(timeout);
        let spans = spans(&config)?;
        Ok(TopicReader { config, spans })
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
    /// exclusive `end`, or to the end of the partition as of now, in offset
    /// order per partition.
    pub fn read(
        &self,
        ranges: &[(i32, i64, Option<i64>)],
        mut on_record: impl FnMut(Record),
    ) -> anyhow::Result<()> {
        let mut config = self.config.clone();
        for &(p, start, end) in ranges {
            config = config.with_range(p, StartAt::Offset(start), end);
        }
        if ranges.is_empty() {
            return Ok(());
        }
        let reader = PartitionReader::open(&config)?;
        let bar = read_bar(config.topic(), reader.remaining());
        for rec in reader {
            let rec = rec.with_context(|| format!("reading {} failed", config.topic()))?;
            bar.inc(1);
            on_record(rec);
        }
        bar.finish_and_clear();
        Ok(())
    }
}

fn read_bar(topic: &str, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("reading {msg} [{bar:40}] {pos}/~{len} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(topic.to_string());
    bar
}
