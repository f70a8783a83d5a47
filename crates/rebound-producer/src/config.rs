//! Producer settings: acknowledgements, idempotence, batching, size limit,
//! retries and metrics, turned into one librdkafka configuration.

use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rebound_core::Backoff;

use crate::metrics::ProducerMetrics;

/// How many brokers must have a record before it counts as delivered
/// (Kafka's `acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: the broker does not answer. Nothing is retried, offsets are
    /// unknown (reported as negative) and a record lost on the way is never
    /// noticed: **at most once**. The fire-and-forget mode.
    None,
    /// `acks=1`: the partition leader wrote it. A leader that dies before its
    /// followers copied the record loses it.
    Leader,
    /// `acks=all`: every in-sync replica wrote it. The default, and the only
    /// setting idempotence allows.
    #[default]
    All,
}

impl Acks {
    /// The librdkafka value.
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

/// Producer settings. The defaults are the safe ones: idempotent, `acks=all`,
/// Java-compatible key partitioning (`murmur2_random`), 5 ms linger.
///
/// Idempotence needs `acks=all`: [`with_idempotence(true)`](Self::with_idempotence)
/// sets [`Acks::All`], and [`with_acks`](Self::with_acks) with anything
/// weaker turns idempotence off. The last call wins, so a config is never
/// contradictory.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    pub(crate) brokers: String,
    pub(crate) acks: Acks,
    pub(crate) idempotent: bool,
    pub(crate) linger: Duration,
    pub(crate) batch_size: Option<usize>,
    pub(crate) batch_records: Option<usize>,
    pub(crate) delivery_timeout: Duration,
    pub(crate) max_message_size: usize,
    pub(crate) retry: Option<Backoff>,
    pub(crate) metrics: Option<Arc<ProducerMetrics>>,
    pub(crate) client_config: rebound_core::ClientProperties,
}

/// Kafka's and librdkafka's default `message.max.bytes`.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 1_000_000;

impl ProducerConfig {
    /// Idempotent, `acks=all`, 5 ms linger, 30 s delivery timeout,
    /// 1,000,000-byte records at most, no retries beyond librdkafka's own.
    pub fn new(brokers: impl Into<String>) -> Self {
        ProducerConfig {
            brokers: brokers.into(),
            acks: Acks::All,
            idempotent: true,
            linger: Duration::from_millis(5),
            batch_size: None,
            batch_records: None,
            delivery_timeout: Duration::from_secs(30),
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            retry: None,
            metrics: None,
            client_config: rebound_core::ClientProperties::default(),
        }
    }

    /// Fire-and-forget settings: `acks=0`, no retries, no idempotence.
    /// Pair with [`Producer::send_and_forget`](crate::Producer::send_and_forget).
    pub fn fire_and_forget(brokers: impl Into<String>) -> Self {
        Self::new(brokers).with_acks(Acks::None)
    }

    /// Turns idempotence on (which also sets `acks=all`) or off (acks are
    /// left as they are). Idempotence means the broker drops the duplicates
    /// librdkafka's own retries would create and keeps each partition in
    /// send order.
    pub fn with_idempotence(mut self, on: bool) -> Self {
        self.idempotent = on;
        if on {
            self.acks = Acks::All;
        }
        self
    }

    /// Sets the acknowledgements to wait for; anything but [`Acks::All`]
    /// turns idempotence off.
    pub fn with_acks(mut self, acks: Acks) -> Self {
        self.acks = acks;
        if acks != Acks::All {
            self.idempotent = false;
        }
        self
    }

    /// How long records wait to be batched (`linger.ms`).
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// The largest batch in bytes (`batch.size`, librdkafka default 1,000,000).
    pub fn with_batch_size(mut self, bytes: usize) -> Self {
        self.batch_size = Some(bytes);
        self
    }

    /// The most records in one batch (`batch.num.messages`, default 10,000).
    pub fn with_batch_records(mut self, records: usize) -> Self {
        self.batch_records = Some(records);
        self
    }

    /// How long librdkafka keeps trying one record before failing it
    /// (`message.timeout.ms`).
    pub fn with_delivery_timeout(mut self, t: Duration) -> Self {
        self.delivery_timeout = t;
        self
    }

    /// The largest record accepted, in bytes (`message.max.bytes`). Typed
    /// sends check it before anything is queued.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Retries a [`send`](crate::Producer::send) that failed with a
    /// retriable error (see [`is_retriable`](crate::is_retriable)) after the
    /// backoff's delays, up to its `max_attempts` in total. Final errors are
    /// returned at once. Without this, only librdkafka's internal retries
    /// (within the delivery timeout) happen.
    ///
    /// A retry after a timeout may write the record twice: the first
    /// attempt may have reached the broker. Idempotence only removes the
    /// duplicates of librdkafka's internal retries.
    pub fn with_retry(mut self, backoff: Backoff) -> Self {
        self.retry = Some(backoff);
        self
    }

    /// Counts into `metrics` instead of a registry of the producer's own
    /// (to share one registry between producers).
    pub fn with_metrics(mut self, metrics: Arc<ProducerMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Any librdkafka producer property; applied last, so it overrides the
    /// typed settings.
    pub fn with_client_config(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.client_config.insert(k.into(), v.into());
        self
    }

    /// The bootstrap servers.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// The librdkafka properties set with
    /// [`with_client_config`](Self::with_client_config) (TLS, SASL, ...), for
    /// the other clients that must reach the same cluster the same way.
    pub fn client_properties(&self) -> Vec<(String, String)> {
        self.client_config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The acknowledgements waited for.
    pub fn acks(&self) -> Acks {
        self.acks
    }

    /// Whether the producer is idempotent.
    pub fn idempotent(&self) -> bool {
        self.idempotent
    }

    /// The largest record accepted, in bytes.
    pub fn max_message_size(&self) -> usize {
        self.max_message_size
    }
}

impl ProducerConfig {
    /// The librdkafka configuration these settings stand for.
    /// Checks the settings librdkafka would reject or misread, naming the
    /// setting as this type calls it.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let positive = |name: &str, v: Option<usize>| match v {
            Some(0) => Err(format!("invalid {name}: must be at least 1")),
            _ => Ok(()),
        };
        if self.brokers.trim().is_empty() {
            return Err("invalid brokers: must not be empty".into());
        }
        positive("batch_size", self.batch_size)?;
        positive("batch_records", self.batch_records)?;
        positive("max_message_size", Some(self.max_message_size))?;
        if self.delivery_timeout <= self.linger {
            return Err(format!(
                "invalid delivery_timeout: must be longer than linger ({:?}), got {:?}",
                self.linger, self.delivery_timeout
            ));
        }
        Ok(())
    }

    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", self.idempotent.to_string())
            .set("acks", self.acks.as_str())
            .set("partitioner", "murmur2_random")
            .set("linger.ms", self.linger.as_millis().to_string())
            .set("message.max.bytes", self.max_message_size.to_string())
            .set(
                "message.timeout.ms",
                self.delivery_timeout.as_millis().max(1).to_string(),
            );
        if self.acks == Acks::None {
            c.set("message.send.max.retries", "0");
        }
        if let Some(b) = self.batch_size {
            c.set("batch.size", b.to_string());
        }
        if let Some(n) = self.batch_records {
            c.set("batch.num.messages", n.to_string());
        }
        for (k, v) in &self.client_config {
            c.set(k, v);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(c: &ProducerConfig, k: &str) -> String {
        c.client_config().get(k).unwrap_or_default().to_string()
    }

    #[test]
    fn validation_names_the_setting() {
        assert_eq!(ProducerConfig::new("b:9092").validate(), Ok(()));
        let err = |c: ProducerConfig| c.validate().unwrap_err();
        assert_eq!(
            err(ProducerConfig::new(" ")),
            "invalid brokers: must not be empty"
        );
        assert_eq!(
            err(ProducerConfig::new("b").with_batch_records(0)),
            "invalid batch_records: must be at least 1"
        );
        assert!(
            err(ProducerConfig::new("b").with_delivery_timeout(Duration::from_millis(5)))
                .starts_with("invalid delivery_timeout: must be longer than linger")
        );
    }

    #[test]
    fn defaults_are_idempotent_acks_all_murmur2() {
        let c = ProducerConfig::new("b:9092");
        assert_eq!(get(&c, "enable.idempotence"), "true");
        assert_eq!(get(&c, "acks"), "all");
        assert_eq!(get(&c, "partitioner"), "murmur2_random");
        assert_eq!(get(&c, "message.max.bytes"), "1000000");
    }

    #[test]
    fn weaker_acks_turn_idempotence_off_and_back() {
        let c = ProducerConfig::fire_and_forget("b");
        assert_eq!(get(&c, "acks"), "0");
        assert_eq!(get(&c, "enable.idempotence"), "false");
        assert_eq!(get(&c, "message.send.max.retries"), "0");
        let c = c.with_idempotence(true);
        assert_eq!(get(&c, "acks"), "all");
        assert_eq!(get(&c, "enable.idempotence"), "true");
        let c = ProducerConfig::new("b").with_idempotence(false);
        assert_eq!(get(&c, "acks"), "all");
        assert_eq!(get(&c, "enable.idempotence"), "false");
    }

    #[test]
    fn batching_and_overrides() {
        let c = ProducerConfig::new("b")
            .with_linger(Duration::from_millis(20))
            .with_batch_size(65_536)
            .with_batch_records(500)
            .with_client_config("linger.ms", "7");
        assert_eq!(get(&c, "batch.size"), "65536");
        assert_eq!(get(&c, "batch.num.messages"), "500");
        assert_eq!(get(&c, "linger.ms"), "7");
    }
}
