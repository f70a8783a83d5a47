//! Typed worker configuration, validated once by [`WorkerBuilder::build`].

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::error::ConfigError;
use crate::metrics::Metrics;

/// How records of a partition may run concurrently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ordering {
    /// One record per partition at a time, in offset order.
    Partition,
    /// Records with the same key strictly in offset order, different keys
    /// concurrently. Keyless records form one lane per partition: they run
    /// one at a time, in offset order, concurrently with keyed records.
    Key,
    /// Any record may run at any time, bounded only by the limits.
    Unordered,
    /// The handler receives a partition's records as a batch; one batch per
    /// partition at a time, batches in offset order.
    Batch,
}

impl Ordering {
    /// Parses `partition`, `key`, `unordered` or `batch`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "partition" => Some(Ordering::Partition),
            "key" => Some(Ordering::Key),
            "unordered" => Some(Ordering::Unordered),
            "batch" => Some(Ordering::Batch),
            _ => None,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::Partition => "partition",
            Ordering::Key => "key",
            Ordering::Unordered => "unordered",
            Ordering::Batch => "batch",
        }
    }
}

/// When offsets are committed relative to processing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Commit only what is finished (default). A crash may redo records, never lose them.
    AtLeastOnce,
    /// Commit each fetched batch before handling it. A crash may lose records,
    /// never redo them.
    AtMostOnce,
}

/// Default byte budget for fetched, unfinished records ([`WorkerBuilder::with_max_buffered_bytes`]).
pub const DEFAULT_MAX_BUFFERED_BYTES: usize = 64 << 20;

/// Validated worker configuration; build it with [`WorkerConfig::builder`].
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub(crate) brokers: String,
    pub(crate) group: String,
    pub(crate) topics: Vec<String>,
    pub(crate) ordering: Ordering,
    pub(crate) delivery: Delivery,
    pub(crate) max_in_flight: usize,
    pub(crate) max_in_flight_per_partition: usize,
    pub(crate) max_buffered_per_partition: usize,
    pub(crate) max_buffered_bytes: usize,
    pub(crate) max_batch_size: usize,
    pub(crate) poll_batch: usize,
    pub(crate) commit_interval: Duration,
    pub(crate) drain_timeout: Duration,
    pub(crate) session_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) metadata_budget: usize,
    pub(crate) client_config: rebound_core::ClientProperties,
    pub(crate) delayed_topics: Vec<String>,
    pub(crate) pause_signal: Option<watch::Receiver<bool>>,
    pub(crate) metrics: Option<Arc<Metrics>>,
}

impl WorkerConfig {
    /// A builder with defaults: key ordering, at-least-once, 100 in flight.
    pub fn builder() -> WorkerBuilder {
        WorkerBuilder::default()
    }

    /// Bootstrap servers.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }
    /// Consumer group id.
    pub fn group(&self) -> &str {
        &self.group
    }
    /// Subscribed topics.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }
    /// Ordering mode.
    pub fn ordering(&self) -> Ordering {
        self.ordering
    }
    /// Delivery mode.
    pub fn delivery(&self) -> Delivery {
        self.delivery
    }
}

/// Builder for [`WorkerConfig`]; `build` names the first invalid field.
#[derive(Debug, Clone)]
pub struct WorkerBuilder {
    brokers: Option<String>,
    group: Option<String>,
    topics: Vec<String>,
    ordering: Ordering,
    delivery: Delivery,
    max_in_flight: usize,
    max_in_flight_per_partition: Option<usize>,
    max_buffered_per_partition: usize,
    max_buffered_bytes: usize,
    max_batch_size: usize,
    poll_batch: usize,
    commit_interval: Duration,
    drain_timeout: Duration,
    session_timeout: Duration,
    connect_timeout: Duration,
    metadata_budget: usize,
    client_config: rebound_core::ClientProperties,
    delayed_topics: Vec<String>,
    pause_signal: Option<watch::Receiver<bool>>,
    metrics: Option<Arc<Metrics>>,
}

impl Default for WorkerBuilder {
    fn default() -> Self {
        WorkerBuilder {
            brokers: None,
            group: None,
            topics: Vec::new(),
            ordering: Ordering::Key,
            delivery: Delivery::AtLeastOnce,
            max_in_flight: 100,
            max_in_flight_per_partition: None,
            max_buffered_per_partition: 10_000,
            max_buffered_bytes: DEFAULT_MAX_BUFFERED_BYTES,
            max_batch_size: 500,
            poll_batch: 1024,
            commit_interval: Duration::from_secs(1),
            drain_timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
            metadata_budget: crate::tracker::DEFAULT_METADATA_BUDGET,
            client_config: rebound_core::ClientProperties::default(),
            delayed_topics: Vec::new(),
            pause_signal: None,
            metrics: None,
        }
    }
}

macro_rules! setter {
    ($(#[$m:meta])* $name:ident, $field:ident: $ty:ty) => {
        $(#[$m])*
        pub fn $name(mut self, $field: $ty) -> Self {
            self.$field = $field;
            self
        }
    };
}
pub(crate) use setter;

impl WorkerBuilder {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub fn with_brokers(mut self, brokers: impl Into<String>) -> Self {
        self.brokers = Some(brokers.into());
        self
    }
    /// Consumer group id.
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }
    /// Adds a topic to subscribe to.
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }
    /// Cap on records in flight in one partition (default: `max_in_flight`).
    pub fn with_max_in_flight_per_partition(mut self, n: usize) -> Self {
        self.max_in_flight_per_partition = Some(n);
        self
    }
    /// Subscribes to a retry-tier topic: its records are held (not started,
    /// not committed) until the time in their `rebound.due` header, while
    /// fetching of that partition pauses if too many wait.
    pub fn with_delayed_topic(mut self, topic: impl Into<String>) -> Self {
        self.delayed_topics.push(topic.into());
        self
    }
    /// While the signal is `true` (e.g. [`crate::Breaker::pause_signal`]),
    /// no record starts and every partition is paused.
    pub fn with_pause_signal(mut self, signal: watch::Receiver<bool>) -> Self {
        self.pause_signal = Some(signal);
        self
    }
    /// Uses these metrics (share them with layers that count into them).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
    /// Sets any librdkafka consumer property (overrides the worker's choice).
    pub fn with_client_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.client_config.insert(key.into(), value.into());
        self
    }
    setter!(
        /// Ordering mode.
        with_ordering, ordering: Ordering);
    setter!(
        /// Delivery mode.
        with_delivery, delivery: Delivery);
    setter!(
        /// Records in flight across all partitions.
        with_max_in_flight, max_in_flight: usize);
    setter!(
        /// Fetched-but-not-started records held per partition before it is paused.
        with_max_buffered_per_partition, max_buffered_per_partition: usize);
    setter!(
        /// Bytes of records fetched and not yet finished, across all
        /// partitions (queued, waiting in a retry tier or in flight), before
        /// fetching pauses everywhere; it resumes at half. librdkafka's own
        /// prefetch queue is held to half of it on top
        /// (`queued.max.messages.kbytes`, unless set through
        /// `with_client_config`). Default 64 MiB.
        with_max_buffered_bytes, max_buffered_bytes: usize);
    setter!(
        /// Largest batch handed to a batch handler.
        with_max_batch_size, max_batch_size: usize);
    setter!(
        /// How often finished offsets are committed.
        with_commit_interval, commit_interval: Duration);
    setter!(
        /// How long revoke and shutdown wait for in-flight records.
        with_drain_timeout, drain_timeout: Duration);
    setter!(
        /// Consumer group session timeout.
        with_session_timeout, session_timeout: Duration);
    setter!(
        /// How long `start` waits for the brokers before failing.
        with_connect_timeout, connect_timeout: Duration);
    setter!(
        /// Byte budget for finished-above-watermark commit metadata (0 disables it).
        with_metadata_budget, metadata_budget: usize);

    /// Validates and returns the configuration.
    pub fn build(self) -> Result<WorkerConfig, ConfigError> {
        let brokers = self
            .brokers
            .filter(|b| !b.trim().is_empty())
            .ok_or(ConfigError::Missing("brokers"))?;
        let group = self
            .group
            .filter(|g| !g.trim().is_empty())
            .ok_or(ConfigError::Missing("group"))?;
        if self.topics.is_empty() {
            return Err(ConfigError::Missing("topic"));
        }
        let mut topics = self.topics;
        for t in &self.delayed_topics {
            if !topics.contains(t) {
                topics.push(t.clone());
            }
        }
        if let Some(t) = topics.iter().find(|t| !valid_topic(t)) {
            return Err(ConfigError::Invalid {
                field: "topic",
                reason: format!("{t:?} is not a valid topic name (1-249 chars of [a-zA-Z0-9._-])"),
            });
        }
        let positive = |field: &'static str, v: usize| {
            if v == 0 {
                Err(ConfigError::Invalid {
                    field,
                    reason: "must be at least 1".into(),
                })
            } else {
                Ok(v)
            }
        };
        positive("max_in_flight", self.max_in_flight)?;
        let per_part = positive(
            "max_in_flight_per_partition",
            self.max_in_flight_per_partition
                .unwrap_or(self.max_in_flight),
        )?;
        positive(
            "max_buffered_per_partition",
            self.max_buffered_per_partition,
        )?;
        positive("max_buffered_bytes", self.max_buffered_bytes)?;
        positive("max_batch_size", self.max_batch_size)?;
        if self.commit_interval.is_zero() {
            return Err(ConfigError::Invalid {
                field: "commit_interval",
                reason: "must be greater than zero".into(),
            });
        }
        Ok(WorkerConfig {
            brokers,
            group,
            topics,
            ordering: self.ordering,
            delivery: self.delivery,
            max_in_flight: self.max_in_flight,
            max_in_flight_per_partition: per_part,
            max_buffered_per_partition: self.max_buffered_per_partition,
            max_buffered_bytes: self.max_buffered_bytes,
            max_batch_size: self.max_batch_size,
            poll_batch: self.poll_batch,
            commit_interval: self.commit_interval,
            drain_timeout: self.drain_timeout,
            session_timeout: self.session_timeout,
            connect_timeout: self.connect_timeout,
            metadata_budget: self.metadata_budget,
            client_config: self.client_config,
            delayed_topics: self.delayed_topics,
            pause_signal: self.pause_signal,
            metrics: self.metrics,
        })
    }
}

/// Kafka's topic name rule.
pub fn valid_topic(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 249
        && t != "."
        && t != ".."
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> WorkerBuilder {
        WorkerConfig::builder()
            .with_brokers("127.0.0.1:9092")
            .with_group("g")
            .with_topic("t")
    }

    #[test]
    fn defaults_build() {
        let c = base().build().unwrap();
        assert_eq!(c.max_in_flight_per_partition, 100);
        assert_eq!(c.ordering, Ordering::Key);
    }

    #[test]
    fn errors_name_the_field() {
        let e = base().with_max_in_flight(0).build().unwrap_err();
        assert!(e.to_string().contains("max_in_flight"), "{e}");
        let e = WorkerConfig::builder()
            .with_brokers("b")
            .with_group("g")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("topic"), "{e}");
        let e = base().with_topic("bad topic").build().unwrap_err();
        assert!(e.to_string().contains("topic"), "{e}");
        let e = WorkerConfig::builder().with_topic("t").build().unwrap_err();
        assert!(e.to_string().contains("brokers"), "{e}");
    }

    #[test]
    fn ordering_names_round_trip() {
        for o in [
            Ordering::Partition,
            Ordering::Key,
            Ordering::Unordered,
            Ordering::Batch,
        ] {
            assert_eq!(Ordering::parse(o.as_str()), Some(o));
        }
        assert_eq!(Ordering::parse("random"), None);
    }
}
