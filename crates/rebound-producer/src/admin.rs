//! Topic administration the failure stack needs at start: how many
//! partitions a topic has, and creating missing retry-tier and DLQ topics.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

/// An admin call on `topic` failed.
#[derive(Debug, thiserror::Error)]
#[error("kafka admin call on topic {topic} failed")]
pub struct AdminError {
    /// The topic involved.
    pub topic: String,
    /// The client error.
    #[source]
    pub source: KafkaError,
}

fn err(topic: &str) -> impl Fn(KafkaError) -> AdminError + '_ {
    move |source| AdminError {
        topic: topic.to_string(),
        source,
    }
}

/// Creates `topic` with `partitions` partitions (replication 1). A topic
/// that already exists is not an error.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<(), AdminError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(err(topic))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics([&new], &opts)
        .await
        .map_err(err(topic))?;
    for r in results {
        match r {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => return Err(err(topic)(KafkaError::AdminOp(code))),
        }
    }
    Ok(())
}

/// The number of partitions of `topic`, `None` if it does not exist.
/// Blocking: waits up to `timeout` for the brokers.
pub fn partition_count(
    bootstrap: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Option<usize>, AdminError> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(err(topic))?;
    let md = c.fetch_metadata(Some(topic), timeout).map_err(err(topic))?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .filter(|n| *n > 0))
}
