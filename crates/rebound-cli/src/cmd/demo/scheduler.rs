//! The demo's scheduler stage: `rebound serve` in-process on an embedded
//! store, tasks created over its Rebound-compatible HTTP API, delivered to a
//! local HTTP endpoint (which fails some first attempts) and to a Kafka
//! topic, with one task exhausting its retries into a dead destination.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use comfy_table::{presets::UTF8_FULL, Table};
use indicatif::ProgressBar;
use rebound_producer::admin::create_topic;
use rebound_scheduler::ServeConfig;
use tokio_util::sync::CancellationToken;

/// HTTP deliveries seen by the endpoint: message key → (attempt times, failures).
#[derive(Default)]
struct Endpoint {
    attempts: Mutex<HashMap<String, Vec<i64>>>,
    /// Dead-letter envelopes received.
    dead: Mutex<Vec<serde_json::Value>>,
}

async fn dead_hook(State(e): State<Arc<Endpoint>>, body: Bytes) -> StatusCode {
    let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    e.dead.lock().expect("lock").push(v);
    StatusCode::OK
}

async fn hook(State(e): State<Arc<Endpoint>>, headers: HeaderMap, _body: Bytes) -> StatusCode {
    let key = headers
        .get("x-message-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let id = key.split('|').next().unwrap_or("").to_string();
    let n = {
        let mut a = e.attempts.lock().expect("lock");
        let v = a.entry(id.clone()).or_default();
        v.push(rebound_core::epoch_ms());
        v.len()
    };
    // Every fifth task fails its first attempt; "doomed" tasks always fail.
    let index: usize = id
        .rsplit('-')
        .next()
        .and_then(|i| i.parse().ok())
        .unwrap_or(0);
    if id.starts_with("doomed") || (index.is_multiple_of(5) && n == 1) {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// Runs the stage; prints its own table.
pub async fn run(brokers: &str, topic_prefix: &str, tasks: usize) -> anyhow::Result<()> {
    let endpoint = Arc::new(Endpoint::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook_url = format!("http://{}/hook", listener.local_addr()?);
    let dead_url = format!("http://{}/dead", listener.local_addr()?);
    let app = Router::new()
        .route("/hook", post(hook))
        .route("/dead", post(dead_hook))
        .with_state(endpoint.clone());
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await;
    });

    let deliveries = format!("{topic_prefix}.deliveries");
    create_topic(brokers, &deliveries, 1).await?;
    let dir = std::env::temp_dir().join(format!("rebound-demo-{}", std::process::id()));
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_addr = api.local_addr()?;
    let config = ServeConfig {
        http_addr: api_addr,
        store_url: format!("file://{}", dir.display()),
        kafka_brokers: brokers.to_string(),
        ..ServeConfig::default()
    };
    let sched_stop = stop.clone();
    let server = tokio::spawn(rebound_scheduler::serve::serve_on(config, api, sched_stop));

    // Half to the HTTP endpoint, half to Kafka, one doomed task.
    let client = reqwest::Client::new();
    let started = Instant::now();
    let bar = ProgressBar::new(tasks as u64);
    bar.set_message("scheduling tasks");
    for i in 0..tasks {
        let body = if i.is_multiple_of(2) {
            serde_json::json!({"id": format!("http-{i}"), "source": "demo", "destination_type": "http",
                "destination": {"url": hook_url}, "max_retries": 2, "base_delay": 1,
                "message_data": format!("{{\"n\":{i}}}")})
        } else {
            serde_json::json!({"id": format!("kafka-{i}"), "source": "demo", "destination_type": "kafka",
                "destination": {"topic": deliveries}, "max_retries": 2, "base_delay": 1,
                "message_data": format!("{{\"n\":{i}}}")})
        };
        post_task(&client, api_addr, &body).await?;
        bar.inc(1);
    }
    let doomed = serde_json::json!({"id": "doomed-0", "source": "demo", "destination_type": "http",
        "destination": {"url": hook_url}, "dead_destination": {"url": dead_url},
        "max_retries": 1, "base_delay": 1, "message_data": "{\"n\":-1}"});
    post_task(&client, api_addr, &doomed).await?;
    bar.finish_with_message(format!("scheduled {} tasks over POST /tasks", tasks + 1));

    let http_tasks = tasks.div_ceil(2);
    let kafka_tasks = tasks / 2;
    let wait = ProgressBar::new((tasks + 1) as u64);
    wait.set_message("delivering");
    let (delivered_http, delivered_kafka, dead_count) = loop {
        let http_ok = {
            let a = endpoint.attempts.lock().expect("lock");
            a.iter()
                .filter(|(id, v)| {
                    id.starts_with("http-") && {
                        let i: usize = id[5..].parse().unwrap_or(0);
                        v.len() >= if i.is_multiple_of(5) { 2 } else { 1 }
                    }
                })
                .count()
        };
        let (b, d) = (brokers.to_string(), deliveries.clone());
        let k = tokio::task::spawn_blocking(move || super::count_records(&b, &d)).await??;
        let x = endpoint.dead.lock().expect("lock").len();
        wait.set_position((http_ok + k + x) as u64);
        if http_ok >= http_tasks && k >= kafka_tasks && x >= 1 {
            break (http_ok, k, x);
        }
        if started.elapsed() > Duration::from_secs(60) {
            anyhow::bail!("the scheduler did not deliver every task within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    wait.finish_with_message("delivered");
    stop.cancel();
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);

    let attempts = endpoint.attempts.lock().expect("lock");
    let retried = attempts
        .iter()
        .filter(|(id, v)| id.starts_with("http-") && v.len() > 1)
        .count();
    let doomed_attempts = attempts.get("doomed-0").map(Vec::len).unwrap_or(0);
    let envelope = endpoint
        .dead
        .lock()
        .expect("lock")
        .first()
        .and_then(|v| v.as_object())
        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    let mut t = Table::new();
    t.load_preset(UTF8_FULL).set_header(vec![
        "destination",
        "tasks",
        "delivered",
        "after a retry",
        "dead-lettered",
    ]);
    t.add_row(vec![
        "HTTP (local endpoint)".to_string(),
        http_tasks.to_string(),
        delivered_http.to_string(),
        retried.to_string(),
        "0".into(),
    ]);
    t.add_row(vec![
        format!("Kafka ({deliveries})"),
        kafka_tasks.to_string(),
        delivered_kafka.to_string(),
        "0".into(),
        "0".into(),
    ]);
    t.add_row(vec![
        "HTTP, always failing".to_string(),
        "1".into(),
        "0".into(),
        format!("{doomed_attempts} attempts"),
        format!("{dead_count} (JSON envelope)"),
    ]);
    println!(
        "\nrebound scheduler (embedded store, Rebound's HTTP API): first delivery at +1 s, retries at 1 s · 2^(n-1)\n{t}\n\
         The dead destination received the payload with its provenance: {envelope}."
    );
    Ok(())
}

async fn post_task(
    client: &reqwest::Client,
    addr: std::net::SocketAddr,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    let r = client
        .post(format!("http://{addr}/tasks"))
        .json(body)
        .send()
        .await
        .context("POST /tasks")?;
    if r.status() != 201 {
        anyhow::bail!("POST /tasks answered {}: {}", r.status(), r.text().await?);
    }
    Ok(())
}
