//! [`start`]: the one way a route starts, for `rebound worker` and `rebound run`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus::Registry;
use rebound_worker::{Delivery, Metrics, Worker, WorkerConfig, WorkerHandle};
use tracing::info;

use super::settings::{DeliveryArg, RouteSettings};
use crate::sink::HttpSink;

/// The Kafka side every route of a process shares.
#[derive(Debug, Clone, PartialEq)]
pub struct Kafka {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub brokers: String,
    /// librdkafka properties (TLS, SASL, tuning): all of them for the
    /// consumer, the connection ones for the DLQ producer and admin calls.
    pub props: Vec<(String, String)>,
    /// How long to wait for the brokers at start.
    pub connect_timeout: Duration,
}

impl Kafka {
    /// What clients other than the consumer get: the connection properties
    /// only (librdkafka warns about, and ignores, a consumer's tuning).
    fn side_props(&self) -> Vec<(String, String)> {
        self.props
            .iter()
            .filter(|(k, _)| rebound_core::properties::is_connection(k))
            .cloned()
            .collect()
    }
}

/// Creates `topics` (missing ones only) with as many partitions as `source`.
async fn create_missing(kafka: &Kafka, source: &str, topics: &[String]) -> anyhow::Result<()> {
    let props = kafka.side_props();
    let (b, x, s) = (kafka.brokers.clone(), props.clone(), source.to_string());
    let timeout = kafka.connect_timeout;
    let partitions = tokio::task::spawn_blocking(move || {
        rebound_producer::admin::partition_count(&b, &x, &s, timeout)
    })
    .await?
    .with_context(|| {
        format!(
            "could not reach Kafka brokers at {} within {timeout:?}",
            kafka.brokers
        )
    })?
    .unwrap_or(1);
    for t in topics {
        rebound_producer::admin::ensure_topic(&kafka.brokers, &props, t, partitions as i32)
            .await
            .with_context(|| format!("creating topic {t}"))?;
    }
    Ok(())
}

/// Starts `route`: its sink, failure stack and worker, with every metric
/// in `registry` (the process's, or one whose const label names the route).
/// Fails fast when the brokers or the topic cannot be reached.
pub async fn start(
    kafka: &Kafka,
    route: &RouteSettings,
    registry: Registry,
) -> anyhow::Result<WorkerHandle> {
    let mut b = WorkerConfig::builder()
        .with_brokers(&kafka.brokers)
        .with_group(&route.group)
        .with_topic(&route.topic)
        .with_ordering(route.ordering.into())
        .with_max_in_flight(route.max_in_flight as usize)
        .with_max_buffered_bytes(usize::try_from(route.max_buffered_bytes).unwrap_or(usize::MAX))
        .with_delivery(match route.delivery {
            DeliveryArg::AtLeastOnce => Delivery::AtLeastOnce,
            DeliveryArg::AtMostOnce => Delivery::AtMostOnce,
        })
        .with_drain_timeout(route.drain_timeout)
        .with_connect_timeout(kafka.connect_timeout)
        .with_session_timeout(route.session_timeout);
    if let Some(n) = route.max_in_flight_per_partition {
        b = b.with_max_in_flight_per_partition(n as usize);
    }
    for (k, v) in &kafka.props {
        b = b.with_client_config(k, v);
    }
    let metrics = Arc::new(Metrics::in_registry(registry));
    let sink = HttpSink::new(route)?;
    let stack = route.stack(sink, &kafka.brokers, &kafka.side_props(), &metrics)?;
    if route.create_topics && !stack.extra_topics.is_empty() {
        create_missing(kafka, &route.topic, &stack.extra_topics).await?;
    }
    let b = route.configure(b.with_metrics(metrics), &stack);
    let config = b.build().context("invalid worker configuration")?;
    info!(
        route = route.label(), brokers = %kafka.brokers, topic = %route.topic,
        group = %route.group, sink = %route.http_sink, "starting route"
    );
    Ok(Worker::start(config, stack.handler).await?)
}
