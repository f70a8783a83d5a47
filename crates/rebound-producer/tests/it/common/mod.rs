//! The producer tests' fixtures: the test kit's topic bed, an order type
//! with validation, and a TCP proxy that can cut a connection.
#![allow(dead_code)]

pub use rebound_testkit::{read_at_least as read_topic, TopicBed as Bed};

pub mod order;
pub mod proxy;

use std::time::{Duration, Instant};

use rebound_testkit::{unique_name, ReadRecord};

/// The values of `records` as UTF-8 strings.
pub fn values(records: &[ReadRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap_or_default()).unwrap())
        .collect()
}

/// A consumer with `isolation.level` assigned to every partition of
/// `topic` from the beginning (no group joined, nothing committed), and the
/// partitions. With `eof`, it reports the end of each partition.
fn from_beginning(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
    eof: bool,
) -> (rdkafka::consumer::BaseConsumer, Vec<i32>) {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", eof.to_string())
        .set("isolation.level", isolation)
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition_offset(topic, *p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    (consumer, parts)
}

/// Values of partition 0.. of `topic` read with `isolation.level`
/// (`read_committed` or `read_uncommitted`): polls until `want` have arrived
/// (30 s at most), then 500 ms more to catch anything extra.
pub async fn read_values(
    bootstrap: &str,
    topic: &str,
    isolation: &str,
    want: usize,
) -> Vec<String> {
    use rdkafka::message::Message;
    let (b, t, iso) = (
        bootstrap.to_string(),
        topic.to_string(),
        isolation.to_string(),
    );
    tokio::task::spawn_blocking(move || {
        let (consumer, _) = from_beginning(&b, &t, &iso, false);
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut grace: Option<Instant> = None;
        loop {
            if out.len() >= want && grace.is_none() {
                grace = Some(Instant::now() + Duration::from_millis(500));
            }
            if grace.is_some_and(|g| Instant::now() > g) || Instant::now() > deadline {
                return out;
            }
            if let Some(m) = consumer.poll(Duration::from_millis(50)) {
                let m = m.unwrap();
                out.push(String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap());
            }
        }
    })
    .await
    .unwrap()
}

/// Values of every partition of `topic` read with `isolation.level` from
/// the beginning until the broker reports the end of each partition (for
/// `read_committed`: the last stable offset). Fails after 30 s.
pub async fn read_to_end(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    use rdkafka::error::KafkaError;
    use rdkafka::message::Message;
    let (b, t, iso) = (
        bootstrap.to_string(),
        topic.to_string(),
        isolation.to_string(),
    );
    tokio::task::spawn_blocking(move || {
        let (consumer, parts) = from_beginning(&b, &t, &iso, true);
        let mut open: std::collections::BTreeSet<i32> = parts.into_iter().collect();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !open.is_empty() {
            assert!(Instant::now() < deadline, "no end of partitions {open:?}");
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => {
                    out.push(String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap())
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    open.remove(&p);
                }
                Some(Err(e)) => panic!("reading {t}: {e}"),
                None => {}
            }
        }
        out
    })
    .await
    .unwrap()
}
