//! `rebound serve`: the delayed-retry scheduler service (wire-compatible
//! with Rebound). Settings come from Rebound's environment names
//! (`HTTP_ADDR`, `REDIS_MODE`, `REDIS_HOST`, …, `KAFKA_BROKERS`) and these
//! flags, which win over the environment.

use std::net::SocketAddr;

use anyhow::Context;
use clap::Args;
use rebound_scheduler::ServeConfig;
use tokio_util::sync::CancellationToken;

use crate::args;
use crate::security::Security;

/// Flags of `rebound serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address of the HTTP API: host:port, or :port for every
    /// interface as Rebound's HTTP_ADDR writes it (default :8080).
    #[arg(long, env = "HTTP_ADDR", value_parser = args::listen_addr)]
    http_addr: Option<SocketAddr>,
    /// Task store: `file://PATH` (embedded, crash-safe, the default
    /// `file://rebound-data`) or `redis://HOST:PORT` (also built from REDIS_MODE,
    /// REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_MASTER_NAME,
    /// REDIS_SENTINEL_ADDRS, REDIS_CLUSTER_ADDRS).
    #[arg(long, env = "REBOUND_STORE", value_parser = args::non_empty)]
    store: Option<String>,
    /// Default Kafka bootstrap servers for destinations without a host.
    #[arg(long, env = "KAFKA_BROKERS", value_parser = args::non_empty)]
    kafka_brokers: Option<String>,
    /// Require `Authorization: Bearer TOKEN` on the task routes.
    #[arg(long, env = "REBOUND_AUTH_TOKEN", value_parser = args::non_empty, hide_env_values = true)]
    auth_token: Option<String>,
    /// Also create tasks from JSON records on this topic.
    #[arg(long, env = "REBOUND_INGRESS_TOPIC", value_parser = args::topic)]
    ingress_topic: Option<String>,
    /// Sign HTTP deliveries (Standard Webhooks) with this `whsec_<base64>` secret.
    #[arg(long, env = "REBOUND_WEBHOOK_SECRET", hide_env_values = true,
          value_parser = args::webhook_secret)]
    webhook_secret: Option<rebound_core::webhook::WebhookSecret>,
    /// Refuse HTTP destinations (and redirect hops) on loopback, private and
    /// link-local addresses: the task goes to its dead destination at once.
    /// (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`.)
    #[arg(long, env = "REBOUND_BLOCK_PRIVATE_DESTINATIONS", default_value = "false",
          num_args = 0..=1, default_missing_value = "true", value_parser = switch)]
    block_private_destinations: bool,
    /// `ip:port` destinations let through although private (comma separated,
    /// spaces allowed; only as IP literals in task URLs).
    #[arg(long, env = "REBOUND_ALLOWED_DESTINATIONS", value_parser = allowed)]
    allowed_destinations: Option<Allowed>,
    /// TLS and SASL of the Kafka deliveries and the ingress.
    #[command(flatten)]
    security: Security,
}

/// `--block-private-destinations`' values: the library's grammar, so the
/// flag and its variable read the same.
fn switch(s: &str) -> Result<bool, String> {
    rebound_scheduler::config::parse_switch(s)
        .ok_or_else(|| format!("must be true or false, got {s:?}"))
}

/// `--allowed-destinations`: one comma-separated list, read as the library
/// reads REBOUND_ALLOWED_DESTINATIONS.
#[derive(Debug, Clone)]
struct Allowed(Vec<SocketAddr>);

fn allowed(s: &str) -> Result<Allowed, String> {
    rebound_scheduler::config::parse_allowed(s)
        .map(Allowed)
        .map_err(|e| rebound_core::DisplayChain(&e).to_string())
}

/// Runs the scheduler until SIGINT/SIGTERM.
pub async fn run(a: ServeArgs) -> anyhow::Result<()> {
    // `--store` stands for REBOUND_STORE: the REDIS_* names are then not
    // read (nor refused).
    let store = a.store;
    let mut config = ServeConfig::from_lookup(|k| match (k, &store) {
        ("REBOUND_STORE", Some(s)) => Some(s.clone()),
        _ => std::env::var(k).ok(),
    })
    .context("invalid scheduler environment")?;
    if let Some(addr) = a.http_addr {
        config.http_addr = addr;
    }
    if let Some(b) = a.kafka_brokers {
        config.kafka_brokers = b;
    }
    if a.auth_token.is_some() {
        config.auth_token = a.auth_token;
    }
    if a.ingress_topic.is_some() {
        config.ingress_topic = a.ingress_topic;
    }
    config.kafka_config = a.security.properties()?;
    if a.webhook_secret.is_some() {
        config.http.secret = a.webhook_secret;
    }
    if a.block_private_destinations {
        config.http.guard = Some(rebound_scheduler::deliver::guard::Guard {
            allow: a.allowed_destinations.map(|a| a.0).unwrap_or_default(),
        });
    }
    tracing::info!(
        addr = %config.http_addr, store = %rebound_core::error::without_password(&config.store_url), kafka = %config.kafka_brokers,
        signed = config.http.secret.is_some(), block_private_destinations = config.http.guard.is_some(),
        "starting the scheduler"
    );
    let stop = CancellationToken::new();
    crate::shutdown::on_signals(stop.clone());
    rebound_scheduler::serve(config, stop)
        .await
        .context("scheduler stopped with an error")
}
