//! `rebound run CONFIG.toml`: the Kafka → HTTP routes of a config file in
//! one process, with one `/healthz`, `/readyz`, `/metrics`; SIGHUP reloads
//! the file. `--check` validates it without connecting.
//!
//! - `ops`: the endpoints over every route.
//! - `routes`: the running routes and how a reload changes them.

mod ops;
mod routes;

use std::path::PathBuf;

use clap::Args;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::pipeline;

/// Flags of `rebound run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The config file (TOML: `[kafka]`, `ops_addr`, `[[route]]`...).
    config: PathBuf,
    /// Check the file and print every error with its line and field; connect to nothing.
    #[arg(long)]
    check: bool,
}

/// Runs the routes until SIGINT/SIGTERM; reloads on SIGHUP.
pub async fn run(a: RunArgs) -> anyhow::Result<()> {
    let loaded = pipeline::load(&a.config);
    if a.check {
        let p = loaded?;
        println!(
            "{}: OK ({} route{})",
            a.config.display(),
            p.routes.len(),
            if p.routes.len() == 1 { "" } else { "s" }
        );
        return Ok(());
    }
    let config = loaded?;
    // SIGHUP is caught from here on: a reload before the routes are up waits.
    let mut hangups = crate::shutdown::Hangups::listen()?;
    let ops_listener = crate::ops::bind(config.ops_addr).await?;
    let stop = CancellationToken::new();
    crate::shutdown::on_signals(stop.clone());
    let endpoints = ops::PipelineOps::default();
    let ops_stop = CancellationToken::new();
    let router = crate::ops::router_for(std::sync::Arc::new(endpoints.clone()));
    crate::ops::serve(ops_listener, router, ops_stop.clone());

    let mut routes = routes::Routes::new(endpoints);
    let started = routes.apply(&config).await;
    if let Err(e) = started {
        routes.stop_all().await;
        ops_stop.cancel();
        return Err(e);
    }
    let mut running = config;
    let progress = routes.progress(stop.clone());
    let mut watch = tokio::time::interval(std::time::Duration::from_secs(1));
    let outcome = loop {
        tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            _ = hangups.next() => {
                info!(file = %a.config.display(), "SIGHUP: reloading the config");
                match pipeline::load(&a.config) {
                    Err(e) => error!(
                        "config reload refused, the running config stays: {}",
                        e.to_string().replace('\n', "; ")
                    ),
                    Ok(new) => {
                        if new.ops_addr != running.ops_addr {
                            error!(old = %running.ops_addr, new = %new.ops_addr,
                                   "ops_addr changes need a restart; serving the old address");
                        }
                        if let Err(e) = routes.apply(&new).await {
                            error!(error = %rebound_core::DisplayChain(e.as_ref()), "reload applied in part");
                        }
                        running = new;
                    }
                }
            }
            _ = watch.tick() => {
                if let Some(name) = routes.ended() {
                    break Err(anyhow::anyhow!("route {name} stopped on its own; stopping every route"));
                }
            }
        }
    };
    progress.abort();
    routes.stop_all().await;
    ops_stop.cancel();
    outcome
}
