//! End to end over HTTP: `serve` on 127.0.0.1 (embedded store), tasks created
//! through its API, delivered to a real recording HTTP server.

use std::time::Duration;

use crate::common::{http_task, Recorder};
use rebound_scheduler::envelope::DeadLetter;
use rebound_scheduler::ServeConfig;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

pub(crate) struct Served {
    pub(crate) base: String,
    pub(crate) stop: CancellationToken,
    pub(crate) handle: tokio::task::JoinHandle<rebound_scheduler::Result<()>>,
    _dir: tempfile::TempDir,
}

pub(crate) async fn serve() -> Served {
    serve_with(rebound_scheduler::deliver::HttpOptions::default()).await
}

/// `serve` on 127.0.0.1 with these HTTP delivery options.
pub(crate) async fn serve_with(http: rebound_scheduler::deliver::HttpOptions) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig {
        store_url: format!("file://{}", dir.path().display()),
        http,
        ..ServeConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let handle = tokio::spawn(rebound_scheduler::serve::serve_on(
        config,
        listener,
        stop.clone(),
    ));
    Served {
        base,
        stop,
        handle,
        _dir: dir,
    }
}

pub(crate) async fn post(base: &str, body: &Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/tasks"))
        .json(body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn retries_with_backoff_then_delivers_with_keys_and_headers() {
    let rec = Recorder::start().await;
    rec.script(&[500, 503]);
    let s = serve().await;
    let task = http_task("h-1", &rec.url("hook"), 2, 1);
    let created = std::time::Instant::now();
    assert_eq!(post(&s.base, &task).await.0, 201);
    rec.wait_for(Duration::from_secs(20), "3 deliveries", |r| r.len() >= 3)
        .await;
    let got = rec.received();
    let keys: Vec<String> = got.iter().map(|r| r.header("x-message-key")).collect();
    assert_eq!(keys, ["h-1|0", "h-1|1", "h-1|2"]);
    for r in &got {
        assert_eq!(r.path, "/hook");
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.header("idempotency-key"), r.header("x-message-key"));
        assert_eq!(&r.body[..], br#"{"task":"h-1"}"#);
    }
    // At once, then +1 s, then +2 s (whole seconds, generous upper bounds).
    let at: Vec<f64> = got.iter().map(|r| (r.at - created).as_secs_f64()).collect();
    assert!(at[0] < 1.5, "{at:?}");
    assert!(at[1] - at[0] >= 0.95 && at[1] - at[0] < 2.5, "{at:?}");
    assert!(at[2] - at[1] >= 1.95 && at[2] - at[1] < 3.5, "{at:?}");
    // The task reads as delivered, and nothing more arrives.
    let mut state = Value::Null;
    for _ in 0..50 {
        state = reqwest::get(format!("{}/tasks/h-1", s.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if state["state"] == "delivered" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state["state"], "delivered", "{state}");
    assert_eq!(state["attempts"], 3);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rec.received().len(), 3);
    s.stop.cancel();
    s.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_429_retry_after_delays_the_next_attempt_beyond_the_backoff() {
    let rec = Recorder::start().await;
    rec.script(&[429]);
    let s = serve().await;
    assert_eq!(
        post(&s.base, &http_task("h-429", &rec.url("hook"), 2, 1))
            .await
            .0,
        201
    );
    rec.wait_for(Duration::from_secs(20), "2 deliveries", |r| r.len() >= 2)
        .await;
    let got = rec.received();
    // The backoff alone would wait 1 s; the endpoint asked for 3 s.
    let gap = (got[1].at - got[0].at).as_secs_f64();
    assert!(
        (2.95..6.0).contains(&gap),
        "second attempt {gap:.2} s after the first"
    );
    s.stop.cancel();
    s.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn exhausted_tasks_go_to_the_dead_destination_as_an_envelope() {
    let rec = Recorder::start().await;
    rec.fail_path("/down");
    let s = serve().await;
    let mut task = http_task("d-1", &rec.url("down"), 1, 1);
    task["dead_destination"] = serde_json::json!({"url": rec.url("dead")});
    assert_eq!(post(&s.base, &task).await.0, 201);
    rec.wait_for(Duration::from_secs(20), "a dead letter", |r| {
        r.iter().any(|x| x.path == "/dead")
    })
    .await;
    assert_eq!(
        rec.on("/down").len(),
        2,
        "max_retries 1 means two deliveries"
    );
    let dead = rec.on("/dead");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].header("x-message-key"), "d-1|dead|2");
    let env: DeadLetter = serde_json::from_slice(&dead[0].body).unwrap();
    assert_eq!(env.id, "d-1");
    assert_eq!(env.attempts, 2);
    assert_eq!(env.message_data, r#"{"task":"d-1"}"#);
    assert!(env.error.contains("500"), "{}", env.error);
    s.stop.cancel();
    s.handle.await.unwrap().unwrap();
}
