//! HTTP delivery: `POST` with `Content-Type: application/json`,
//! `X-Message-Key` and `Idempotency-Key`, 30 s timeout, success = 2xx.

use std::time::Duration;

use super::{Delivery, DeliveryError};

/// Timeout of one HTTP delivery (Rebound's).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Posts deliveries to HTTP endpoints.
#[derive(Debug, Clone)]
pub struct HttpSink {
    client: reqwest::Client,
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
        HttpSink { client }
    }

    /// Posts once.
    pub async fn send(&self, d: Delivery<'_>) -> Result<(), DeliveryError> {
        let url = d.destination.url.as_str();
        let resp = self
            .client
            .post(url)
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
