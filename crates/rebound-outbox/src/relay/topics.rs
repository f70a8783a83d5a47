//! Which topics exist: asked of the brokers' metadata and remembered for a
//! minute, so an unknown topic is a bad row (marked failed at once) rather
//! than a record librdkafka retries until its delivery timeout.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rebound_producer::admin::partition_count;
use tracing::warn;

/// How long a topic known to exist is not asked about again.
const KNOWN_FOR: Duration = Duration::from_secs(60);
/// How long a metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Remembers the topics seen to exist.
#[derive(Debug)]
pub(crate) struct Topics {
    brokers: String,
    /// The producer's client settings (TLS, SASL).
    client: Vec<(String, String)>,
    known: HashMap<String, Instant>,
}

/// What the brokers said about a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exists {
    Yes,
    No,
    /// The brokers could not be asked: treat as a transient failure.
    Unknown,
}

impl Topics {
    pub(crate) fn new(brokers: &str, client: Vec<(String, String)>) -> Self {
        Topics {
            brokers: brokers.to_string(),
            client,
            known: HashMap::new(),
        }
    }

    pub(crate) async fn exists(&mut self, topic: &str) -> Exists {
        if self
            .known
            .get(topic)
            .is_some_and(|at| at.elapsed() < KNOWN_FOR)
        {
            return Exists::Yes;
        }
        let (brokers, client) = (self.brokers.clone(), self.client.clone());
        let t = topic.to_string();
        let asked = tokio::task::spawn_blocking(move || {
            partition_count(&brokers, &client, &t, METADATA_TIMEOUT)
        })
        .await;
        match asked {
            Ok(Ok(Some(_))) => {
                self.known.insert(topic.to_string(), Instant::now());
                Exists::Yes
            }
            Ok(Ok(None)) => Exists::No,
            Ok(Err(e)) => {
                warn!(topic, error = %rebound_core::DisplayChain(&e), "topic metadata unavailable");
                Exists::Unknown
            }
            Err(_) => Exists::Unknown,
        }
    }
}
