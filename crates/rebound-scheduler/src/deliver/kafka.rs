//! Kafka delivery: one idempotent `FutureProducer` per bootstrap list, cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use super::{Delivery, DeliveryError};

/// Produces deliveries to Kafka.
pub struct KafkaSink {
    default_brokers: String,
    producers: Mutex<HashMap<String, FutureProducer>>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("default_brokers", &self.default_brokers)
            .finish()
    }
}

impl KafkaSink {
    /// A sink using `default_brokers` for destinations without `host`.
    pub fn new(default_brokers: impl Into<String>) -> Self {
        KafkaSink {
            default_brokers: default_brokers.into(),
            producers: Mutex::new(HashMap::new()),
        }
    }

    fn producer(&self, brokers: &str) -> Result<FutureProducer, DeliveryError> {
        let mut map = self.producers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(brokers) {
            return Ok(p.clone());
        }
        let p: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "30000")
            .create()
            .map_err(|source| DeliveryError::KafkaClient {
                brokers: brokers.to_string(),
                source: Box::new(source),
            })?;
        map.insert(brokers.to_string(), p.clone());
        Ok(p)
    }

    /// Produces one record keyed `<id>|<attempt>` and waits for the ack.
    pub async fn send(&self, d: Delivery<'_>) -> Result<(), DeliveryError> {
        let brokers = d
            .destination
            .bootstrap()
            .unwrap_or_else(|| self.default_brokers.clone());
        let producer = self.producer(&brokers)?;
        let topic = d.destination.topic.as_str();
        let record = FutureRecord::to(topic).key(d.key).payload(d.payload);
        producer
            .send(record, Timeout::After(Duration::from_secs(30)))
            .await
            .map(|_| ())
            .map_err(|(source, _)| DeliveryError::Kafka {
                topic: topic.to_string(),
                brokers,
                source: Box::new(source),
            })
    }
}
