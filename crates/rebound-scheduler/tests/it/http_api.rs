//! Every route, status and error code of the HTTP API through
//! `Router::oneshot`, over the embedded store (and a real Redis that is
//! stopped, for 503 and 500).

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use rebound_scheduler::http::{router, AppState};
use rebound_scheduler::store::file::FileStore;
use rebound_scheduler::validate::Limits;
use rebound_scheduler::Scheduler;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::common::{http_task, OwnRedis};

async fn app_with(limits: Limits, token: Option<&str>) -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FileStore::open(dir.path()).await.unwrap());
    let sched = Scheduler::builder(store)
        .with_limits(limits)
        .build()
        .unwrap();
    let mut state = AppState::new(sched);
    if let Some(t) = token {
        state = state.with_auth_token(t);
    }
    (router(state), dir)
}

async fn app() -> (Router, tempfile::TempDir) {
    app_with(Limits::default(), None).await
}

async fn call(app: &Router, method: &str, uri: &str, body: Option<String>) -> (StatusCode, Value) {
    call_with(app, method, uri, body, None).await
}

async fn call_with(
    app: &Router,
    method: &str,
    uri: &str,
    body: Option<String>,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let req = req
        .body(body.map(Body::from).unwrap_or_else(Body::empty))
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, v)
}

fn task(id: &str) -> Value {
    http_task(id, "http://127.0.0.1:9/hook", 3, 5)
}

fn assert_error(got: (StatusCode, Value), status: StatusCode, code: &str, mentions: &str) {
    assert_eq!(got.0, status, "{:?}", got.1);
    assert_eq!(got.1["code"], code, "{:?}", got.1);
    let msg = got.1["error"].as_str().unwrap();
    assert!(
        msg.contains(mentions),
        "error {msg:?} should mention {mentions:?}"
    );
}

#[tokio::test]
async fn create_is_201_then_200_for_identical_then_409_for_different() {
    let (app, _d) = app().await;
    let body = task("t-1").to_string();
    let (s, v) = call(&app, "POST", "/tasks", Some(body.clone())).await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(v, json!({"message": "Task t-1 scheduled successfully"}));
    let (s, v) = call(&app, "POST", "/tasks", Some(body)).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"message": "Task t-1 scheduled successfully"}));
    let mut other = task("t-1");
    other["message_data"] = "different".into();
    assert_error(
        call(&app, "POST", "/tasks", Some(other.to_string())).await,
        StatusCode::CONFLICT,
        "CONFLICT",
        "t-1",
    );
}

#[tokio::test]
async fn bad_bodies_are_400_naming_the_field() {
    let (app, _d) = app().await;
    assert_error(
        call(&app, "POST", "/tasks", Some("{not json".into())).await,
        StatusCode::BAD_REQUEST,
        "INVALID_BODY",
        "",
    );
    let mut t = task("x");
    t["max_retries"] = "three".into();
    assert_error(
        call(&app, "POST", "/tasks", Some(t.to_string())).await,
        StatusCode::BAD_REQUEST,
        "INVALID_BODY",
        "max_retries",
    );
    let cases: Vec<(&str, Value, &str)> = vec![
        ("id", Value::Null, "id"),
        ("source", Value::Null, "source"),
        ("max_retries", json!(101), "max_retries"),
        ("max_retries", json!(-1), "max_retries"),
        ("base_delay", json!(0), "base_delay"),
        ("base_delay", json!(3601), "base_delay"),
        ("base_delay", Value::Null, "base_delay"),
        ("destination_type", json!("smtp"), "destination_type"),
        ("destination_type", Value::Null, "destination_type"),
        ("destination", json!({}), "destination.url"),
        ("destination", Value::Null, "destination"),
        (
            "dead_destination",
            json!({"url": "ftp://x"}),
            "dead_destination.url",
        ),
    ];
    for (field, value, mentions) in cases {
        let mut t = task("x");
        if value.is_null() {
            t.as_object_mut().unwrap().remove(field);
        } else {
            t[field] = value;
        }
        assert_error(
            call(&app, "POST", "/tasks", Some(t.to_string())).await,
            StatusCode::BAD_REQUEST,
            "VALIDATION_ERROR",
            mentions,
        );
    }
    let mut k = task("k");
    k["destination_type"] = "kafka".into();
    assert_error(
        call(&app, "POST", "/tasks", Some(k.to_string())).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        "destination.topic",
    );
}

#[tokio::test]
async fn wrong_method_is_405() {
    let (app, _d) = app().await;
    for (m, uri) in [
        ("PUT", "/tasks"),
        ("GET", "/tasks/batch"),
        ("POST", "/health"),
        ("PATCH", "/tasks/x"),
    ] {
        assert_error(
            call(&app, m, uri, None).await,
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            m,
        );
    }
    assert_error(
        call(&app, "GET", "/nope", None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "/nope",
    );
}

#[tokio::test]
async fn oversized_message_data_is_413_stating_the_limit() {
    let limits = Limits {
        max_message_bytes: 1000,
        ..Limits::default()
    };
    let (app, _d) = app_with(limits, None).await;
    let mut t = task("big");
    t["message_data"] = "x".repeat(1001).into();
    assert_error(
        call(&app, "POST", "/tasks", Some(t.to_string())).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        "1000 bytes",
    );
    t["message_data"] = "x".repeat(1000).into();
    assert_eq!(
        call(&app, "POST", "/tasks", Some(t.to_string())).await.0,
        StatusCode::CREATED
    );
    let limits = Limits {
        max_body_bytes: 2000,
        ..Limits::default()
    };
    let (app, _d2) = app_with(limits, None).await;
    let mut t = task("huge");
    t["message_data"] = "x".repeat(5000).into();
    assert_error(
        call(&app, "POST", "/tasks", Some(t.to_string())).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        "2000 bytes",
    );
}

#[tokio::test]
async fn get_cancel_and_list() {
    let (app, _d) = app().await;
    for i in 0..5 {
        let mut t = task(&format!("l-{i}"));
        t["client_id"] = if i % 2 == 0 { "even" } else { "odd" }.into();
        assert_eq!(
            call(&app, "POST", "/tasks", Some(t.to_string())).await.0,
            StatusCode::CREATED
        );
    }
    let (s, v) = call(&app, "GET", "/tasks/l-1", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["state"], "scheduled");
    assert_eq!(v["attempts"], 0);
    assert_eq!(v["client_id"], "odd");
    // Due at once (Rebound parity), unless first_delay says otherwise.
    assert_eq!(
        v["next_due_ms"].as_u64().unwrap(),
        v["created_at_ms"].as_u64().unwrap()
    );
    assert_error(
        call(&app, "GET", "/tasks/none", None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "none",
    );

    let (s, v) = call(&app, "DELETE", "/tasks/l-1", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(
        call(&app, "GET", "/tasks/l-1", None).await.1["state"],
        "cancelled"
    );
    assert_error(
        call(&app, "DELETE", "/tasks/l-1", None).await,
        StatusCode::CONFLICT,
        "CONFLICT",
        "cancelled",
    );
    assert_error(
        call(&app, "DELETE", "/tasks/none", None).await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        "none",
    );

    let (s, v) = call(&app, "GET", "/tasks?client_id=even&limit=2", None).await;
    assert_eq!(s, StatusCode::OK);
    let first: Vec<&str> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(first, ["l-0", "l-2"]);
    let cursor = v["next_cursor"].as_str().unwrap().to_string();
    let (_, v) = call(
        &app,
        "GET",
        &format!("/tasks?client_id=even&limit=2&cursor={cursor}"),
        None,
    )
    .await;
    let rest: Vec<&str> = v["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["l-4"]);
    assert!(v["next_cursor"].is_null());
    let (_, v) = call(&app, "GET", "/tasks?state=cancelled", None).await;
    assert_eq!(v["tasks"].as_array().unwrap().len(), 1);
    assert_error(
        call(&app, "GET", "/tasks?state=bogus", None).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        "state",
    );
    assert_error(
        call(&app, "GET", "/tasks?limit=0", None).await,
        StatusCode::BAD_REQUEST,
        "VALIDATION_ERROR",
        "limit",
    );
}

#[tokio::test]
async fn batch_reports_each_task() {
    let (app, _d) = app().await;
    assert_eq!(
        call(&app, "POST", "/tasks", Some(task("b-0").to_string()))
            .await
            .0,
        StatusCode::CREATED
    );
    let mut bad = task("b-2");
    bad["base_delay"] = 0.into();
    let body = json!({"tasks": [task("b-0"), task("b-1"), bad, task("b-1")]});
    let (s, v) = call(&app, "POST", "/tasks/batch", Some(body.to_string())).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let statuses: Vec<u64> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 201, 400, 200]);
    assert_eq!(v["created"], 1);
    assert!(v["results"][2]["error"]
        .as_str()
        .unwrap()
        .contains("base_delay"));
    assert_error(
        call(&app, "POST", "/tasks/batch", Some("[1,".into())).await,
        StatusCode::BAD_REQUEST,
        "INVALID_BODY",
        "",
    );
}

#[tokio::test]
async fn bearer_token_guards_task_routes_only() {
    let (app, _d) = app_with(Limits::default(), Some("s3cret")).await;
    let body = task("a-1").to_string();
    assert_error(
        call(&app, "POST", "/tasks", Some(body.clone())).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "bearer",
    );
    assert_error(
        call_with(&app, "POST", "/tasks", Some(body.clone()), Some("wrong")).await,
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "bearer",
    );
    assert_eq!(
        call_with(&app, "POST", "/tasks", Some(body), Some("s3cret"))
            .await
            .0,
        StatusCode::CREATED
    );
    assert_eq!(call(&app, "GET", "/health", None).await.0, StatusCode::OK);
}

#[tokio::test]
async fn health_metrics_and_probes() {
    let (app, _d) = app().await;
    let (s, v) = call(&app, "GET", "/health", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, json!({"status": "healthy", "checks": {"file": "ok"}}));
    // /healthz and /readyz: the health shape every rebound service answers.
    // /healthz answers at once with what the last /readyz found.
    let (s, v) = call(&app, "GET", "/healthz", None).await;
    assert_eq!(
        (s, &v["live"], &v["ready"]),
        (StatusCode::OK, &json!(true), &json!(false))
    );
    assert_eq!(v["reasons"], json!(["store: not checked yet"]));
    let up = json!({"live": true, "ready": true, "reasons": []});
    assert_eq!(
        call(&app, "GET", "/readyz", None).await,
        (StatusCode::OK, up.clone())
    );
    assert_eq!(
        call(&app, "GET", "/healthz", None).await,
        (StatusCode::OK, up)
    );
    assert_eq!(
        call(&app, "POST", "/tasks", Some(task("m-1").to_string()))
            .await
            .0,
        StatusCode::CREATED
    );
    let (s, v) = call(&app, "GET", "/metrics", None).await;
    assert_eq!(s, StatusCode::OK);
    let text = v.as_str().unwrap();
    assert!(
        text.contains("rebound_scheduler_tasks_created_total 1"),
        "{text}"
    );
}

#[tokio::test]
async fn store_down_is_503_health_and_500_internal_error() {
    let mut redis = OwnRedis::start();
    let url = format!("redis://127.0.0.1:{}?prefix=down", redis.port);
    let store = rebound_scheduler::store::open(&url).await.unwrap();
    let app = router(AppState::new(Scheduler::new(store)));
    let (s, v) = call(&app, "GET", "/health", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["checks"]["redis"], "ok");
    redis.child.kill().unwrap();
    redis.child.wait().unwrap();
    let (s, v) = call(&app, "GET", "/health", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(v["status"], "unhealthy");
    assert_ne!(v["checks"]["redis"], "ok");
    // Not ready, but live: restarting the process would not bring Redis back.
    let (s, v) = call(&app, "GET", "/readyz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert_eq!(
        (&v["live"], &v["ready"]),
        (&json!(true), &json!(false)),
        "{v}"
    );
    assert!(
        v["reasons"][0].as_str().unwrap().starts_with("redis: "),
        "{v}"
    );
    assert_eq!(call(&app, "GET", "/healthz", None).await.0, StatusCode::OK);
    assert_error(
        call(&app, "POST", "/tasks", Some(task("i-1").to_string())).await,
        StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL_ERROR",
        "redis",
    );
}
