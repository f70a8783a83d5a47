//! Kafka delivery through rebound's own [`Producer`] (idempotent, acks=all,
//! Java-compatible key partitioning, its metrics), one per bootstrap list,
//! cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rebound_producer::{OutRecord, Producer, ProducerConfig, ProducerMetrics};

use super::{Delivery, DeliveryError};

/// Produces deliveries to Kafka.
pub struct KafkaSink {
    default_brokers: String,
    metrics: Arc<ProducerMetrics>,
    client_config: Vec<(String, String)>,
    producers: Mutex<HashMap<String, Producer>>,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("default_brokers", &self.default_brokers)
            .finish()
    }
}

impl KafkaSink {
    /// A sink using `default_brokers` for destinations without `host`; its
    /// producers record into `metrics` and take `client_config` (TLS, SASL).
    pub fn new(
        default_brokers: impl Into<String>,
        metrics: Arc<ProducerMetrics>,
        client_config: Vec<(String, String)>,
    ) -> Self {
        KafkaSink {
            default_brokers: default_brokers.into(),
            metrics,
            client_config,
            producers: Mutex::new(HashMap::new()),
        }
    }

    fn producer(&self, brokers: &str) -> Result<Producer, DeliveryError> {
        let mut map = self.producers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(brokers) {
            return Ok(p.clone());
        }
        let mut config = ProducerConfig::new(brokers)
            .with_linger(Duration::from_millis(2))
            .with_delivery_timeout(Duration::from_secs(30))
            .with_metrics(self.metrics.clone());
        for (k, v) in &self.client_config {
            config = config.with_client_config(k, v);
        }
        let p = Producer::new(&config).map_err(|source| DeliveryError::Kafka {
            topic: String::new(),
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
        let record = OutRecord::new(topic, d.payload.to_vec()).with_key(d.key);
        producer
            .send(&record)
            .await
            .map(|_| ())
            .map_err(|source| DeliveryError::Kafka {
                topic: topic.to_string(),
                brokers,
                source: Box::new(source),
            })
    }
}
