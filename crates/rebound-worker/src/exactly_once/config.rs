//! Typed configuration of an exactly-once pipeline, validated once by
//! [`PipelineBuilder::build`].

use std::sync::Arc;
use std::time::Duration;

use rebound_core::Backoff;

use super::observer::CommitObserver;
use crate::config::{setter, valid_topic, Ordering};
use crate::error::ConfigError;
use crate::layers::TopicNames;

/// Validated pipeline configuration; build it with [`PipelineConfig::builder`].
#[derive(Clone)]
pub struct PipelineConfig {
    pub(crate) brokers: String,
    pub(crate) group: String,
    pub(crate) topics: Vec<String>,
    pub(crate) transactional_id: String,
    pub(crate) ordering: Ordering,
    pub(crate) max_batch_size: usize,
    pub(crate) linger: Duration,
    pub(crate) max_in_flight: usize,
    pub(crate) retry: Backoff,
    pub(crate) dead_letter: Option<TopicNames>,
    pub(crate) session_timeout: Duration,
    pub(crate) transaction_timeout: Duration,
    pub(crate) client_config: rebound_core::ClientProperties,
    pub(crate) observer: Option<Arc<dyn CommitObserver>>,
}

impl std::fmt::Debug for PipelineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PipelineConfig")
            .field("brokers", &self.brokers)
            .field("group", &self.group)
            .field("topics", &self.topics)
            .field("transactional_id", &self.transactional_id)
            .field("ordering", &self.ordering)
            .field("max_batch_size", &self.max_batch_size)
            .field("linger", &self.linger)
            .finish_non_exhaustive()
    }
}

impl PipelineConfig {
    /// A builder with the defaults: key ordering, 500 records or 100 ms per
    /// transaction, 64 transforms in flight, `Backoff::default()` retries in
    /// place, permanent failures to `{topic}.dlq` inside the transaction.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// The consumer group.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The transactional id.
    pub fn transactional_id(&self) -> &str {
        &self.transactional_id
    }
}

/// Builder for [`PipelineConfig`].
pub struct PipelineBuilder {
    brokers: String,
    group: String,
    topics: Vec<String>,
    transactional_id: String,
    ordering: Ordering,
    max_batch_size: usize,
    linger: Duration,
    max_in_flight: usize,
    retry: Backoff,
    dead_letter: Option<TopicNames>,
    session_timeout: Duration,
    transaction_timeout: Duration,
    client_config: rebound_core::ClientProperties,
    observer: Option<Arc<dyn CommitObserver>>,
}

impl Default for PipelineBuilder {
    fn default() -> Self {
        PipelineBuilder {
            brokers: String::new(),
            group: String::new(),
            topics: Vec::new(),
            transactional_id: String::new(),
            ordering: Ordering::Key,
            max_batch_size: 500,
            linger: Duration::from_millis(100),
            max_in_flight: 64,
            retry: Backoff::default(),
            dead_letter: Some(TopicNames::default()),
            session_timeout: Duration::from_secs(10),
            transaction_timeout: Duration::from_secs(60),
            client_config: rebound_core::ClientProperties::default(),
            observer: None,
        }
    }
}

impl PipelineBuilder {
    /// Bootstrap servers.
    pub fn with_brokers(mut self, brokers: impl Into<String>) -> Self {
        self.brokers = brokers.into();
        self
    }

    /// The consumer group (required).
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = group.into();
        self
    }

    /// An input topic (at least one).
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topics.push(topic.into());
        self
    }

    /// The transactional id: stable per pipeline instance across restarts,
    /// so a restarted instance fences its predecessor and aborts whatever it
    /// left open; different for instances running side by side.
    pub fn with_transactional_id(mut self, id: impl Into<String>) -> Self {
        self.transactional_id = id.into();
        self
    }

    setter!(
        /// Order inside a transaction: `Key` (default), `Partition` or `Unordered`.
        with_ordering, ordering: Ordering
    );
    setter!(
        /// At most this many input records per transaction.
        with_max_batch_size, max_batch_size: usize
    );
    setter!(
        /// How long a transaction waits for more input after its first record.
        with_linger, linger: Duration
    );
    setter!(
        /// How many transforms run concurrently.
        with_max_in_flight, max_in_flight: usize
    );
    setter!(
        /// Retries in place of transient and throttled failures.
        with_retry, retry: Backoff
    );
    setter!(
        /// Consumer group session timeout.
        with_session_timeout, session_timeout: Duration
    );
    setter!(
        /// Broker-side transaction timeout; also bounds each transactional call.
        with_transaction_timeout, transaction_timeout: Duration
    );

    /// Where records whose transform fails for good go, inside the same
    /// transaction; `None` stops the pipeline on such a record instead
    /// (nothing past it is committed).
    pub fn with_dead_letter(mut self, names: Option<TopicNames>) -> Self {
        self.dead_letter = names;
        self
    }

    /// Any librdkafka consumer property.
    pub fn with_client_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.client_config.insert(key.into(), value.into());
        self
    }

    /// Told before and after each transaction commits (audits, journals).
    pub fn with_observer(mut self, observer: Arc<dyn CommitObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// Validates and builds; errors name the field.
    pub fn build(self) -> Result<PipelineConfig, ConfigError> {
        for (field, v) in [
            ("brokers", &self.brokers),
            ("group", &self.group),
            ("transactional_id", &self.transactional_id),
        ] {
            if v.is_empty() {
                return Err(ConfigError::Missing(field));
            }
        }
        if self.topics.is_empty() {
            return Err(ConfigError::Missing("topic"));
        }
        if let Some(t) = self.topics.iter().find(|t| !valid_topic(t)) {
            return Err(invalid("topic", format!("{t:?} is not a valid topic name")));
        }
        if self.ordering == Ordering::Batch {
            return Err(invalid(
                "ordering",
                "batch is not supported; a transaction is already a batch".into(),
            ));
        }
        for (field, v) in [
            ("max_batch_size", self.max_batch_size),
            ("max_in_flight", self.max_in_flight),
        ] {
            if v == 0 {
                return Err(invalid(field, "must be at least 1".into()));
            }
        }
        if self.transaction_timeout < Duration::from_secs(1) {
            return Err(invalid(
                "transaction_timeout",
                "must be at least 1 s".into(),
            ));
        }
        Ok(PipelineConfig {
            brokers: self.brokers,
            group: self.group,
            topics: self.topics,
            transactional_id: self.transactional_id,
            ordering: self.ordering,
            max_batch_size: self.max_batch_size,
            linger: self.linger,
            max_in_flight: self.max_in_flight,
            retry: self.retry,
            dead_letter: self.dead_letter,
            session_timeout: self.session_timeout,
            transaction_timeout: self.transaction_timeout,
            client_config: self.client_config,
            observer: self.observer,
        })
    }
}

fn invalid(field: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> PipelineBuilder {
        PipelineConfig::builder()
            .with_brokers("127.0.0.1:9092")
            .with_group("g")
            .with_topic("in")
            .with_transactional_id("g-0")
    }

    #[test]
    fn defaults_build() {
        let c = base().build().unwrap();
        assert_eq!(c.ordering, Ordering::Key);
        assert_eq!(c.max_batch_size, 500);
        assert!(c.dead_letter.is_some());
    }

    #[test]
    fn errors_name_the_field() {
        let e = PipelineConfig::builder()
            .with_brokers("b")
            .with_group("g")
            .with_topic("in")
            .build()
            .unwrap_err();
        assert_eq!(e, ConfigError::Missing("transactional_id"));
        let e = base().with_max_batch_size(0).build().unwrap_err();
        assert!(e.to_string().contains("max_batch_size"), "{e}");
        let e = base().with_ordering(Ordering::Batch).build().unwrap_err();
        assert!(e.to_string().contains("ordering"), "{e}");
        let e = base().with_topic("bad topic").build().unwrap_err();
        assert!(e.to_string().contains("topic"), "{e}");
    }
}
