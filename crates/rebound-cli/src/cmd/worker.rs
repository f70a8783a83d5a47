//! `rebound worker`: Kafka → HTTP delivery on the worker runtime.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::args;
use crate::route::{self, Kafka, RouteSettings};
use crate::security::Security;

/// Flags of `rebound worker`; each also reads the environment variable
/// shown. The route's flags are [`RouteSettings`], the settings of a
/// `[[route]]` table of `rebound run`.
#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Kafka bootstrap servers, host:port[,host:port].
    #[arg(long, env = "REBOUND_BROKERS", value_parser = args::non_empty)]
    brokers: String,
    #[command(flatten)]
    route: RouteSettings,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "REBOUND_OPS_ADDR", default_value = "127.0.0.1:9464")]
    ops_addr: SocketAddr,
    /// How long to wait for the brokers at start.
    #[arg(long, env = "REBOUND_CONNECT_TIMEOUT", default_value = "30s", value_parser = args::duration)]
    connect_timeout: Duration,
    /// TLS and SASL of every client (consumer, DLQ producer, admin).
    #[command(flatten)]
    security: Security,
}

/// Runs the worker until SIGINT/SIGTERM, then shuts down gracefully.
pub async fn run(a: WorkerArgs) -> anyhow::Result<()> {
    // Bind first: a taken address fails before anything touches Kafka, and
    // nothing after the worker joins its group can fail.
    if let Some((field, why)) = a.route.check().into_iter().next() {
        anyhow::bail!("--{}: {why}", field.replace('_', "-"));
    }
    let ops_listener = crate::ops::bind(a.ops_addr).await?;
    let kafka = Kafka {
        brokers: a.brokers.clone(),
        props: a.security.properties()?,
        connect_timeout: a.connect_timeout,
    };
    let worker = route::start(&kafka, &a.route, prometheus::Registry::new()).await?;
    let stop = worker.shutdown_token();
    crate::shutdown::on_signals(stop.clone());
    let ops_stop = CancellationToken::new();
    let router = crate::ops::router(worker.health().clone(), worker.metrics().clone());
    crate::ops::serve(ops_listener, router, ops_stop.clone());

    // Progress: one line every 5 s while running.
    let metrics = worker.metrics().clone();
    let topic = a.route.topic.clone();
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
