//! The HTTP sink: send each record's value to a URL (POST unless the
//! route says otherwise).
//!
//! Headers: `X-Rebound-Topic`, `X-Rebound-Partition`, `X-Rebound-Offset`,
//! `X-Rebound-Timestamp` (epoch ms, when known) and the key as
//! `X-Rebound-Key` when it is printable ASCII, else base64 in
//! `X-Rebound-Key-Base64`, the route's extra headers and, with a secret,
//! the Standard Webhooks signature. Statuses are classified by the route's
//! [`StatusPolicy`](crate::sink_policy::StatusPolicy) (by default 2xx is
//! success; 429 and 503 are throttling honouring `Retry-After`; anything
//! else is transient); connection errors are transient failures. Each
//! request runs in an HTTP client span under the record's `process` span
//! and carries its `traceparent`.

use std::future::Future;

use base64::Engine;
use rebound_core::trace::{self, Tracer};
use rebound_worker::{Handler, HandlerError, HandlerResult, Record};

use crate::route::RouteSettings;
use crate::sink_policy::SinkExtras;

/// Sends records to one URL.
#[derive(Clone)]
pub struct HttpSink {
    client: reqwest::Client,
    url: url::Url,
    method: reqwest::Method,
    headers: reqwest::header::HeaderMap,
    extras: SinkExtras,
    tracer: Tracer,
}

impl HttpSink {
    /// The sink of a route: its URL, method, headers, timeout, statuses,
    /// signature and rate limit.
    pub fn new(route: &RouteSettings) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(route.http_timeout)
            .pool_max_idle_per_host(256)
            .build()?;
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &route.http_headers {
            headers.append(
                reqwest::header::HeaderName::from_bytes(k.as_bytes())?,
                reqwest::header::HeaderValue::from_str(v)?,
            );
        }
        Ok(HttpSink {
            client,
            url: route.http_sink.clone(),
            method: route.http_method.clone(),
            headers,
            extras: SinkExtras::of(route),
            tracer: trace::tracer(),
        })
    }
}

fn printable(k: &[u8]) -> Option<&str> {
    std::str::from_utf8(k)
        .ok()
        .filter(|s| s.bytes().all(|b| (0x20..0x7f).contains(&b)))
}

impl Handler for HttpSink {
    fn handle(&self, record: &Record) -> impl Future<Output = HandlerResult> + Send {
        let mut req = self
            .client
            .request(self.method.clone(), self.url.clone())
            .headers(self.headers.clone())
            .header("X-Rebound-Topic", &*record.topic)
            .header("X-Rebound-Partition", record.partition.to_string())
            .header("X-Rebound-Offset", record.offset.to_string())
            .body(record.value.clone().unwrap_or_default());
        if let Some(ts) = record.timestamp {
            req = req.header("X-Rebound-Timestamp", ts.to_string());
        }
        if let Some(k) = &record.key {
            req = match printable(k) {
                Some(s) => req.header("X-Rebound-Key", s),
                None => req.header(
                    "X-Rebound-Key-Base64",
                    base64::engine::general_purpose::STANDARD.encode(k),
                ),
            };
        }
        let to_sign = self.extras.to_sign(record);
        let cx = trace::http_span(&self.tracer, self.method.as_str(), &self.url);
        for (name, value) in trace::http_headers(&cx) {
            req = req.header(name, value);
        }
        let extras = self.extras.clone();
        let at = (record.topic, record.partition, record.offset);
        async move {
            extras.permit().await;
            let req = extras.sign(req, to_sign);
            let result = match req.send().await {
                Ok(resp) => {
                    trace::record_status_code(&cx, resp.status().as_u16());
                    let after = resp.headers().get(reqwest::header::RETRY_AFTER);
                    let after = after.and_then(|v| v.to_str().ok());
                    extras.statuses.classify(&at, resp.status(), after)
                }
                // Without the URL: it may hold credentials.
                Err(e) => Err(HandlerError::transient(format!(
                    "HTTP sink request failed: {}",
                    rebound_core::DisplayChain(&e.without_url())
                ))),
            };
            trace::end(&cx, result.as_ref().map(|_| ()).map_err(|e| &e.message));
            result
        }
    }
}
