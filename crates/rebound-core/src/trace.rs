//! Tracing through record headers: W3C trace context (`traceparent`,
//! `tracestate`) read from and written to records and HTTP requests, and the
//! spans every component opens, named and attributed per the OpenTelemetry
//! messaging semantic conventions (`send orders`, `process orders`).
//!
//! Spans go to the global tracer provider. Until an application installs
//! one (the `rebound` CLI does when `OTEL_EXPORTER_OTLP_*` is set) it is
//! OpenTelemetry's no-op provider: spans record nothing, and a span opened
//! under a record's context carries that context on, so a record's trace
//! still reaches what it is forwarded to. Keys and values are never
//! recorded.
//!
//! Where each span's parent comes from:
//! - `process {topic}` (consumer): the record's own `traceparent`; a batch
//!   has no parent and links every record's context instead.
//! - `send {topic}` (producer): the current span (a record forwarded while
//!   it is handled: retry tiers, the DLQ, replay), else the record's own
//!   `traceparent` (a record built with one), else none (a new trace).
//! - `POST` (HTTP client): the current span.

use std::fmt::Display;
use std::sync::{Arc, OnceLock};

use opentelemetry::global::{self, BoxedTracer};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
pub use opentelemetry::trace::TraceContextExt;
use opentelemetry::trace::{
    Link, Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::KeyValue;
pub use opentelemetry::{context::FutureExt, Context};
use opentelemetry_sdk::propagation::TraceContextPropagator;

use crate::headers::TRACEPARENT;
use crate::record::{Header, Record};

/// Name of the `tracestate` header.
pub const TRACESTATE: &str = "tracestate";

/// rebound's tracer, from the global provider as it was when it was made:
/// install a provider before building clients that keep one.
#[derive(Clone)]
pub struct Tracer {
    inner: Arc<BoxedTracer>,
    /// Not OpenTelemetry's no-op provider: spans are worth opening. When
    /// false, nothing is built per record; trace context is still passed on.
    live: bool,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer").field("live", &self.live).finish()
    }
}

impl Tracer {
    /// Whether spans are recorded (a provider is installed).
    pub fn is_live(&self) -> bool {
        self.live
    }
}

/// The tracer of rebound's spans, from the global provider as it is now.
pub fn tracer() -> Tracer {
    let inner = global::tracer_provider().tracer("rebound");
    Tracer {
        live: is_live(&inner),
        inner: Arc::new(inner),
    }
}

/// Tells a real provider's tracer from the no-op one without recording
/// anything: under a context that suppresses telemetry and names a parent,
/// the no-op tracer's span takes the parent's context, while an SDK's takes
/// none (it records nothing there).
fn is_live(t: &BoxedTracer) -> bool {
    let parent_sc = SpanContext::new(
        TraceId::from(1u128),
        SpanId::from(1u64),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let parent = Context::new()
        .with_remote_span_context(parent_sc.clone())
        .with_telemetry_suppressed();
    let probe = t.build_with_context(SpanBuilder::from_name("rebound.probe"), &parent);
    *probe.span_context() != parent_sc
}

/// `parent`'s span context alone, as a remote one: what a span opened with
/// a no-op tracer leaves, so ending it can never end someone else's span.
fn pass_through(parent: &Context) -> Context {
    let span = parent.span();
    let sc = span.span_context();
    if sc.is_valid() {
        Context::new().with_remote_span_context(sc.clone())
    } else {
        Context::new()
    }
}

fn propagator() -> &'static TraceContextPropagator {
    static P: OnceLock<TraceContextPropagator> = OnceLock::new();
    P.get_or_init(TraceContextPropagator::new)
}

struct HeaderReader<'a>(&'a [Header]);

impl Extractor for HeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let h = self.0.iter().rev().find(|h| h.name == key)?;
        std::str::from_utf8(h.value.as_deref()?).ok()
    }

    fn keys(&self) -> Vec<&str> {
        self.0.iter().map(|h| h.name.as_str()).collect()
    }
}

struct HeaderWriter<'a>(&'a mut Vec<Header>);

impl Injector for HeaderWriter<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.retain(|h| h.name != key);
        if value.is_empty() {
            return; // an empty `tracestate`: no header at all
        }
        self.0.push(Header {
            name: key.to_string(),
            value: Some(value.into_bytes()),
        });
    }
}

struct FnWriter<F>(F);

impl<F: FnMut(&str, String)> Injector for FnWriter<F> {
    fn set(&mut self, key: &str, value: String) {
        if !value.is_empty() {
            (self.0)(key, value)
        }
    }
}

/// Whether `headers` carry a trace context (a `traceparent`).
pub fn carries_context(headers: &[Header]) -> bool {
    headers.iter().any(|h| h.name == TRACEPARENT)
}

/// The trace context `headers` carry; an empty context when they carry none
/// or a malformed one.
pub fn extract(headers: &[Header]) -> Context {
    if !carries_context(headers) {
        return Context::new();
    }
    // Not `extract`: that starts from the current context, which a
    // malformed header would then leave in place.
    propagator().extract_with_context(&Context::new(), &HeaderReader(headers))
}

/// The context a `traceparent` value names (empty when malformed).
pub fn from_traceparent(value: &str) -> Context {
    extract(&[Header {
        name: TRACEPARENT.to_string(),
        value: Some(value.as_bytes().to_vec()),
    }])
}

/// Whether `value` is a well-formed `traceparent`.
pub fn is_traceparent(value: &str) -> bool {
    from_traceparent(value).has_active_span()
}

/// The `traceparent` of the current span, when there is one (what a task
/// created while handling a record keeps for its deliveries).
pub fn current_traceparent() -> Option<String> {
    http_headers(&Context::current())
        .into_iter()
        .find_map(|(k, v)| (k == TRACEPARENT).then_some(v))
}

/// Writes the span of `cx` into `headers`, replacing any trace context they
/// had; leaves them as they are when `cx` has no valid span.
pub fn inject(cx: &Context, headers: &mut Vec<Header>) {
    if cx.span().span_context().is_valid() {
        propagator().inject_context(cx, &mut HeaderWriter(headers));
    }
}

/// The trace-context headers of `cx` as name–value pairs, for an HTTP
/// request; none when `cx` has no valid span.
pub fn http_headers(cx: &Context) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if cx.span().span_context().is_valid() {
        propagator().inject_context(cx, &mut FnWriter(|k: &str, v| out.push((k.to_string(), v))));
    }
    out
}

/// The trace and span ids of the current span, in hex, when there is one
/// (what log lines carry).
pub fn current_ids() -> Option<(String, String)> {
    Context::map_current(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid()
            .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
    })
}

fn messaging(operation: &'static str, topic: &str) -> Vec<KeyValue> {
    vec![
        KeyValue::new("messaging.system", "kafka"),
        KeyValue::new("messaging.operation.name", operation),
        KeyValue::new("messaging.operation.type", operation),
        KeyValue::new("messaging.destination.name", topic.to_string()),
    ]
}

fn position(partition: i32, offset: i64) -> [KeyValue; 2] {
    [
        KeyValue::new("messaging.destination.partition.id", partition.to_string()),
        KeyValue::new("messaging.kafka.offset", offset),
    ]
}

/// Starts a span of `kind` under `parent`: named and attributed only when
/// it records, so an unsampled (or no-op) span allocates nothing for them.
fn start(
    tracer: &Tracer,
    kind: SpanKind,
    parent: &Context,
    name: impl FnOnce() -> String,
    attributes: impl FnOnce() -> Vec<KeyValue>,
    links: impl FnOnce() -> Vec<Link>,
) -> Context {
    if !tracer.live {
        return pass_through(parent);
    }
    let t = &*tracer.inner;
    let mut span = t
        .span_builder(kind_name(&kind))
        .with_kind(kind)
        .with_links(links())
        .start_with_context(t, parent);
    if span.is_recording() {
        span.update_name(name());
        span.set_attributes(attributes());
    }
    parent.with_span(span)
}

fn kind_name(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Producer => "send",
        SpanKind::Consumer => "process",
        SpanKind::Client => "client",
        _ => "span",
    }
}

/// Opens `send {topic}` (producer kind) for a record with `headers`, under
/// the current span, else the context the headers carry.
pub fn send_span(tracer: &Tracer, topic: &str, headers: &[Header]) -> Context {
    let current = Context::current();
    let parent = if current.has_active_span() {
        current
    } else {
        extract(headers)
    };
    start(
        tracer,
        SpanKind::Producer,
        &parent,
        || format!("send {topic}"),
        || messaging("send", topic),
        Vec::new,
    )
}

/// Notes where a sent record landed on its `send` span.
pub fn record_delivery(cx: &Context, partition: i32, offset: i64) {
    cx.span().set_attributes(position(partition, offset));
}

/// Opens `process {topic}` (consumer kind) for handling `rec`, a child of
/// the context its headers carry.
pub fn process_span(tracer: &Tracer, rec: &Record, group: Option<&str>) -> Context {
    let parent = extract(&rec.headers);
    start(
        tracer,
        SpanKind::Consumer,
        &parent,
        || format!("process {}", &*rec.topic),
        || {
            let mut attrs = messaging("process", &rec.topic);
            attrs.extend(position(rec.partition, rec.offset));
            if let Some(g) = group {
                attrs.push(KeyValue::new(
                    "messaging.consumer.group.name",
                    g.to_string(),
                ));
            }
            attrs
        },
        Vec::new,
    )
}

/// Opens `process {topic}` for a batch of one partition's records: a new
/// trace with a link to each record's context.
pub fn batch_span(tracer: &Tracer, recs: &[Record], group: Option<&str>) -> Context {
    let Some(first) = recs.first() else {
        return Context::new();
    };
    let links = || {
        recs.iter()
            .filter_map(|r| {
                let cx = extract(&r.headers);
                let sc = cx.span().span_context().clone();
                sc.is_valid().then(|| Link::with_context(sc))
            })
            .collect()
    };
    start(
        tracer,
        SpanKind::Consumer,
        &Context::new(),
        || format!("process {}", &*first.topic),
        || {
            let mut attrs = messaging("process", &first.topic);
            attrs.push(KeyValue::new(
                "messaging.destination.partition.id",
                first.partition.to_string(),
            ));
            attrs.push(KeyValue::new(
                "messaging.batch.message_count",
                recs.len() as i64,
            ));
            if let Some(g) = group {
                attrs.push(KeyValue::new(
                    "messaging.consumer.group.name",
                    g.to_string(),
                ));
            }
            attrs
        },
        links,
    )
}

/// Opens an HTTP client span (`POST`) under the current span, for a
/// request to `host:port`. The URL's path and query are not recorded: they
/// may carry tokens.
pub fn http_span(tracer: &Tracer, method: &str, url: &url::Url) -> Context {
    start(
        tracer,
        SpanKind::Client,
        &Context::current(),
        || method.to_string(),
        || {
            let mut attrs = vec![KeyValue::new("http.request.method", method.to_string())];
            if let Some(host) = url.host_str() {
                attrs.push(KeyValue::new("server.address", host.to_string()));
            }
            if let Some(port) = url.port_or_known_default() {
                attrs.push(KeyValue::new("server.port", i64::from(port)));
            }
            attrs
        },
        Vec::new,
    )
}

/// Notes an HTTP answer's status on an HTTP span.
pub fn record_status_code(cx: &Context, status: u16) {
    cx.span().set_attribute(KeyValue::new(
        "http.response.status_code",
        i64::from(status),
    ));
}

/// Notes on the current span that its handling is tried again in place
/// (an event `retry` with the attempt that failed, the delay and the error).
pub fn retry_event<E: Display + ?Sized>(attempt: u32, delay: std::time::Duration, error: &E) {
    Context::map_current(|cx| {
        let span = cx.span();
        if span.is_recording() {
            span.add_event(
                "retry",
                vec![
                    KeyValue::new("rebound.attempt", i64::from(attempt)),
                    KeyValue::new("rebound.retry.delay_ms", delay.as_millis() as i64),
                    KeyValue::new("error.message", error.to_string()),
                ],
            );
        }
    });
}

/// Marks the current span failed with `error` (a record routed to a retry
/// tier or the DLQ: its handling succeeded, its processing did not).
pub fn fail_current<E: Display + ?Sized>(error: &E) {
    Context::map_current(|cx| cx.span().set_status(Status::error(error.to_string())));
}

/// Ends the span of `cx`: `Err` marks it failed with the error's message.
pub fn end<E: Display + ?Sized>(cx: &Context, outcome: Result<(), &E>) {
    let span = cx.span();
    if let Err(e) = outcome {
        span.set_status(Status::error(e.to_string()));
    }
    span.end();
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn with_parent() -> Vec<Header> {
        vec![Header {
            name: TRACEPARENT.into(),
            value: Some(PARENT.as_bytes().to_vec()),
        }]
    }

    #[test]
    fn a_header_context_round_trips() {
        let cx = extract(&with_parent());
        assert!(cx.span().span_context().is_remote());
        let mut out = vec![Header {
            name: TRACEPARENT.into(),
            value: Some(b"stale".to_vec()),
        }];
        inject(&cx, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].value.as_deref(), Some(PARENT.as_bytes()));
    }

    #[test]
    fn a_bad_context_is_none_even_inside_a_span() {
        let _inside = extract(&with_parent()).attach();
        assert!(!is_traceparent("00-zz-00-01"));
        assert!(is_traceparent(PARENT));
    }

    #[test]
    fn no_or_bad_context_writes_nothing() {
        let bad = vec![Header {
            name: TRACEPARENT.into(),
            value: Some(b"00-zz-00-01".to_vec()),
        }];
        for headers in [vec![], bad] {
            let cx = extract(&headers);
            let mut out = Vec::new();
            inject(&cx, &mut out);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn without_a_provider_a_record_context_passes_through_a_span() {
        // One test, as it installs the process's provider: first none.
        let rec = Record {
            headers: with_parent(),
            ..Record::new("orders", 0, 7)
        };
        let off = tracer();
        assert!(!off.is_live());
        let cx = process_span(&off, &rec, Some("g"));
        let mut sent = Vec::new();
        inject(&cx, &mut sent);
        assert_eq!(sent[0].value.as_deref(), Some(PARENT.as_bytes()));
        assert_eq!(
            http_headers(&cx),
            vec![("traceparent".to_string(), PARENT.to_string())]
        );
        // A record without context gets none, and nothing is built.
        let bare = process_span(&off, &Record::new("orders", 0, 8), None);
        assert!(!bare.has_active_span());

        // Then a real provider: a new span under the record's context.
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        global::set_tracer_provider(provider);
        let on = tracer();
        assert!(on.is_live());
        let cx = process_span(&on, &rec, Some("g"));
        let sc = cx.span().span_context().clone();
        assert_eq!(sc.trace_id().to_string(), &PARENT[3..35]);
        assert_ne!(sc.span_id().to_string(), &PARENT[36..52]);
        end::<str>(&cx, Ok(()));
        global::set_tracer_provider(opentelemetry::trace::noop::NoopTracerProvider::new());
        assert!(!tracer().is_live());
    }
}
