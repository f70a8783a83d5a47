//! The worker's side of the test bed: the test kit's topic bed with worker
//! configs of test-friendly timings.
#![allow(dead_code)]

pub mod eos;

use std::time::Duration;

pub use rebound_testkit::{eventually as wait_until, TopicBed as Bed};
use rebound_worker::{WorkerBuilder, WorkerConfig};

/// Worker configs on a [`Bed`]'s broker and topic.
pub trait WorkerBed {
    /// A worker config with test-friendly timings.
    fn config(&self, group: &str) -> WorkerBuilder;
}

impl WorkerBed for Bed {
    fn config(&self, group: &str) -> WorkerBuilder {
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
}

/// The record index stored in the value by [`Bed::produce`].
pub fn index_of(rec: &rebound_worker::Record) -> usize {
    rec.value_str().unwrap().parse().unwrap()
}
