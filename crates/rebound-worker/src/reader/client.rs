//! Client settings, topic metadata and watermarks, and the end probe.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::config::ReaderConfig;
use super::error::{ReaderError, Result};
use crate::cluster_check::LastError;

/// The group id of a manually assigned reader: librdkafka wants one, it is
/// never joined and nothing is committed under it.
pub(crate) const READER_GROUP: &str = "rebound-reader";

/// Consumer settings: the caller's properties, then ours (no commits,
/// partition EOF, isolation level, no silent offset resets).
pub(crate) fn client_config(cfg: &ReaderConfig, group: Option<&str>) -> ClientConfig {
    let mut c = ClientConfig::new();
    // A reader holds what it fetched only until the caller takes it; bound
    // librdkafka's prefetch queue (64 MiB by default) to 16 MiB.
    c.set("queued.max.messages.kbytes", "16384");
    for (k, v) in &cfg.client_config {
        c.set(k, v);
    }
    c.set("bootstrap.servers", &cfg.brokers)
        .set("group.id", group.unwrap_or(READER_GROUP))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true")
        .set("auto.offset.reset", "error")
        .set("allow.auto.create.topics", "false")
        .set(
            "isolation.level",
            if cfg.read_committed {
                "read_committed"
            } else {
                "read_uncommitted"
            },
        );
    c
}

/// A manually assigned consumer.
pub(crate) fn manual_consumer(cfg: &ReaderConfig) -> Result<BaseConsumer<LastError>> {
    client_config(cfg, None)
        .create_with_context(LastError::default())
        .map_err(|source| ReaderError::Client {
            topic: cfg.topic.clone(),
            source: source.into(),
        })
}

/// The topic's partitions, sorted. Unreachable brokers are reported in
/// librdkafka's words (a refused connection, a failed TLS or SASL login).
pub(crate) fn partitions(
    consumer: &BaseConsumer<LastError>,
    cfg: &ReaderConfig,
) -> Result<Vec<i32>> {
    let md = consumer
        .fetch_metadata(Some(&cfg.topic), cfg.timeout)
        .map_err(|source| {
            // Serve the logs librdkafka queued: they say why.
            let _ = consumer.poll(Duration::ZERO);
            ReaderError::Unreachable {
                brokers: cfg.brokers.clone(),
                timeout: cfg.timeout,
                last_error: consumer.context().describe(),
                source: source.into(),
            }
        })?;
    let unknown = || ReaderError::UnknownTopic {
        topic: cfg.topic.clone(),
    };
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == cfg.topic)
        .ok_or_else(unknown)?;
    if t.error().is_some() || t.partitions().is_empty() {
        return Err(unknown());
    }
    let mut parts: Vec<i32> = t.partitions().iter().map(|p| p.id()).collect();
    parts.sort_unstable();
    Ok(parts)
}

/// `(low, high)` watermarks as the broker reports them; `high` may be low
/// (see the module docs).
pub(crate) fn watermarks<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    cfg: &ReaderConfig,
    partition: i32,
) -> Result<(i64, i64)> {
    consumer
        .fetch_watermarks(&cfg.topic, partition, cfg.timeout)
        .map_err(|source| ReaderError::Partition {
            op: "fetching the watermarks",
            topic: cfg.topic.clone(),
            partition,
            source: source.into(),
        })
}

/// The end of each partition as of now: fetches each from its last
/// reported record (`high - 1`) until the broker signals the end of the
/// partition, and takes the offset after the last record seen (or `high`
/// when that is further, e.g. after a trailing transaction marker).
/// `marks` maps partition → `(low, high)`.
pub(crate) fn probe_ends(
    cfg: &ReaderConfig,
    marks: &BTreeMap<i32, (i64, i64)>,
) -> Result<BTreeMap<i32, i64>> {
    let consumer = manual_consumer(cfg)?;
    let mut tpl = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for (&p, &(low, high)) in marks {
        let from = low.max(high - 1);
        tpl.add_partition_offset(&cfg.topic, p, Offset::Offset(from))
            .map_err(|source| ReaderError::Partition {
                op: "finding the end",
                topic: cfg.topic.clone(),
                partition: p,
                source: source.into(),
            })?;
        ends.insert(p, low.max(high));
    }
    if ends.is_empty() {
        return Ok(ends);
    }
    consumer.assign(&tpl).map_err(|source| ReaderError::Topic {
        op: "assigning the partitions",
        topic: cfg.topic.clone(),
        source: source.into(),
    })?;
    let mut open: std::collections::BTreeSet<i32> = ends.keys().copied().collect();
    let deadline = Instant::now() + cfg.timeout;
    while !open.is_empty() {
        if Instant::now() > deadline {
            return Err(ReaderError::Timeout {
                what: "finding the end",
                topic: cfg.topic.clone(),
                partitions: open.into_iter().collect(),
                timeout: cfg.timeout,
            });
        }
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Ok(m)) => {
                if let Some(end) = ends.get_mut(&m.partition()) {
                    *end = (*end).max(m.offset() + 1);
                }
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            Some(Err(source)) => {
                return Err(ReaderError::Topic {
                    op: "finding the end",
                    topic: cfg.topic.clone(),
                    source: source.into(),
                })
            }
        }
    }
    Ok(ends)
}
