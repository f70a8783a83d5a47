//! The one topic bed (a broker and a fresh topic) and the one
//! [`eventually`] every test waits with.

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::{
    create_topic, produce_records, read_all, unique_name, Brokers, ReadRecord, TestRecord,
};

/// A broker (its own, unless given one) and a fresh topic on it.
#[derive(Debug)]
pub struct TopicBed {
    /// The broker; dropping the bed stops it when the bed started it.
    pub brokers: Brokers,
    /// The topic, named `<prefix>-<unique>`.
    pub topic: String,
    /// Its partition count.
    pub partitions: i32,
}

impl TopicBed {
    /// A broker of the suite's kind ([`Brokers::start`]) with a new topic.
    pub async fn new(prefix: &str, partitions: i32) -> TopicBed {
        TopicBed::on(Brokers::start().expect("start broker"), prefix, partitions).await
    }

    /// Apache Kafka itself, for tests that need its semantics.
    pub async fn kafka(prefix: &str, partitions: i32) -> TopicBed {
        TopicBed::on(
            Brokers::kafka().expect("start Apache Kafka"),
            prefix,
            partitions,
        )
        .await
    }

    /// A new topic on `brokers`.
    pub async fn on(brokers: Brokers, prefix: &str, partitions: i32) -> TopicBed {
        let topic = unique_name(prefix);
        create_topic(brokers.bootstrap(), &topic, partitions)
            .await
            .expect("create topic");
        TopicBed {
            brokers,
            topic,
            partitions,
        }
    }

    /// The bootstrap address.
    pub fn bootstrap(&self) -> &str {
        self.brokers.bootstrap()
    }

    /// Creates another topic on the same broker; returns its name.
    pub async fn another_topic(&self, name: &str, partitions: i32) -> String {
        create_topic(self.bootstrap(), name, partitions)
            .await
            .expect("create topic");
        name.to_string()
    }

    /// Produces `n` records; record `i` has key `key_of(i)` and value `i`.
    pub fn produce(&self, n: usize, key_of: impl Fn(usize) -> Option<String>) {
        let recs = (0..n).map(|i| TestRecord {
            partition: None,
            key: key_of(i).map(String::into_bytes),
            value: i.to_string().into_bytes(),
        });
        assert_eq!(
            produce_records(self.bootstrap(), &self.topic, recs).unwrap(),
            n
        );
    }

    /// Produces records with explicit partitions: `(partition, key, value)`.
    pub fn produce_to(&self, recs: Vec<(i32, Option<String>, String)>) {
        let n = recs.len();
        let recs = recs.into_iter().map(|(p, k, v)| TestRecord {
            partition: Some(p),
            key: k.map(String::into_bytes),
            value: v.into_bytes(),
        });
        assert_eq!(
            produce_records(self.bootstrap(), &self.topic, recs).unwrap(),
            n
        );
    }

    /// Every record of the topic now, by partition and offset.
    pub fn read(&self) -> Vec<ReadRecord> {
        read_all(self.bootstrap(), &self.topic).expect("read topic")
    }

    /// Every record of the topic once at least `want` are there, or after
    /// 30 s whatever is (tansu's high watermarks cannot be trusted to mark
    /// the end, so the count decides).
    pub async fn read_at_least(&self, want: usize) -> Vec<ReadRecord> {
        read_at_least(self.bootstrap(), &self.topic, want).await
    }

    /// The sum of `group`'s committed offsets over the partitions (none
    /// committed counts as 0): equals the record count once it covers a
    /// topic whose partitions start at 0.
    pub fn committed_total(&self, group: &str) -> i64 {
        self.committed(group)
            .iter()
            .map(|(o, _)| o.unwrap_or(0))
            .sum()
    }

    /// Committed offset and metadata of each partition for `group`.
    pub fn committed(&self, group: &str) -> Vec<(Option<i64>, String)> {
        let c: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", group)
            .create()
            .expect("consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            tpl.add_partition(&self.topic, p);
        }
        let got = c
            .committed_offsets(tpl, Duration::from_secs(10))
            .expect("committed offsets");
        (0..self.partitions)
            .map(|p| {
                let e = got.find_partition(&self.topic, p).expect("asked partition");
                let off = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                (off, e.metadata().to_string())
            })
            .collect()
    }
}

/// Every record of `topic` once at least `want` are there (or after 30 s),
/// by partition and offset.
pub async fn read_at_least(bootstrap: &str, topic: &str, want: usize) -> Vec<ReadRecord> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (b, t) = (bootstrap.to_string(), topic.to_string());
        let got = tokio::task::spawn_blocking(move || read_all(&b, &t).expect("read topic"))
            .await
            .expect("reader thread");
        if got.len() >= want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Polls `check` every 20 ms until it holds; panics naming `what` after
/// `timeout`.
pub async fn eventually<F, Fut>(timeout: Duration, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    assert!(
        eventually_or(timeout, check).await,
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// Like [`eventually`], returning whether `check` held in time instead of
/// panicking.
pub async fn eventually_or<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
