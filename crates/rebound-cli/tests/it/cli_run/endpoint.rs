//! A real HTTP endpoint on 127.0.0.1 for the route tests: it records every
//! request (headers and body) and answers with the status it is set to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::any;
use axum::Router;
use rebound_testkit::tls::{serve_https, TlsFiles};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    /// Lower-case header names to values.
    pub headers: HashMap<String, String>,
    /// The body, as text.
    pub body: String,
    /// The status it was answered with.
    pub status: u16,
    /// When it arrived.
    pub at: std::time::Instant,
}

impl Request {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// `partition/offset` of the record it carries.
    pub fn id(&self) -> String {
        format!(
            "{}/{}",
            self.header("x-rebound-partition").unwrap_or("?"),
            self.header("x-rebound-offset").unwrap_or("?")
        )
    }
}

/// The endpoint's shared state.
#[derive(Default)]
pub struct Endpoint {
    /// Every request, in arrival order.
    pub requests: Mutex<Vec<Request>>,
    /// The status to answer with (0: 200).
    pub status: AtomicU16,
    /// Milliseconds of simulated work before answering.
    pub delay_ms: AtomicU64,
    /// Requests whose `X-Rebound-Key` is this fail with 500.
    pub failing_key: Mutex<Option<String>>,
}

impl Endpoint {
    /// Starts serving on a free port; the endpoint and its URL.
    pub async fn start() -> (Arc<Endpoint>, String) {
        let (ep, app) = Endpoint::router();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (ep, url)
    }

    /// [`Endpoint::start`] over TLS, with the server certificate of `tls`
    /// (an `https://` URL).
    pub async fn start_tls(tls: &TlsFiles) -> (Arc<Endpoint>, String) {
        let (ep, app) = Endpoint::router();
        let addr = serve_https(app, tls).await.unwrap();
        (ep, format!("https://{addr}/hook"))
    }

    fn router() -> (Arc<Endpoint>, Router) {
        let ep = Arc::new(Endpoint::default());
        let app = Router::new()
            .route("/hook", any(handle))
            .with_state(ep.clone());
        (ep, app)
    }

    /// Answer every request with `status` from now on.
    pub fn answer(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Requests answered 2xx, by record id (`partition/offset`).
    pub fn delivered(&self) -> HashMap<String, Vec<Request>> {
        let mut by_id: HashMap<String, Vec<Request>> = HashMap::new();
        for r in self.requests.lock().unwrap().iter() {
            if (200..300).contains(&r.status) {
                by_id.entry(r.id()).or_default().push(r.clone());
            }
        }
        by_id
    }

    /// How many requests arrived.
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn handle(State(ep): State<Arc<Endpoint>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = ep.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let key = headers.get("x-rebound-key").and_then(|v| v.to_str().ok());
    let status = match ep.status.load(Ordering::SeqCst) {
        _ if key.is_some() && key == ep.failing_key.lock().unwrap().as_deref() => 500,
        0 => 200,
        s => s,
    };
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    ep.requests.lock().unwrap().push(Request {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
        at: std::time::Instant::now(),
    });
    StatusCode::from_u16(status).unwrap()
}
