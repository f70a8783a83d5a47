//! **Guarantee shown: delivered later, with backoff, or dead-lettered —
//! never dropped.** A client schedules a webhook with `POST /tasks` (the
//! same JSON as Rebound's task service); the endpoint fails twice, and the
//! scheduler delivers attempt 0 at once, attempt 1 after `base_delay`,
//! attempt 2 after `2 · base_delay`, each with `X-Message-Key` and
//! `Idempotency-Key: <id>|<attempt>`. A second task whose endpoint never
//! recovers goes to its dead destination with an envelope.
//!
//! ```sh
//! cargo run -p rebound-scheduler --example scheduler_client
//! ```
//! Runs the scheduler in-process on an embedded (`memory://`) store and two
//! HTTP endpoints on 127.0.0.1; no external service is needed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use rebound_scheduler::ServeConfig;
use tokio_util::sync::CancellationToken;

/// Calls the endpoints received: (path, key, seconds since start).
type Calls = Arc<Mutex<Vec<(String, String, f64)>>>;

async fn hook(
    State((calls, started)): State<(Calls, Instant)>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> StatusCode {
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let mut calls = calls.lock().unwrap();
    calls.push((name.clone(), key, started.elapsed().as_secs_f64()));
    let tries = calls.iter().filter(|c| c.0 == name).count();
    match name.as_str() {
        "flaky" if tries <= 2 => StatusCode::SERVICE_UNAVAILABLE,
        "down" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::OK,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let calls: Calls = Default::default();
    let endpoint = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", endpoint.local_addr()?);
    let app = Router::new()
        .route("/{name}", post(hook))
        .with_state((calls.clone(), started));
    tokio::spawn(async move { axum::serve(endpoint, app).await });

    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api_url = format!("http://{}", api.local_addr()?);
    let config = ServeConfig {
        store_url: "memory://".into(),
        ..ServeConfig::default()
    };
    let stop = CancellationToken::new();
    let served = tokio::spawn(rebound_scheduler::serve::serve_on(
        config,
        api,
        stop.clone(),
    ));

    let client = reqwest::Client::new();
    for (id, path, retries) in [("order-1", "flaky", 3), ("order-2", "down", 1)] {
        let task = serde_json::json!({
            "id": id, "source": "example", "destination_type": "http",
            "destination": {"url": format!("{base}/{path}")},
            "dead_destination": {"url": format!("{base}/dead")},
            "max_retries": retries, "base_delay": 1,
            "message_data": format!("{{\"order\":\"{id}\"}}")
        });
        let r = client
            .post(format!("{api_url}/tasks"))
            .json(&task)
            .send()
            .await?;
        println!("POST /tasks {id}: {} {}", r.status(), r.text().await?);
    }

    // flaky: 3 calls (the third succeeds); down: 2 calls, then the dead destination.
    let deadline = Instant::now() + Duration::from_secs(30);
    while calls.lock().unwrap().len() < 6 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    served.await??;
    let calls = calls.lock().unwrap().clone();
    for (path, key, at) in &calls {
        println!("{at:5.1} s  POST /{path:<6} Idempotency-Key: {key}");
    }
    let keys: Vec<&str> = calls.iter().map(|c| c.1.as_str()).collect();
    for want in [
        "order-1|0",
        "order-1|1",
        "order-1|2",
        "order-2|0",
        "order-2|1",
        "order-2|dead|2",
    ] {
        if !keys.contains(&want) {
            return Err(format!("no call with key {want}").into());
        }
    }
    Ok(())
}
