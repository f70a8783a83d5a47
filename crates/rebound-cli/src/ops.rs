//! `/healthz`, `/readyz` and `/metrics` for a running service (a worker,
//! an outbox relay): anything that is an [`OpsSource`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use rebound_worker::{Health, HealthReport, Metrics, Probe};
use tokio_util::sync::CancellationToken;

/// What the operations endpoints report.
pub trait OpsSource: Send + Sync + 'static {
    /// Liveness, readiness and the reasons.
    fn report(&self) -> HealthReport;
    /// Prometheus text of the process's registry.
    fn metrics(&self) -> String;
}

struct WorkerOps {
    health: Arc<Health>,
    metrics: Arc<Metrics>,
}

impl OpsSource for WorkerOps {
    fn report(&self) -> HealthReport {
        self.health.report()
    }
    fn metrics(&self) -> String {
        self.metrics.encode()
    }
}

type Ops = Arc<dyn OpsSource>;

/// The operations router of a worker.
pub fn router(health: Arc<Health>, metrics: Arc<Metrics>) -> Router {
    router_for(Arc::new(WorkerOps { health, metrics }))
}

/// The operations router of any service.
pub fn router_for(source: Arc<dyn OpsSource>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(source)
}

async fn healthz(State(ops): State<Ops>) -> impl IntoResponse {
    probe(ops.report(), Probe::Live)
}

async fn readyz(State(ops): State<Ops>) -> impl IntoResponse {
    probe(ops.report(), Probe::Ready)
}

/// The one health shape, 200 when `which` passes and 503 when it does not.
pub fn probe(report: HealthReport, which: Probe) -> impl IntoResponse {
    let code = StatusCode::from_u16(report.status(which)).expect("200 or 503");
    (code, Json(report))
}

async fn metrics_text(State(ops): State<Ops>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ops.metrics(),
    )
}

/// How often long-running commands log a progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Calls `line` every 5 s with the uptime, until `stop`: the `progress`
/// log lines of long-running commands (rates are per 5 s).
pub fn progress(
    stop: CancellationToken,
    mut line: impl FnMut(Duration) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = std::time::Instant::now();
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => line(started.elapsed()),
                _ = stop.cancelled() => return,
            }
        }
    })
}

/// Binds the operations address. Done before anything joins a consumer
/// group, so a taken port fails the command before it touches the group.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--ops-addr {addr}: cannot listen: {e}"))
}

/// Serves the router on `listener` until `stop` is cancelled.
pub fn serve(listener: tokio::net::TcpListener, router: Router, stop: CancellationToken) {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /healthz /readyz /metrics");
    }
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async move { stop.cancelled().await })
            .await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    #[tokio::test]
    async fn not_ready_before_joining_and_metrics_are_prometheus_text() {
        let app = router(Arc::new(Health::default()), Arc::new(Metrics::new()));
        let r = app
            .clone()
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v["reasons"].to_string().contains("not yet assigned"), "{v}");
        // Never polled: neither live nor ready, in the one health shape.
        assert_eq!(
            (&v["live"], &v["ready"]),
            (&false.into(), &false.into()),
            "{v}"
        );

        let r = app
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("rebound_in_flight"), "{text}");
    }
}
