//! [`serve`]: the HTTP API, the dispatcher and the optional Kafka ingress,
//! until a cancellation token fires; then a graceful stop.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServeConfig;
use crate::deliver::{Deliver, Deliverer};
use crate::error::{Error, Result};
use crate::http::{router, AppState};
use crate::scheduler::Scheduler;
use crate::store;

/// Opens the store, binds `config.http_addr` and runs everything until
/// `shutdown` is cancelled.
pub async fn serve(config: ServeConfig, shutdown: CancellationToken) -> Result<()> {
    let listener = TcpListener::bind(config.http_addr)
        .await
        .map_err(|source| Error::Http {
            addr: config.http_addr.to_string(),
            source,
        })?;
    serve_on(config, listener, shutdown).await
}

/// Like [`serve`] on an already bound listener (tests bind port 0).
pub async fn serve_on(
    config: ServeConfig,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let store = store::open(&config.store_url).await?;
    let sched = Scheduler::builder(store)
        .with_limits(config.limits)
        .build()?;
    let deliver: Arc<dyn Deliver> = Arc::new(Deliverer::with_options(
        config.kafka_brokers.clone(),
        sched.metrics().producer.clone(),
        config.kafka_config.clone(),
        config.http.clone(),
    ));
    run(config, sched, deliver, listener, shutdown).await
}

/// Runs the API, dispatcher and ingress over an existing scheduler.
pub async fn run(
    config: ServeConfig,
    sched: Scheduler,
    deliver: Arc<dyn Deliver>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<()> {
    let addr: SocketAddr = listener.local_addr().map_err(|source| Error::Http {
        addr: config.http_addr.to_string(),
        source,
    })?;
    let tracker = TaskTracker::new();
    let dispatcher = sched.dispatcher(deliver, config.dispatch.clone());
    tracker.spawn(dispatcher.run(shutdown.clone()));
    if let Some(topic) = config.ingress_topic.clone() {
        let (s, b, g, t) = (
            sched.clone(),
            config.kafka_brokers.clone(),
            config.ingress_group.clone(),
            shutdown.clone(),
        );
        let kafka_config = config.kafka_config.clone();
        tracker.spawn(async move {
            let ingress = crate::ingress::Ingress {
                brokers: &b,
                kafka_config: &kafka_config,
                topic: &topic,
                group: &g,
            };
            if let Err(e) = crate::ingress::run(s, ingress, t.clone()).await {
                tracing::error!(error = %rebound_core::DisplayChain(&e), "task ingress stopped; shutting down");
                t.cancel();
            }
        });
    }
    let mut state = AppState::new(sched);
    if let Some(token) = &config.auth_token {
        state = state.with_auth_token(token.as_str());
    }
    tracing::info!(%addr, store = %rebound_core::error::without_password(&config.store_url), "scheduler serving");
    let token = shutdown.clone();
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { token.cancelled().await })
        .await;
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    served.map_err(|source| Error::Http {
        addr: addr.to_string(),
        source,
    })
}
