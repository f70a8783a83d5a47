//! The HTTP API: Rebound's `POST /tasks` and `GET /health`, plus task
//! lookup, cancel, list, batch create, `/metrics`, `/healthz`, `/readyz`.
//!
//! | route | success | errors |
//! |---|---|---|
//! | `POST /tasks` | 201 created; 200 same id and identical body | 400 `INVALID_BODY` / `VALIDATION_ERROR`, 409 `CONFLICT` (same id, different body), 413 `PAYLOAD_TOO_LARGE` |
//! | `POST /tasks/batch` | 200 with a result per task | 400, 413 |
//! | `GET /tasks/{id}` | 200 | 404 `NOT_FOUND` |
//! | `DELETE /tasks/{id}` | 200 | 404, 409 (already finished) |
//! | `GET /tasks` | 200 page | 400 |
//! | `GET /health` | 200 healthy | 503 unhealthy (Rebound's shape) |
//! | `GET /healthz`, `GET /readyz` | 200 | 503, both as `{"live", "ready", "reasons"}` (every rebound service's shape); ready when the store answers |
//!
//! Any route: 405 `METHOD_NOT_ALLOWED`, 404 `NOT_FOUND`, 401 `UNAUTHORIZED`
//! (task routes, when a bearer token is configured), 500 `INTERNAL_ERROR`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rebound_worker::{HealthReport, Probe};
use serde_json::json;

use crate::scheduler::Scheduler;

pub mod error;
pub mod tasks;

pub use error::ApiError;

/// Shared state of the router.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The scheduler behind the API.
    pub scheduler: Scheduler,
    /// Bearer token required on task routes, if any.
    pub auth_token: Option<Arc<str>>,
    /// The last readiness `/readyz` found, which `/healthz` reports without
    /// waiting on the store.
    last_ready: Arc<std::sync::Mutex<HealthReport>>,
}

impl AppState {
    /// State without authentication.
    pub fn new(scheduler: Scheduler) -> Self {
        AppState {
            scheduler,
            auth_token: None,
            last_ready: Arc::new(std::sync::Mutex::new(HealthReport::from_checks([(
                "store",
                Err("not checked yet".to_string()),
            )]))),
        }
    }

    /// Requires `Authorization: Bearer <token>` on task routes.
    pub fn with_auth_token(mut self, token: impl Into<Arc<str>>) -> Self {
        self.auth_token = Some(token.into());
        self
    }
}

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    let tasks = Router::new()
        .route("/tasks", post(tasks::create).get(tasks::list))
        .route("/tasks/batch", post(tasks::create_batch))
        .route("/tasks/{id}", get(tasks::get).delete(tasks::cancel))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .merge(tasks)
        .route("/health", get(health))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

async fn count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    state
        .scheduler
        .metrics()
        .http_responses
        .with_label_values(&[resp.status().as_str()])
        .inc();
    resp
}

async fn auth(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.auth_token {
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|t| t.trim() == &**token);
        if !ok {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "missing or wrong bearer token in the Authorization header",
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "METHOD_NOT_ALLOWED",
        format!(
            "method {} is not allowed on {}",
            req.method(),
            req.uri().path()
        ),
    )
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("no route for {}", req.uri().path()))
}

/// `GET /health` (Rebound's shape): the store's check, 200 or 503.
async fn health(State(state): State<AppState>) -> Response {
    let name = state.scheduler.store().name();
    match state.scheduler.health().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "healthy", "checks": {name: "ok"}})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unhealthy", "checks": {name: rebound_core::DisplayChain(&e).to_string()}})),
        )
            .into_response(),
    }
}

/// `GET /healthz`: liveness, at once (a slow store must not fail it), with
/// the readiness the last `/readyz` found.
async fn healthz(State(state): State<AppState>) -> Response {
    let last = state.last_ready.lock().expect("health lock").clone();
    probe(last, Probe::Live)
}

/// `GET /readyz`: ready when the store answers, in rebound's one health shape.
async fn readyz(State(state): State<AppState>) -> Response {
    let report = state.scheduler.health_report().await;
    *state.last_ready.lock().expect("health lock") = report.clone();
    probe(report, Probe::Ready)
}

fn probe(report: HealthReport, which: Probe) -> Response {
    let code = StatusCode::from_u16(report.status(which)).expect("200 or 503");
    (code, Json(report)).into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.scheduler.metrics().encode(),
    )
        .into_response()
}
