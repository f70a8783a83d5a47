//! Shared test bed: a real broker (tansu over TCP, or `REBOUND_TEST_BROKERS`),
//! a fresh topic, and a reader that waits for an expected record count.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use rebound_testkit::{create_topic, read_all, unique_name, Brokers, ReadRecord};

pub mod order;

pub struct Bed {
    pub brokers: Brokers,
    pub topic: String,
    pub partitions: i32,
}

impl Bed {
    pub async fn new(partitions: i32) -> Bed {
        let brokers = Brokers::start().expect("start broker");
        let topic = unique_name("p");
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

    /// Every record of the topic, once `want` have arrived (tansu's high
    /// watermarks cannot be trusted to mark the end, so read until the
    /// count is reached or 30 s pass).
    pub async fn read(&self, want: usize) -> Vec<ReadRecord> {
        read_topic(self.bootstrap(), &self.topic, want).await
    }
}

/// Every record of `topic` once `want` have arrived, sorted by partition and offset.
pub async fn read_topic(bootstrap: &str, topic: &str, want: usize) -> Vec<ReadRecord> {
    let (b, t) = (bootstrap.to_string(), topic.to_string());
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = read_all(&b, &t).expect("read topic");
            if got.len() >= want || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
    .await
    .unwrap()
}

/// The values of `records` as UTF-8 strings.
pub fn values(records: &[ReadRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap_or_default()).unwrap())
        .collect()
}
