//! `rebound worker`: Kafka → HTTP delivery on the worker runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rebound_worker::{Delivery, Metrics, Worker, WorkerConfig};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::OrderingArg;
use crate::args;
use crate::failure_args::FailureArgs;
use crate::security::Security;
use crate::sink::HttpSink;

/// Flags of `rebound worker`; each also reads the environment variable shown.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Kafka bootstrap servers, host:port[,host:port].
    #[arg(long, env = "REBOUND_BROKERS", value_parser = args::non_empty)]
    brokers: String,
    /// Topic to consume.
    #[arg(long, env = "REBOUND_TOPIC", value_parser = args::topic)]
    topic: String,
    /// Consumer group id.
    #[arg(long, env = "REBOUND_GROUP", value_parser = args::non_empty)]
    group: String,
    /// What may run concurrently.
    #[arg(long, env = "REBOUND_ORDERING", value_enum, default_value = "key")]
    ordering: OrderingArg,
    /// Records in flight across all partitions.
    #[arg(long, env = "REBOUND_MAX_IN_FLIGHT", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    max_in_flight: u32,
    /// Memory for records fetched and not finished, across all partitions
    /// (64MiB, 512MB, …); fetching pauses when it is full. librdkafka's
    /// prefetch queue gets half of it on top.
    #[arg(long, env = "REBOUND_MAX_BUFFERED_BYTES", default_value = "64MiB",
          value_parser = args::byte_size)]
    max_buffered_bytes: u64,
    /// Records in flight per partition (default: --max-in-flight).
    #[arg(long, env = "REBOUND_MAX_IN_FLIGHT_PER_PARTITION",
          value_parser = clap::value_parser!(u32).range(1..))]
    max_in_flight_per_partition: Option<u32>,
    /// URL each record's value is POSTed to.
    #[arg(long, env = "REBOUND_HTTP_SINK", value_parser = args::http_url)]
    http_sink: url::Url,
    /// Timeout of one HTTP request.
    #[arg(long, env = "REBOUND_HTTP_TIMEOUT", default_value = "30s", value_parser = args::duration)]
    http_timeout: Duration,
    /// Delivery guarantee.
    #[arg(
        long,
        env = "REBOUND_DELIVERY",
        value_enum,
        default_value = "at-least-once"
    )]
    delivery: DeliveryArg,
    #[command(flatten)]
    failure: FailureArgs,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "REBOUND_OPS_ADDR", default_value = "127.0.0.1:9464")]
    ops_addr: SocketAddr,
    /// How long shutdown and revokes wait for in-flight records.
    #[arg(long, env = "REBOUND_DRAIN_TIMEOUT", default_value = "30s", value_parser = args::duration)]
    drain_timeout: Duration,
    /// How long to wait for the brokers at start.
    #[arg(long, env = "REBOUND_CONNECT_TIMEOUT", default_value = "30s", value_parser = args::duration)]
    connect_timeout: Duration,
    /// Consumer group session timeout.
    #[arg(long, env = "REBOUND_SESSION_TIMEOUT", default_value = "10s", value_parser = args::duration)]
    session_timeout: Duration,
    /// TLS and SASL of every client (consumer, DLQ producer, admin).
    #[command(flatten)]
    security: Security,
}

/// `--delivery` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DeliveryArg {
    /// Commit only finished records.
    AtLeastOnce,
    /// Commit before handling.
    AtMostOnce,
}

/// Creates `topics` (missing ones only) with as many partitions as `source`.
async fn create_missing(
    brokers: &str,
    props: &[(String, String)],
    source: &str,
    topics: &[String],
    timeout: Duration,
) -> anyhow::Result<()> {
    let (b, x, s) = (brokers.to_string(), props.to_vec(), source.to_string());
    let partitions = tokio::task::spawn_blocking(move || {
        rebound_producer::admin::partition_count(&b, &x, &s, timeout)
    })
    .await?
    .with_context(|| format!("could not reach Kafka brokers at {brokers} within {timeout:?}"))?
    .unwrap_or(1);
    for t in topics {
        rebound_producer::admin::ensure_topic(brokers, props, t, partitions as i32)
            .await
            .with_context(|| format!("creating topic {t}"))?;
    }
    Ok(())
}

/// Runs the worker until SIGINT/SIGTERM, then shuts down gracefully.
pub async fn run(a: WorkerArgs) -> anyhow::Result<()> {
    // Bind first: a taken address fails before anything touches Kafka, and
    // nothing after the worker joins its group can fail.
    let ops_listener = crate::ops::bind(a.ops_addr).await?;
    let mut b = WorkerConfig::builder()
        .with_brokers(&a.brokers)
        .with_group(&a.group)
        .with_topic(&a.topic)
        .with_ordering(a.ordering.into())
        .with_max_in_flight(a.max_in_flight as usize)
        .with_max_buffered_bytes(usize::try_from(a.max_buffered_bytes).unwrap_or(usize::MAX))
        .with_delivery(match a.delivery {
            DeliveryArg::AtLeastOnce => Delivery::AtLeastOnce,
            DeliveryArg::AtMostOnce => Delivery::AtMostOnce,
        })
        .with_drain_timeout(a.drain_timeout)
        .with_connect_timeout(a.connect_timeout)
        .with_session_timeout(a.session_timeout);
    if let Some(n) = a.max_in_flight_per_partition {
        b = b.with_max_in_flight_per_partition(n as usize);
    }
    let props = a.security.properties()?;
    for (k, v) in &props {
        b = b.with_client_config(k, v);
    }
    // The consumer takes every property; the DLQ producer and the admin
    // client only what reaches the cluster (no "ignored" warnings).
    let props: Vec<_> = props
        .into_iter()
        .filter(|(k, _)| rebound_core::properties::is_connection(k))
        .collect();
    let metrics = Arc::new(Metrics::new());
    let sink = HttpSink::new(a.http_sink.clone(), a.http_timeout)?;
    let stack = a
        .failure
        .stack(sink, &a.brokers, &props, &a.topic, &a.group, &metrics)?;
    if a.failure.create_topics && !stack.extra_topics.is_empty() {
        create_missing(
            &a.brokers,
            &props,
            &a.topic,
            &stack.extra_topics,
            a.connect_timeout,
        )
        .await?;
    }
    let b = a.failure.configure(b.with_metrics(metrics), &stack);
    let config = b.build().context("invalid worker configuration")?;
    let handler = stack.handler;

    info!(brokers = %a.brokers, topic = %a.topic, group = %a.group, sink = %a.http_sink, "starting worker");
    let worker = Worker::start(config, handler).await?;
    let stop = worker.shutdown_token();
    crate::shutdown::on_signals(stop.clone());
    let ops_stop = CancellationToken::new();
    let router = crate::ops::router(worker.health().clone(), worker.metrics().clone());
    crate::ops::serve(ops_listener, router, ops_stop.clone());

    // Progress: one line every 5 s while running.
    let metrics = worker.metrics().clone();
    let topic = a.topic.clone();
    let mut last = 0u64;
    let progress = crate::ops::progress(stop.clone(), move |uptime| {
        let done = metrics.processed(&topic);
        info!(
            processed = done,
            rate_per_s = (done - last) / 5,
            in_flight = metrics.in_flight.get(),
            frozen_partitions = metrics.frozen_partitions.get(),
            uptime_s = uptime.as_secs(),
            "progress"
        );
        last = done;
    });
    let summary = worker.join().await?;
    progress.abort();
    ops_stop.cancel();
    info!(
        processed = summary.stats.processed,
        failed = summary.stats.failed,
        abandoned_in_flight = summary.abandoned_in_flight,
        "worker stopped"
    );
    Ok(())
}
