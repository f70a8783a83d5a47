//! An idempotent producer that waits for acknowledgements.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, Producer as _};
use rdkafka::util::Timeout;

use crate::error::ProduceError;
use crate::record::OutRecord;

/// Producer settings.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    brokers: String,
    idempotent: bool,
    linger: Duration,
    delivery_timeout: Duration,
    client_config: BTreeMap<String, String>,
}

impl ProducerConfig {
    /// Idempotent, `acks=all`, 5 ms linger, 30 s delivery timeout.
    pub fn new(brokers: impl Into<String>) -> Self {
        ProducerConfig {
            brokers: brokers.into(),
            idempotent: true,
            linger: Duration::from_millis(5),
            delivery_timeout: Duration::from_secs(30),
            client_config: BTreeMap::new(),
        }
    }

    /// Turns idempotence (and `acks=all`) on or off.
    pub fn with_idempotence(mut self, on: bool) -> Self {
        self.idempotent = on;
        self
    }

    /// How long records wait to be batched.
    pub fn with_linger(mut self, linger: Duration) -> Self {
        self.linger = linger;
        self
    }

    /// How long librdkafka keeps trying one record before failing it.
    pub fn with_delivery_timeout(mut self, t: Duration) -> Self {
        self.delivery_timeout = t;
        self
    }

    /// Any librdkafka producer property.
    pub fn with_client_config(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.client_config.insert(k.into(), v.into());
        self
    }
}

impl ProducerConfig {
    /// The librdkafka configuration these settings stand for.
    pub(crate) fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", self.idempotent.to_string())
            .set("acks", if self.idempotent { "all" } else { "1" })
            .set("linger.ms", self.linger.as_millis().to_string())
            .set(
                "message.timeout.ms",
                self.delivery_timeout.as_millis().max(1).to_string(),
            );
        for (k, v) in &self.client_config {
            c.set(k, v);
        }
        c
    }
}

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition.
    pub partition: i32,
    /// Offset.
    pub offset: i64,
}

/// A cheap-to-clone producer.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// Creates the client (no network round trip yet).
    pub fn new(config: &ProducerConfig) -> Result<Self, ProduceError> {
        let inner = config
            .client_config()
            .create()
            .map_err(|e| ProduceError::new("<producer>", e))?;
        Ok(Producer { inner })
    }

    /// Sends `rec` and waits until the broker acknowledged it.
    pub async fn send(&self, rec: &OutRecord) -> Result<Delivered, ProduceError> {
        let fr = rec.as_future_record();
        match self.inner.send(fr, Timeout::Never).await {
            Ok(d) => Ok(Delivered {
                partition: d.partition,
                offset: d.offset,
            }),
            Err((e, _)) => Err(ProduceError::new(&rec.topic, e)),
        }
    }

    /// Waits until every queued record is delivered or `timeout` passes.
    pub fn flush(&self, timeout: Duration) -> Result<(), ProduceError> {
        self.inner
            .flush(timeout)
            .map_err(|e| ProduceError::new("<flush>", e))
    }
}
