//! The HTTP sink: POST each record's value to a URL.
//!
//! Headers: `X-Rebound-Topic`, `X-Rebound-Partition`, `X-Rebound-Offset`,
//! `X-Rebound-Timestamp` (epoch ms, when known) and the key as
//! `X-Rebound-Key` when it is printable ASCII, else base64 in
//! `X-Rebound-Key-Base64`. 2xx is success; 429 and 503 are throttling
//! (honouring `Retry-After`, seconds or a date); anything else, and connection errors,
//! are transient failures. Each POST runs in an HTTP client span under the
//! record's `process` span and carries its `traceparent`.

use std::future::Future;
use std::time::{Duration, SystemTime};

use rebound_core::retry::retry_after;
use rebound_core::trace::{self, Tracer};

use base64::Engine;
use rebound_worker::{Handler, HandlerError, HandlerResult, Record};

/// Posts records to one URL.
pub struct HttpSink {
    client: reqwest::Client,
    url: url::Url,
    tracer: Tracer,
}

impl HttpSink {
    /// A sink for `url` with a per-request timeout.
    pub fn new(url: url::Url, timeout: Duration) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .pool_max_idle_per_host(256)
            .build()?;
        Ok(HttpSink {
            client,
            url,
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
            .post(self.url.clone())
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
        let cx = trace::http_span(&self.tracer, "POST", &self.url);
        for (name, value) in trace::http_headers(&cx) {
            req = req.header(name, value);
        }
        async move {
            let result = post(req, &cx).await;
            trace::end(&cx, result.as_ref().map(|_| ()).map_err(|e| &e.message));
            result
        }
    }
}

/// Sends `req`, noting the answer's status on the span of `cx`.
async fn post(req: reqwest::RequestBuilder, cx: &trace::Context) -> HandlerResult {
    let resp = req
        .send()
        .await
        .map_err(|e| HandlerError::transient(format!("HTTP sink request failed: {e}")))?;
    let status = resp.status();
    trace::record_status_code(cx, status.as_u16());
    if status.is_success() {
        return Ok(());
    }
    let msg = format!("HTTP sink answered {status}");
    if status.as_u16() == 429 || status.as_u16() == 503 {
        let after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        return Err(HandlerError::throttled(msg, after));
    }
    Err(HandlerError::transient(msg))
}
