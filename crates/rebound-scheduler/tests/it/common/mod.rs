//! Shared test helpers: a recording HTTP endpoint on 127.0.0.1 and task JSON.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// One request received by the [`Recorder`].
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    /// Statuses to answer with, in order; then 200. A 429 carries
    /// `Retry-After: 3`.
    script: VecDeque<u16>,
    /// Paths that always fail with 500.
    failing: Vec<String>,
}

/// A real HTTP server on an ephemeral 127.0.0.1 port recording every POST.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Mutex<Inner>>,
    pub addr: SocketAddr,
}

async fn record(
    State(r): State<Arc<Mutex<Inner>>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1]) {
    let mut g = r.lock().unwrap();
    let path = uri.path().to_string();
    g.received.push(Received {
        path: path.clone(),
        headers,
        body,
        at: Instant::now(),
    });
    if g.failing.contains(&path) {
        return (StatusCode::INTERNAL_SERVER_ERROR, [("x-note", "failing")]);
    }
    let code = g.script.pop_front().unwrap_or(200);
    // A 429 asks for a wait longer than any test's base delay.
    let header = match code {
        429 => ("retry-after", "3"),
        _ => ("x-note", "scripted"),
    };
    (StatusCode::from_u16(code).unwrap(), [header])
}

impl Recorder {
    pub async fn start() -> Recorder {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let app = Router::new()
            .route("/{*path}", post(record))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Recorder { inner, addr }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{path}", self.addr)
    }

    /// Answer the next requests with these statuses (then 200).
    pub fn script(&self, codes: &[u16]) {
        self.inner.lock().unwrap().script.extend(codes);
    }

    /// Always answer 500 on `path` (e.g. "/down").
    pub fn fail_path(&self, path: &str) {
        self.inner.lock().unwrap().failing.push(path.to_string());
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn on(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Waits until `pred` holds on the received requests, or panics after `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        pred: impl Fn(&[Received]) -> bool,
    ) {
        let met = rebound_testkit::eventually_or(timeout, || {
            let met = pred(&self.received());
            async move { met }
        })
        .await;
        assert!(
            met,
            "timed out after {timeout:?} waiting for {what}; received {} requests",
            self.received().len()
        );
    }
}

/// Task JSON for an HTTP destination.
pub fn http_task(id: &str, url: &str, max_retries: i64, base_delay: i64) -> Value {
    json!({
        "id": id,
        "source": "tests",
        "destination": {"url": url},
        "max_retries": max_retries,
        "base_delay": base_delay,
        "client_id": "c1",
        "is_priority": false,
        "message_data": format!("{{\"task\":\"{id}\"}}"),
        "destination_type": "http"
    })
}

/// A real redis-server child process that the test can kill.
pub struct OwnRedis {
    pub child: rebound_testkit::KillOnDrop,
    pub port: u16,
}

impl OwnRedis {
    pub fn start() -> OwnRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let redis = OwnRedis {
            child: rebound_testkit::KillOnDrop(child),
            port,
        };
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return redis;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        drop(redis);
        panic!("redis-server did not start");
    }
}
