//! An in-process OTLP/HTTP trace receiver on 127.0.0.1: what the span-tree
//! tests export to, from the test process itself ([`install`]) or from a
//! `rebound` process given [`Receiver::endpoint`] as
//! `OTEL_EXPORTER_OTLP_ENDPOINT`. It decodes each protobuf export request
//! and keeps its spans.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use opentelemetry_otlp::{SpanExporter, WithExportConfig};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
pub use opentelemetry_sdk::trace::Sampler;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prost::Message;

/// One received span, ids in hex.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Span name (`process orders`).
    pub name: String,
    /// `producer`, `consumer`, `client`, `server` or `internal`.
    pub kind: &'static str,
    /// Trace id.
    pub trace_id: String,
    /// Span id.
    pub span_id: String,
    /// Parent span id, if any.
    pub parent: Option<String>,
    /// Span ids of the links.
    pub links: Vec<String>,
    /// Names of the span's events, in order.
    pub events: Vec<String>,
    /// Attributes, values as strings.
    pub attributes: BTreeMap<String, String>,
    /// The status message when the span failed.
    pub error: Option<String>,
    /// `service.name` of the exporting process.
    pub service: String,
    /// Start time, ns since the epoch.
    pub start: u64,
}

type Spans = Arc<Mutex<Vec<Span>>>;

/// The receiver; stops with the test's runtime.
pub struct Receiver {
    addr: SocketAddr,
    spans: Spans,
}

impl Receiver {
    /// Listens on an ephemeral 127.0.0.1 port.
    pub async fn start() -> Receiver {
        let spans = Spans::default();
        let app = Router::new()
            .route("/v1/traces", post(export))
            .with_state(spans.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the OTLP receiver");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, spans }
    }

    /// The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT` takes it.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Spans received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits until `done(spans)` holds (up to `timeout`) and returns the spans.
    pub async fn wait_for(&self, timeout: Duration, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) || tokio::time::Instant::now() >= deadline {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Panics when an attribute of any span contains `needle` (keys and values
/// of records must never reach a span).
pub fn assert_not_recorded(spans: &[Span], needle: &str) {
    for s in spans {
        assert!(
            s.attributes.values().all(|v| !v.contains(needle)),
            "{needle:?} reached span {}: {:?}",
            s.name,
            s.attributes
        );
    }
}

/// The spans of `trace_id` as an indented tree, one span per line
/// (`name [kind]`, ` !` when failed), children in start order; spans whose
/// parent was not received are roots.
pub fn tree(spans: &[Span], trace_id: &str) -> String {
    let mine: Vec<&Span> = spans.iter().filter(|s| s.trace_id == trace_id).collect();
    let known = |id: &Option<String>| {
        id.as_ref()
            .is_some_and(|p| mine.iter().any(|s| &s.span_id == p))
    };
    let mut out = String::new();
    let mut roots: Vec<&Span> = mine.iter().copied().filter(|s| !known(&s.parent)).collect();
    roots.sort_by_key(|s| s.start);
    for r in roots {
        render(&mine, r, 0, &mut out);
    }
    out
}

fn render(spans: &[&Span], s: &Span, depth: usize, out: &mut String) {
    let failed = if s.error.is_some() { " !" } else { "" };
    out.push_str(&format!(
        "{}{} [{}]{failed}\n",
        "  ".repeat(depth),
        s.name,
        s.kind
    ));
    let mut children: Vec<&Span> = spans
        .iter()
        .copied()
        .filter(|c| c.parent.as_deref() == Some(s.span_id.as_str()))
        .collect();
    children.sort_by_key(|c| c.start);
    for c in children {
        render(spans, c, depth + 1, out);
    }
}

/// Installs a global tracer provider exporting every span to `endpoint`
/// in batches (export with `force_flush` before asserting).
pub fn install(endpoint: &str, service: &str) -> SdkTracerProvider {
    install_sampled(endpoint, service, Sampler::AlwaysOn)
}

/// Like [`install`] with `sampler` (for instance
/// `Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.01)))`,
/// what `OTEL_TRACES_SAMPLER=parentbased_traceidratio` gives).
pub fn install_sampled(endpoint: &str, service: &str, sampler: Sampler) -> SdkTracerProvider {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .build()
        .expect("an OTLP exporter");
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(service.to_string())
                .build(),
        )
        .build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    provider
}

/// Puts OpenTelemetry's no-op provider back (tracing off).
pub fn uninstall() {
    opentelemetry::global::set_tracer_provider(
        opentelemetry::trace::noop::NoopTracerProvider::new(),
    );
}

async fn export(State(spans): State<Spans>, body: Bytes) -> (StatusCode, Vec<u8>) {
    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
        return (StatusCode::BAD_REQUEST, Vec::new());
    };
    let mut got = Vec::new();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .map(|r| attributes(&r.attributes))
            .and_then(|mut a| a.remove("service.name"))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                let kind = match SpanKind::try_from(s.kind) {
                    Ok(SpanKind::Producer) => "producer",
                    Ok(SpanKind::Consumer) => "consumer",
                    Ok(SpanKind::Client) => "client",
                    Ok(SpanKind::Server) => "server",
                    _ => "internal",
                };
                let error = s
                    .status
                    .filter(|st| st.code == SpanStatus::Error as i32)
                    .map(|st| st.message);
                got.push(Span {
                    name: s.name,
                    kind,
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent: (!s.parent_span_id.is_empty()).then(|| hex(&s.parent_span_id)),
                    links: s.links.iter().map(|l| hex(&l.span_id)).collect(),
                    events: s.events.iter().map(|e| e.name.clone()).collect(),
                    attributes: attributes(&s.attributes),
                    error,
                    service: service.clone(),
                    start: s.start_time_unix_nano,
                });
            }
        }
    }
    spans.lock().unwrap().extend(got);
    let ok = ExportTraceServiceResponse::default().encode_to_vec();
    (StatusCode::OK, ok)
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, String> {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                other => format!("{other:?}"),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
