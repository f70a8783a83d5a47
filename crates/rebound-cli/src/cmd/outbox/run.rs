//! `rebound outbox run`: the relay, its ops endpoints and a progress line.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use prometheus::Registry;
use rebound_outbox::{Relay, RelayConfig, RelayHealth, RelayMetrics};
use rebound_producer::ProducerMetrics;
use rebound_worker::HealthReport;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::TableArgs;
use crate::args;
use crate::ops::OpsSource;

/// Flags of `rebound outbox run`; each also reads the environment variable shown.
#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    db: TableArgs,
    /// Kafka bootstrap servers, host:port[,host:port].
    #[arg(long, env = "REBOUND_BROKERS", value_parser = args::non_empty)]
    brokers: String,
    /// Rows per batch (a crash re-publishes at most one batch).
    #[arg(long, env = "REBOUND_OUTBOX_BATCH_SIZE", default_value_t = 1000,
          value_parser = clap::value_parser!(u32).range(1..))]
    batch_size: u32,
    /// Keep published rows this long before deleting them (0: delete at once).
    #[arg(long, env = "REBOUND_OUTBOX_RETENTION", default_value = "0", value_parser = args::duration)]
    retention: Duration,
    /// Polling interval when no notification arrives (PostgreSQL wakes on commit).
    #[arg(long, env = "REBOUND_OUTBOX_POLL_INTERVAL", default_value = "1s", value_parser = args::duration)]
    poll_interval: Duration,
    /// Send rows that can never be published here too.
    #[arg(long, env = "REBOUND_OUTBOX_DEAD_LETTER_TOPIC", value_parser = args::topic)]
    dead_letter_topic: Option<String>,
    /// Largest record accepted, in bytes; larger rows are marked failed.
    #[arg(
        long,
        env = "REBOUND_OUTBOX_MAX_MESSAGE_SIZE",
        default_value_t = 1_000_000
    )]
    max_message_size: usize,
    /// Create the table first if it is missing.
    #[arg(long)]
    init: bool,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, env = "REBOUND_OPS_ADDR", default_value = "127.0.0.1:9465")]
    ops_addr: SocketAddr,
    /// TLS and SASL of the relay's producer.
    #[command(flatten)]
    security: crate::security::Security,
}

struct RelayOps {
    health: Arc<RelayHealth>,
    registry: Registry,
}

impl OpsSource for RelayOps {
    fn report(&self) -> HealthReport {
        let r = self.health.report();
        HealthReport {
            live: r.live,
            ready: r.ready,
            reasons: r.reasons,
        }
    }
    fn metrics(&self) -> String {
        rebound_producer::metrics::encode(&self.registry)
    }
}

pub async fn run(a: RunArgs) -> anyhow::Result<()> {
    let ops_listener = crate::ops::bind(a.ops_addr).await?;
    if a.init {
        rebound_outbox::init(&a.db.database_url, &a.db.table).await?;
    }
    let registry = Registry::new();
    let metrics = Arc::new(RelayMetrics::in_registry(registry.clone()));
    let health = Arc::new(RelayHealth::default());
    let producer = crate::security::producer_config(&a.brokers, &a.security.properties()?)
        .with_max_message_size(a.max_message_size)
        .with_metrics(Arc::new(ProducerMetrics::in_registry(registry.clone())));
    let mut config = RelayConfig::new(&a.db.database_url, producer)?
        .with_table(a.db.table.clone())
        .with_batch_size(a.batch_size as usize)
        .with_retention(a.retention)
        .with_poll_interval(a.poll_interval)
        .with_metrics(metrics.clone())
        .with_health(health.clone());
    if let Some(t) = &a.dead_letter_topic {
        config = config.with_dead_letter_topic(t);
    }
    let relay = Relay::new(config)?;
    let stop = CancellationToken::new();
    crate::shutdown::on_signals(stop.clone());
    let ops_stop = CancellationToken::new();
    crate::ops::serve(
        ops_listener,
        crate::ops::router_for(Arc::new(RelayOps { health, registry })),
        ops_stop.clone(),
    );
    info!(table = %a.db.table, brokers = %a.brokers, "starting outbox relay");
    let progress = progress(metrics, stop.clone());
    let result = relay.run(stop).await;
    progress.abort();
    ops_stop.cancel();
    result?;
    info!("outbox relay stopped");
    Ok(())
}

/// One line every 5 s: published, rate, pending, oldest pending, active.
fn progress(m: Arc<RelayMetrics>, stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    let mut last = 0u64;
    crate::ops::progress(stop, move |uptime| {
        let done = m.published.get();
        info!(
            published = done,
            rate_per_s = (done - last) / 5,
            pending = m.pending.get(),
            oldest_pending_s = m.oldest_pending_seconds.get(),
            active = m.active.get() == 1,
            uptime_s = uptime.as_secs(),
            "progress"
        );
        last = done;
    })
}
