//! HTTP delivery: `POST` with `Content-Type: application/json`,
//! `X-Message-Key` and `Idempotency-Key`, 30 s timeout, success = 2xx.
//! Each POST runs in an HTTP client span (under the task's trace) and
//! carries its `traceparent`.

use std::time::Duration;

use rebound_core::trace::{self, Tracer};

use super::{Delivery, DeliveryError};

/// Timeout of one HTTP delivery (Rebound's).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Posts deliveries to HTTP endpoints.
#[derive(Debug)]
pub struct HttpSink {
    client: reqwest::Client,
    tracer: Tracer,
}

impl Default for HttpSink {
    fn default() -> Self {
        Self::new()
    }
}

impl HttpSink {
    /// A sink with a pooled client and the 30 s timeout.
    pub fn new() -> Self {
        let client = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .build()
            .expect("a client without TLS builds");
        HttpSink {
            client,
            tracer: trace::tracer(),
        }
    }

    /// Posts once, in a `POST` span.
    pub async fn send(&self, d: Delivery<'_>) -> Result<(), DeliveryError> {
        let url = d.destination.url.as_str();
        let cx = match url::Url::parse(url) {
            Ok(u) => trace::http_span(&self.tracer, "POST", &u),
            Err(_) => trace::Context::new(),
        };
        let r = self.post(d, &cx).await;
        trace::end(&cx, r.as_ref().map(|_| ()));
        r
    }

    async fn post(&self, d: Delivery<'_>, cx: &trace::Context) -> Result<(), DeliveryError> {
        let url = d.destination.url.as_str();
        let mut req = self.client.post(url);
        for (name, value) in trace::http_headers(cx) {
            req = req.header(name, value);
        }
        let resp = req
            .header("Content-Type", "application/json")
            .header("X-Message-Key", d.key)
            .header("Idempotency-Key", d.key)
            .body(d.payload.to_vec())
            .send()
            .await
            .map_err(|source| DeliveryError::HttpTransport {
                url: url.to_string(),
                source,
            })?;
        let status = resp.status();
        trace::record_status_code(cx, status.as_u16());
        if status.is_success() {
            Ok(())
        } else {
            Err(DeliveryError::HttpStatus {
                url: url.to_string(),
                status: status.as_u16(),
                retry_after: retry_after(&resp),
            })
        }
    }
}

/// `Retry-After` of a 429 or 503 answer.
fn retry_after(resp: &reqwest::Response) -> Option<std::time::Duration> {
    if !matches!(resp.status().as_u16(), 429 | 503) {
        return None;
    }
    let value = resp.headers().get(reqwest::header::RETRY_AFTER)?;
    rebound_core::retry::retry_after(value.to_str().ok()?, std::time::SystemTime::now())
}
