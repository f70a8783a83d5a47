//! Topic creation and bulk produce helpers.

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseRecord, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientContext;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::{Error, Result};

/// Session timeout tests give consumers: the first group join on tansu takes
/// about half of it.
pub const FAST_SESSION_TIMEOUT_MS: u32 = 6000;

/// Creates `topic` with `partitions` partitions (replication 1). An existing
/// topic is not an error.
/// Returns once every partition has a leader: Apache Kafka answers
/// `NotLeaderOrFollower` to reads of a partition created a moment ago.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    create_topic_configured(bootstrap, topic, partitions, &[]).await
}

/// [`create_topic`] with topic configs, e.g. `("max.message.bytes", "10000")`.
pub async fn create_topic_configured(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) -> Result<()> {
    let spec = rebound_producer::admin::TopicSpec {
        name: topic.to_string(),
        partitions,
        replication: 1,
        configs: (configs.iter())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    rebound_producer::admin::ensure_topic_with(bootstrap, &[], &spec)
        .await
        .map_err(|e| Error::Kafka {
            topic: e.topic,
            source: e.source,
        })?;
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || wait_for_leaders(&b, &t, partitions))
        .await
        .expect("leader wait thread")
}

fn wait_for_leaders(bootstrap: &str, topic: &str, partitions: i32) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let kerr = |source| Error::Kafka {
        topic: topic.to_string(),
        source,
    };
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(kerr)?;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let md = client
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .map_err(kerr)?;
        let led = md
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .map_or(0, |t| {
                t.partitions()
                    .iter()
                    .filter(|p| p.leader() >= 0 && p.error().is_none())
                    .count()
            });
        if led >= partitions as usize || std::time::Instant::now() > deadline {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One record to produce in a test.
#[derive(Debug, Clone, Default)]
pub struct TestRecord {
    /// Explicit partition, or `None` for the key hash partitioner.
    pub partition: Option<i32>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value.
    pub value: Vec<u8>,
}

/// Produces every record to `topic` (idempotent producer, acks=all) and waits
/// until all are acknowledged. Records to the same partition keep their order.
pub fn produce_records(
    bootstrap: &str,
    topic: &str,
    records: impl IntoIterator<Item = TestRecord>,
) -> Result<usize> {
    let kerr = |source| Error::Kafka {
        topic: topic.to_string(),
        source,
    };
    let producer: ThreadedProducer<CountingContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .create_with_context(CountingContext::default())
        .map_err(kerr)?;
    let mut n = 0;
    for rec in records {
        let mut base = BaseRecord::<Vec<u8>, Vec<u8>>::to(topic).payload(&rec.value);
        if let Some(k) = &rec.key {
            base = base.key(k);
        }
        if let Some(p) = rec.partition {
            base = base.partition(p);
        }
        let mut base = base;
        loop {
            match producer.send(base) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), b)) => {
                    base = b;
                    producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(kerr(e)),
            }
        }
        n += 1;
    }
    producer.flush(Duration::from_secs(60)).map_err(kerr)?;
    let ctx = producer.context();
    if ctx.failed.load(Ordering::SeqCst) > 0 {
        let first = ctx.first_error.lock().expect("lock").clone();
        return Err(kerr(first.unwrap_or(KafkaError::Canceled)));
    }
    Ok(n)
}

/// Counts failed deliveries so a test never believes a lost record was sent.
#[derive(Default)]
struct CountingContext {
    failed: AtomicUsize,
    first_error: Mutex<Option<KafkaError>>,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failed.fetch_add(1, Ordering::SeqCst);
            self.first_error
                .lock()
                .expect("lock")
                .get_or_insert(e.clone());
        }
    }
}

/// Whether the broker returns the metadata committed with an offset
/// (Apache Kafka does; tansu 0.6 with memory storage returns it empty).
/// Commits a probe offset for a throwaway group on `topic` partition 0.
pub fn broker_keeps_commit_metadata(bootstrap: &str, topic: &str) -> Result<bool> {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    let kerr = |source| Error::Kafka {
        topic: topic.to_string(),
        source,
    };
    let group = crate::unique_name("metadata-probe");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", &group)
        .create()
        .map_err(kerr)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0)
        .set_offset(Offset::Offset(0))
        .map_err(kerr)?;
    tpl.elements_for_topic(topic)[0].set_metadata("probe");
    consumer.commit(&tpl, CommitMode::Sync).map_err(kerr)?;
    let mut ask = TopicPartitionList::new();
    ask.add_partition(topic, 0);
    let got = consumer
        .committed_offsets(ask, Duration::from_secs(10))
        .map_err(kerr)?;
    let kept = got
        .find_partition(topic, 0)
        .is_some_and(|e| e.metadata() == "probe");
    Ok(kept)
}

/// A record read back by [`read_all`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl ReadRecord {
    /// The first header called `name` as UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

/// Reads every record of `topic` from the beginning to the current end of
/// each partition as a `read_committed` reader sees it (no consumer group,
/// nothing committed).
pub fn read_all(bootstrap: &str, topic: &str) -> Result<Vec<ReadRecord>> {
    read_all_as(bootstrap, topic, "read_committed")
}

/// Like [`read_all`], as a `read_uncommitted` reader: aborted transactional
/// records included.
pub fn read_all_uncommitted(bootstrap: &str, topic: &str) -> Result<Vec<ReadRecord>> {
    read_all_as(bootstrap, topic, "read_uncommitted")
}

fn read_all_as(bootstrap: &str, topic: &str, isolation: &str) -> Result<Vec<ReadRecord>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::{Headers, Message};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    let kerr = |source| Error::Kafka {
        topic: topic.to_string(),
        source,
    };
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", crate::unique_name("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        // Transaction markers take offsets no message has: the last
        // message of a transactional partition is below the watermark, so
        // the end is also reached when the consumer reports it.
        .set("enable.partition.eof", "true")
        .create()
        .map_err(kerr)?;
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(kerr)?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut tpl = TopicPartitionList::new();
    let mut ends = std::collections::HashMap::new();
    for p in &parts {
        let (low, high) = consumer
            .fetch_watermarks(topic, *p, Duration::from_secs(10))
            .map_err(kerr)?;
        if high > low {
            tpl.add_partition_offset(topic, *p, Offset::Offset(low))
                .map_err(kerr)?;
            ends.insert(*p, high);
        }
    }
    let mut out = Vec::new();
    if ends.is_empty() {
        return Ok(out);
    }
    consumer.assign(&tpl).map_err(kerr)?;
    // tansu 0.6 reports the high watermark of a multi-record batch as its
    // base offset + 1, so reaching the watermark is not the end: keep
    // reading until nothing more arrives for a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut reached = std::collections::HashSet::new();
    let mut last_message = std::time::Instant::now();
    loop {
        if std::time::Instant::now() > deadline {
            return Err(kerr(KafkaError::Canceled));
        }
        if reached.len() == ends.len() && last_message.elapsed() > Duration::from_millis(300) {
            break;
        }
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(m)) => {
                let headers = m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(ReadRecord {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(<[u8]>::to_vec),
                    value: m.payload().map(<[u8]>::to_vec),
                    headers,
                });
                if m.offset() + 1 >= ends[&m.partition()] {
                    reached.insert(m.partition());
                }
                last_message = std::time::Instant::now();
            }
            Some(Err(KafkaError::PartitionEOF(p))) => {
                reached.insert(p);
            }
            Some(Err(e)) => return Err(kerr(e)),
            None => {}
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    Ok(out)
}
