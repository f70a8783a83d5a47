//! HTTP delivery: `POST` with `Content-Type: application/json`,
//! `X-Message-Key` and `Idempotency-Key`, 30 s timeout, success = 2xx.
//! With a secret, signed the Standard Webhooks way (`webhook-id` is the
//! task id, the same for every attempt, so a receiver can deduplicate
//! retries; the dead-letter envelope is `<id>|dead`); with the SSRF guard
//! ([`super::guard`]), private destinations are refused. Each POST runs in
//! an HTTP client span (under the task's trace) and carries its
//! `traceparent`.

use std::sync::Arc;
use std::time::Duration;

use rebound_core::trace::{self, Tracer};
use rebound_core::webhook::{unix_seconds, WebhookSecret};

use super::guard::{refused_in, Guard, GuardedResolver};
use super::{Delivery, DeliveryError};

/// Signing and guarding of HTTP deliveries; the default does neither.
#[derive(Debug, Clone, Default)]
pub struct HttpOptions {
    /// Sign each delivery with this secret.
    pub secret: Option<WebhookSecret>,
    /// Refuse private, loopback and link-local destinations.
    pub guard: Option<Guard>,
}

/// Timeout of one HTTP delivery (Rebound's).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Posts deliveries to HTTP endpoints.
#[derive(Debug, Clone)]
pub struct HttpSink {
    client: reqwest::Client,
    secret: Option<WebhookSecret>,
    guard: Option<Arc<Guard>>,
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
        Self::with_options(HttpOptions::default())
    }

    /// A sink that signs and guards as `options` says.
    pub fn with_options(options: HttpOptions) -> Self {
        let guard = options.guard.map(Arc::new);
        let mut b = reqwest::Client::builder().timeout(HTTP_TIMEOUT);
        if let Some(g) = &guard {
            // No proxy: through one, the guard would check the proxy's
            // address instead of the destination's.
            b = b
                .no_proxy()
                .dns_resolver(Arc::new(GuardedResolver))
                .redirect(g.redirect_policy());
        }
        let client = b
            .build()
            .expect("the HTTP client builds (TLS: the system's OpenSSL)");
        HttpSink {
            client,
            secret: options.secret,
            guard,
            tracer: trace::tracer(),
        }
    }

    /// Refused by the guard before sending, or how the transport failed.
    fn refused(&self, url: &str, parsed: &url::Url) -> Result<(), DeliveryError> {
        match &self.guard {
            Some(g) => g
                .check_url(parsed)
                .map_err(|source| DeliveryError::Refused {
                    url: url.to_string(),
                    source,
                }),
            None => Ok(()),
        }
    }

    /// A transport error as a delivery error: final when the guard refused.
    fn transport(url: &str, source: reqwest::Error) -> DeliveryError {
        match refused_in(&source) {
            Some(r) => DeliveryError::Refused {
                url: url.to_string(),
                source: r,
            },
            None => DeliveryError::HttpTransport {
                url: url.to_string(),
                source,
            },
        }
    }

    /// Posts once.
    pub async fn send(&self, d: Delivery<'_>) -> Result<(), DeliveryError> {
        let url = d.destination.url.as_str();
        if let Ok(parsed) = url::Url::parse(url) {
            self.refused(url, &parsed)?;
        }
        let mut req = self
            .client
            .post(url)
            .header("Content-Type", "application/json")
            .header("X-Message-Key", d.key)
            .header("Idempotency-Key", d.key);
        if let Some(secret) = &self.secret {
            for (k, v) in secret.headers(d.id, unix_seconds(), d.payload) {
                req = req.header(k, v);
            }
        }
        let cx = match url::Url::parse(url) {
            Ok(u) => trace::http_span(&self.tracer, "POST", &u),
            Err(_) => trace::Context::new(),
        };
        for (name, value) in trace::http_headers(&cx) {
            req = req.header(name, value);
        }
        let r = Self::answer(url, req.body(d.payload.to_vec()).send().await, &cx);
        trace::end(&cx, r.as_ref().map(|_| ()));
        r
    }

    /// The delivery's outcome from the answer (status noted on the span).
    fn answer(
        url: &str,
        sent: Result<reqwest::Response, reqwest::Error>,
        cx: &trace::Context,
    ) -> Result<(), DeliveryError> {
        let resp = sent.map_err(|source| Self::transport(url, source))?;
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
