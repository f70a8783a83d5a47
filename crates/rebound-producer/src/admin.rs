//! Topic administration: what the failure stack needs at start (how many
//! partitions a topic has, creating missing retry-tier and DLQ topics) and
//! what `rebound topic` does (create with configs, list, describe, delete).

use std::time::Duration;

use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigSource, NewTopic, ResourceSpecifier, TopicReplication,
};
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

/// Creates `topic` with `partitions` partitions and the cluster's default
/// replication factor (`default.replication.factor`; a topic rebound makes
/// for itself — a DLQ, a retry tier, a changelog — is as durable as the
/// cluster's other topics). A topic that already exists is not an error.
pub async fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<(), AdminError> {
    ensure_topic(bootstrap, &[], topic, partitions).await
}

/// [`create_topic`] with extra client properties (TLS, SASL).
pub async fn ensure_topic(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
    partitions: i32,
) -> Result<(), AdminError> {
    let spec = TopicSpec {
        name: topic.to_string(),
        partitions,
        replication: DEFAULT_REPLICATION,
        configs: Vec::new(),
    };
    ensure_topic_with(bootstrap, extra, &spec).await
}

/// Creates the topic as `spec` says unless it exists (an existing topic
/// is kept as it is, whatever its partitions and configs).
pub async fn ensure_topic_with(
    bootstrap: &str,
    extra: &[(String, String)],
    spec: &TopicSpec,
) -> Result<(), AdminError> {
    match create_topic_with(bootstrap, extra, spec, Duration::from_secs(10)).await {
        Err(AdminError {
            source: KafkaError::AdminOp(RDKafkaErrorCode::TopicAlreadyExists),
            ..
        }) => Ok(()),
        other => other,
    }
}

/// The number of partitions of `topic`, `None` if it does not exist.
/// Blocking: waits up to `timeout` for the brokers.
pub fn partition_count(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
    timeout: Duration,
) -> Result<Option<usize>, AdminError> {
    let c = metadata_client(bootstrap, extra, topic)?;
    let md = c.fetch_metadata(Some(topic), timeout).map_err(err(topic))?;
    Ok(md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map(|t| t.partitions().len())
        .filter(|n| *n > 0))
}

/// A replication factor that asks for the broker's
/// `default.replication.factor` (Kafka 2.4+).
pub const DEFAULT_REPLICATION: i32 = -1;

/// A topic to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSpec {
    /// Its name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// Replicas of each partition.
    pub replication: i32,
    /// Topic configs, e.g. `cleanup.policy=compact`, `retention.ms=60000`.
    pub configs: Vec<(String, String)>,
}

/// One partition as the cluster describes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PartitionInfo {
    /// Partition number.
    pub partition: i32,
    /// Broker id of the leader (-1: none).
    pub leader: i32,
    /// Broker ids holding a replica.
    pub replicas: Vec<i32>,
    /// Broker ids of the in-sync replicas.
    pub isr: Vec<i32>,
    /// Earliest offset still stored (`None`: the partition could not say,
    /// e.g. it has no leader).
    pub earliest: Option<i64>,
    /// The offset the next record gets (`None` as for `earliest`).
    pub latest: Option<i64>,
}

/// A topic with its partitions and the configs that differ from the defaults.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TopicInfo {
    /// Its name.
    pub topic: String,
    /// Partitions, by number.
    pub partitions: Vec<PartitionInfo>,
    /// Configs set on the topic (not broker defaults), by name.
    pub configs: Vec<(String, String)>,
}

/// A client of `C` (admin or consumer) on `bootstrap` with `extra`
/// properties (TLS, SASL).
fn client<C: rdkafka::config::FromClientConfig>(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
) -> Result<C, AdminError> {
    let mut c = ClientConfig::new();
    for (k, v) in extra {
        c.set(k, v);
    }
    c.set("bootstrap.servers", bootstrap)
        .create()
        .map_err(err(topic))
}

fn admin_client(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
) -> Result<AdminClient<DefaultClientContext>, AdminError> {
    client(bootstrap, extra, topic)
}

fn options(timeout: Duration) -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout))
}

/// Creates the topic; one that exists already is an error
/// (`TopicAlreadyExists`), as are an invalid config or replication factor.
pub async fn create_topic_with(
    bootstrap: &str,
    extra: &[(String, String)],
    spec: &TopicSpec,
    timeout: Duration,
) -> Result<(), AdminError> {
    let admin = admin_client(bootstrap, extra, &spec.name)?;
    let mut new = NewTopic::new(
        &spec.name,
        spec.partitions,
        TopicReplication::Fixed(spec.replication),
    );
    for (k, v) in &spec.configs {
        new = new.set(k, v);
    }
    let results = admin
        .create_topics([&new], &options(timeout))
        .await
        .map_err(err(&spec.name))?;
    first_error(&spec.name, results)
}

/// Deletes the topic and its records.
pub async fn delete_topic(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
    timeout: Duration,
) -> Result<(), AdminError> {
    let admin = admin_client(bootstrap, extra, topic)?;
    let results = admin
        .delete_topics(&[topic], &options(timeout))
        .await
        .map_err(err(topic))?;
    first_error(topic, results)
}

fn first_error(
    topic: &str,
    results: Vec<Result<String, (String, RDKafkaErrorCode)>>,
) -> Result<(), AdminError> {
    match results.into_iter().find_map(Result::err) {
        Some((_, code)) => Err(err(topic)(KafkaError::AdminOp(code))),
        None => Ok(()),
    }
}

/// Every topic and its partition count, by name.
pub fn list_topics(
    bootstrap: &str,
    extra: &[(String, String)],
    timeout: Duration,
) -> Result<Vec<(String, usize)>, AdminError> {
    let c = metadata_client(bootstrap, extra, "<all>")?;
    let md = c.fetch_metadata(None, timeout).map_err(err("<all>"))?;
    let mut out: Vec<(String, usize)> = md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect();
    out.sort();
    Ok(out)
}

fn metadata_client(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
) -> Result<BaseConsumer, AdminError> {
    client(bootstrap, extra, topic)
}

/// Partitions (leaders, replicas, earliest and latest offsets) and the
/// configs set on `topic`; `None` when it does not exist.
pub async fn describe_topic(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
    timeout: Duration,
) -> Result<Option<TopicInfo>, AdminError> {
    let (b, x, t) = (bootstrap.to_string(), extra.to_vec(), topic.to_string());
    let partitions = tokio::task::spawn_blocking(move || partitions_of(&b, &x, &t, timeout))
        .await
        .map_err(|_| err(topic)(KafkaError::Canceled))??;
    let Some(partitions) = partitions else {
        return Ok(None);
    };
    let admin = admin_client(bootstrap, extra, topic)?;
    let described = admin
        .describe_configs([&ResourceSpecifier::Topic(topic)], &options(timeout))
        .await
        .map_err(err(topic))?;
    let mut configs = Vec::new();
    for r in described {
        let r = r.map_err(|code| err(topic)(KafkaError::AdminOp(code)))?;
        configs.extend(
            r.entries
                .into_iter()
                .filter(|e| e.source == ConfigSource::DynamicTopic && !e.is_sensitive)
                .filter_map(|e| Some((e.name, e.value?))),
        );
    }
    configs.sort();
    Ok(Some(TopicInfo {
        topic: topic.to_string(),
        partitions,
        configs,
    }))
}

fn partitions_of(
    bootstrap: &str,
    extra: &[(String, String)],
    topic: &str,
    timeout: Duration,
) -> Result<Option<Vec<PartitionInfo>>, AdminError> {
    let c = metadata_client(bootstrap, extra, topic)?;
    let md = c.fetch_metadata(Some(topic), timeout).map_err(err(topic))?;
    let Some(t) = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty())
    else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for p in t.partitions() {
        // A leaderless partition is what a describe is most needed for:
        // show it without offsets rather than fail.
        let (earliest, latest) = match c.fetch_watermarks(topic, p.id(), timeout) {
            Ok((low, high)) => (Some(low), Some(high)),
            Err(_) => (None, None),
        };
        out.push(PartitionInfo {
            partition: p.id(),
            leader: p.leader(),
            replicas: p.replicas().to_vec(),
            isr: p.isr().to_vec(),
            earliest,
            latest,
        });
    }
    out.sort_by_key(|p| p.partition);
    Ok(Some(out))
}
