//! The tooling readers against the real broker: a multi-partition topic
//! with keys, values, headers and known timestamps, read from the
//! beginning, an offset, a timestamp and the end; the end as of opening;
//! following; manual assignment committing nothing; a group member
//! committing what it acknowledged.
//!
//! [`group`] has the group member and read_committed tests.

mod group;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rebound_core::{Header, Record};
use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_testkit::{unique_name, TopicBed};
use rebound_worker::reader::{
    spans, GroupReader, PartitionReader, Polled, ReaderConfig, ReaderError, StartAt,
};

const PARTITIONS: i32 = 3;
/// Timestamps of the first wave: T0 + i.
const T0: i64 = 1_700_000_000_000;
/// Timestamps of the second wave: T1 + i.
const T1: i64 = T0 + 60_000;

/// The topic bed plus a producer whose sends share batches.
struct Bed {
    bed: TopicBed,
    producer: Producer,
}

impl std::ops::Deref for Bed {
    type Target = TopicBed;
    fn deref(&self) -> &TopicBed {
        &self.bed
    }
}

/// What a produced record should read back as.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Want {
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: String,
    value: String,
    headers: Vec<(String, String)>,
}

impl Bed {
    async fn new() -> Bed {
        let bed = TopicBed::new("reader", PARTITIONS).await;
        let producer = Producer::new(&ProducerConfig::new(bed.bootstrap())).expect("producer");
        Bed { bed, producer }
    }

    fn config(&self) -> ReaderConfig {
        ReaderConfig::new(self.bootstrap(), &self.topic).with_timeout(Duration::from_secs(20))
    }

    /// Sends `n` records at once (so they share batches): record `i` goes to
    /// partition `i % 3` with key `{tag}-k{i}`, value `{tag}-v{i}`, headers
    /// `wave={tag}` and `i={i}`, timestamp `ts + i`. Returns them as they
    /// should read back, by partition and offset.
    async fn wave(&self, tag: &str, n: usize, ts: i64) -> Vec<Want> {
        let recs: Vec<OutRecord> = (0..n)
            .map(|i| OutRecord {
                topic: self.topic.clone(),
                partition: Some(i as i32 % PARTITIONS),
                key: Some(format!("{tag}-k{i}").into_bytes()),
                value: Some(format!("{tag}-v{i}").into_bytes()),
                headers: vec![header("wave", tag), header("i", &i.to_string())],
                timestamp: Some(ts + i as i64),
            })
            .collect();
        let sends = recs.iter().map(|r| self.producer.send(r));
        let delivered = futures::future::join_all(sends).await;
        let mut out: Vec<Want> = recs
            .iter()
            .zip(delivered)
            .map(|(r, d)| {
                let d = d.expect("delivered");
                Want {
                    partition: d.partition,
                    offset: d.offset,
                    timestamp: r.timestamp.unwrap(),
                    key: String::from_utf8(r.key.clone().unwrap()).unwrap(),
                    value: String::from_utf8(r.value.clone().unwrap()).unwrap(),
                    headers: r
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.clone(),
                                String::from_utf8(h.value.clone().unwrap()).unwrap(),
                            )
                        })
                        .collect(),
                }
            })
            .collect();
        out.sort_by_key(|w| (w.partition, w.offset));
        out
    }
}

fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: Some(value.as_bytes().to_vec()),
    }
}

fn got(r: &Record) -> Want {
    Want {
        partition: r.partition,
        offset: r.offset,
        timestamp: r.timestamp.expect("timestamp"),
        key: r.key_str().expect("utf-8 key").to_string(),
        value: r.value_str().expect("utf-8 value").to_string(),
        headers: r
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.clone(),
                    String::from_utf8(h.value.clone().unwrap()).unwrap(),
                )
            })
            .collect(),
    }
}

/// Everything a reader yields until its end, checking per-partition order.
fn read(cfg: &ReaderConfig) -> Vec<Want> {
    let mut out: Vec<Want> = PartitionReader::open(cfg)
        .expect("open")
        .map(|r| got(&r.expect("record")))
        .collect();
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    for w in &out {
        let prev = last.insert(w.partition, w.offset);
        assert!(
            prev.is_none_or(|p| p < w.offset),
            "out of order in partition {}: {prev:?} then {}",
            w.partition,
            w.offset
        );
    }
    out.sort_by_key(|w| (w.partition, w.offset));
    out
}

/// Blocking reader work off the async test thread.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.expect("blocking task")
}

#[tokio::test]
async fn reads_from_the_beginning_an_offset_and_a_range_exactly() {
    let bed = Bed::new().await;
    let mut all = bed.wave("a", 30, T0).await;
    all.extend(bed.wave("b", 12, T1).await);
    all.sort_by_key(|w| (w.partition, w.offset));
    for p in 0..PARTITIONS {
        let offsets: Vec<i64> = all
            .iter()
            .filter(|w| w.partition == p)
            .map(|w| w.offset)
            .collect();
        assert_eq!(offsets, (0..14).collect::<Vec<i64>>(), "partition {p}");
    }

    let cfg = bed.config();
    let want = all.clone();
    assert_eq!(blocking(move || read(&cfg)).await, want);

    let cfg = bed.config().with_start(StartAt::Offset(9));
    let want: Vec<Want> = all.iter().filter(|w| w.offset >= 9).cloned().collect();
    assert_eq!(want.len(), 15);
    assert_eq!(blocking(move || read(&cfg)).await, want);

    let cfg = bed
        .config()
        .with_range(1, StartAt::Offset(3), Some(6))
        .with_partitions([2]);
    let want: Vec<Want> = all
        .iter()
        .filter(|w| (w.partition == 1 && (3..6).contains(&w.offset)) || w.partition == 2)
        .cloned()
        .collect();
    assert_eq!(blocking(move || read(&cfg)).await, want);

    // The spans are exact although the broker's watermarks may not be.
    let cfg = bed.config();
    let spans = blocking(move || spans(&cfg)).await.unwrap();
    assert_eq!(
        spans
            .iter()
            .map(|s| (s.partition, s.low, s.end))
            .collect::<Vec<_>>(),
        vec![(0, 0, 14), (1, 0, 14), (2, 0, 14)]
    );
}

#[tokio::test]
async fn reads_from_a_timestamp() {
    let bed = Bed::new().await;
    let first = bed.wave("a", 30, T0).await;
    let second = bed.wave("b", 12, T1).await;

    let cfg = bed.config().with_start(StartAt::Timestamp(T1));
    assert_eq!(blocking(move || read(&cfg)).await, second);

    // Inside the second wave: record i has time T1 + i.
    let cfg = bed.config().with_start(StartAt::Timestamp(T1 + 7));
    let want: Vec<Want> = second
        .iter()
        .filter(|w| w.timestamp >= T1 + 7)
        .cloned()
        .collect();
    assert_eq!(want.len(), 5);
    assert_eq!(blocking(move || read(&cfg)).await, want);

    // Inside the first wave, on one partition.
    let cfg = bed
        .config()
        .with_start(StartAt::Timestamp(T0 + 20))
        .with_partitions([0]);
    let mut want: Vec<Want> = first
        .iter()
        .chain(&second)
        .filter(|w| w.partition == 0 && w.timestamp >= T0 + 20)
        .cloned()
        .collect();
    want.sort_by_key(|w| w.offset);
    assert_eq!(want.first().map(|w| w.offset), Some(7));
    assert_eq!(blocking(move || read(&cfg)).await, want);

    // After every record: nothing. Before every record: everything.
    let cfg = bed.config().with_start(StartAt::Timestamp(T1 + 1_000_000));
    assert_eq!(blocking(move || read(&cfg)).await, vec![]);
    let cfg = bed.config().with_start(StartAt::Timestamp(T0 - 1));
    assert_eq!(blocking(move || read(&cfg)).await.len(), 42);
}

#[tokio::test]
async fn stops_at_the_end_as_of_opening_and_follows_from_the_end() {
    let bed = Bed::new().await;
    let first = bed.wave("a", 30, T0).await;

    // Opened before the second wave: reads exactly the first.
    let cfg = bed.config();
    let reader = blocking(move || PartitionReader::open(&cfg).unwrap()).await;
    assert_eq!(reader.remaining(), 30);
    let second = bed.wave("b", 12, T1).await;
    let got_first = blocking(move || {
        let mut v: Vec<Want> = reader.map(|r| got(&r.unwrap())).collect();
        v.sort_by_key(|w| (w.partition, w.offset));
        v
    })
    .await;
    assert_eq!(got_first, first);

    // From the end, following: exactly what is written after opening.
    let cfg = bed.config().with_start(StartAt::End).with_follow(true);
    let mut reader = blocking(move || PartitionReader::open(&cfg).unwrap()).await;
    assert_eq!(reader.starts(), BTreeMap::from([(0, 14), (1, 14), (2, 14)]));
    let third = bed.wave("c", 9, T1 + 100).await;
    let got_third = blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut v = Vec::new();
        while v.len() < 9 {
            assert!(Instant::now() < deadline, "only {} records", v.len());
            match reader.poll(Duration::from_millis(200)).unwrap() {
                Polled::Record(r) => v.push(got(&r)),
                Polled::Idle => {}
                Polled::End => panic!("a following reader never ends"),
            }
        }
        // Nothing else arrives.
        assert_eq!(
            reader.poll(Duration::from_millis(500)).unwrap(),
            Polled::Idle
        );
        v.sort_by_key(|w| (w.partition, w.offset));
        v
    })
    .await;
    assert_eq!(got_third, third);
    assert!(second.iter().all(|w| w.offset < 14));

    // From the end without following: nothing, at once.
    let cfg = bed.config().with_start(StartAt::End);
    assert_eq!(blocking(move || read(&cfg)).await, vec![]);
}

#[tokio::test]
async fn manual_assignment_commits_nothing() {
    let bed = Bed::new().await;
    bed.wave("a", 30, T0).await;
    let group = unique_name("tool-group");
    let client: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bed.bootstrap())
        .set("group.id", &group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&bed.topic, 0, Offset::Offset(2))
        .unwrap();
    tpl.add_partition_offset(&bed.topic, 1, Offset::Offset(5))
        .unwrap();
    client.commit(&tpl, CommitMode::Sync).unwrap();
    let committed = |client: &BaseConsumer| {
        let mut ask = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            ask.add_partition(&bed.topic, p);
        }
        client
            .committed_offsets(ask, Duration::from_secs(10))
            .unwrap()
            .elements()
            .iter()
            .map(|e| (e.partition(), e.offset()))
            .collect::<Vec<_>>()
    };
    let before = committed(&client);
    assert_eq!(
        before,
        vec![
            (0, Offset::Offset(2)),
            (1, Offset::Offset(5)),
            (2, Offset::Invalid)
        ]
    );

    // Under that very group id, reading everything commits nothing.
    let cfg = bed.config().with_client_config("group.id", &group);
    assert_eq!(blocking(move || read(&cfg)).await.len(), 30);
    assert_eq!(committed(&client), before);
}

#[tokio::test]
async fn bad_requests_name_the_topic_and_partition() {
    let bed = Bed::new().await;
    bed.wave("a", 3, T0).await;
    let cfg = bed.config().with_partitions([7]);
    let err = blocking(move || PartitionReader::open(&cfg).unwrap_err()).await;
    assert!(matches!(
        err,
        ReaderError::UnknownPartition {
            partition: 7,
            count: 3,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        format!("topic {} has no partition 7 (it has 3)", bed.topic)
    );

    let cfg =
        ReaderConfig::new(bed.bootstrap(), "no-such-topic").with_timeout(Duration::from_secs(5));
    let err = blocking(move || PartitionReader::open(&cfg).unwrap_err()).await;
    assert_eq!(err.to_string(), "topic no-such-topic does not exist");

    let cfg = bed.config().with_range(0, StartAt::Offset(-5), None);
    let err = blocking(move || PartitionReader::open(&cfg).unwrap_err()).await;
    assert!(err.to_string().contains("offset -5 of"), "{err}");
    assert!(err.to_string().contains("partition 0 was deleted"), "{err}");

    let cfg = bed.config().with_partitions([0]);
    let err = blocking(move || GroupReader::subscribe(&cfg, "g").unwrap_err()).await;
    assert!(matches!(err, ReaderError::Config { .. }), "{err}");
}
