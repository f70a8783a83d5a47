//! Shared test bed: a real broker, topics, worker configs, and helpers to
//! read committed offsets back from the broker.
#![allow(dead_code)]

pub mod eos;

use std::future::Future;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rebound_testkit::{create_topic, produce_records, unique_name, Brokers, TestRecord};
use rebound_worker::{WorkerBuilder, WorkerConfig};

pub struct Bed {
    pub brokers: Brokers,
    pub topic: String,
    pub partitions: i32,
}

impl Bed {
    pub async fn new(partitions: i32) -> Bed {
        Bed::on(Brokers::start().expect("start broker"), partitions).await
    }

    /// A bed on Apache Kafka itself, for tests that need its semantics.
    pub async fn kafka(partitions: i32) -> Bed {
        Bed::on(Brokers::kafka().expect("start Apache Kafka"), partitions).await
    }

    pub async fn on(brokers: Brokers, partitions: i32) -> Bed {
        let topic = unique_name("t");
        create_topic(brokers.bootstrap(), &topic, partitions)
            .await
            .expect("create topic");
        Bed {
            brokers,
            topic,
            partitions,
        }
    }

    pub fn bootstrap(&self) -> &str {
        self.brokers.bootstrap()
    }

    /// A worker config with test-friendly timings.
    pub fn config(&self, group: &str) -> WorkerBuilder {
        WorkerConfig::builder()
            .with_brokers(self.bootstrap())
            .with_group(group)
            .with_topic(&self.topic)
            .with_session_timeout(Duration::from_millis(
                rebound_testkit::FAST_SESSION_TIMEOUT_MS as u64,
            ))
            .with_commit_interval(Duration::from_millis(200))
            .with_drain_timeout(Duration::from_secs(5))
            .with_connect_timeout(Duration::from_secs(10))
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
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        for p in 0..self.partitions {
            tpl.add_partition(&self.topic, p);
        }
        let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
        (0..self.partitions)
            .map(|p| {
                let e = got.find_partition(&self.topic, p).unwrap();
                let off = match e.offset() {
                    Offset::Offset(o) => Some(o),
                    _ => None,
                };
                (off, e.metadata().to_string())
            })
            .collect()
    }
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The record index stored in the value by [`Bed::produce`].
pub fn index_of(rec: &rebound_worker::Record) -> usize {
    rec.value_str().unwrap().parse().unwrap()
}
