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
//!   has no parent and links every record's context instead. A consumer
//!   span that would start a trace the sampler drops is not opened (an
//!   empty context: nothing made current around the handler, nothing
//!   carried on), which keeps tracing at low sampling rates cheap.
//! - `send {topic}` (producer): the current span (a record forwarded while
//!   it is handled: retry tiers, the DLQ, replay), else the record's own
//!   `traceparent` (a record built with one), else none (a new trace).
//! - `POST` (HTTP client): the current span.
//!
//! `propagation` reads and writes the context; this module opens the spans.

mod propagation;
mod sampling;

use std::fmt::Display;
use std::sync::Arc;

use opentelemetry::global::{self, BoxedTracer};
pub use opentelemetry::trace::TraceContextExt;
use opentelemetry::trace::{
    Link, Span as _, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::KeyValue;
pub use opentelemetry::{context::FutureExt, Context};

pub use self::propagation::{
    carries_context, current_ids, current_traceparent, extract, from_traceparent, http_headers,
    inject, is_traceparent, TRACESTATE,
};
pub use self::sampling::{ratio_sampler, set_new_trace_ratio};
use crate::record::{Header, Record};

/// rebound's tracer, from the global provider as it was when it was made:
/// install a provider before building clients that keep one.
#[derive(Clone)]
pub struct Tracer {
    inner: Arc<BoxedTracer>,
    /// Not OpenTelemetry's no-op provider: spans are worth opening. When
    /// false, nothing is built per record; trace context is still passed on.
    live: bool,
    /// Set by [`ratio_sampler`]: the share of new traces kept, drawn here.
    new_trace_ratio: Option<f64>,
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
        new_trace_ratio: sampling::new_trace_ratio(),
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

/// What [`start`] does with a span the sampler dropped that starts a trace
/// (its parent has no span context).
#[derive(Clone, Copy, PartialEq)]
enum UnsampledRoot {
    /// Return it all the same: what is sent under it carries the trace on,
    /// marked not sampled.
    Keep,
    /// Return an empty context instead: nothing is made current or carried
    /// on, and the next hop's sampler decides afresh. For the consumer's
    /// per-record spans, where making an unrecorded span current around
    /// every handler call is most of tracing's cost.
    Drop,
}

/// Starts a span of `kind` under `parent`: named and attributed only when
/// it records, so an unsampled (or no-op) span allocates nothing for them.
fn start(
    tracer: &Tracer,
    kind: SpanKind,
    unsampled_root: UnsampledRoot,
    parent: &Context,
    name: impl FnOnce() -> String,
    attributes: impl FnOnce() -> Vec<KeyValue>,
    links: impl FnOnce() -> Vec<Link>,
) -> Context {
    if !tracer.live {
        return pass_through(parent);
    }
    let new_trace = !parent.span().span_context().is_valid();
    if let Some(ratio) = tracer.new_trace_ratio.filter(|_| new_trace) {
        if !sampling::keep(ratio) {
            return match unsampled_root {
                UnsampledRoot::Keep => sampling::unsampled_trace(),
                UnsampledRoot::Drop => Context::new(),
            };
        }
    }
    // One builder, filled in place: each `with_*` moves the whole (large)
    // builder, a cost every record pays.
    let links = links();
    let builder = SpanBuilder {
        span_kind: Some(kind.clone()),
        links: (!links.is_empty()).then_some(links),
        ..SpanBuilder::from_name(kind_name(&kind))
    };
    let mut span = tracer.inner.build_with_context(builder, parent);
    if span.is_recording() {
        span.update_name(name());
        span.set_attributes(attributes());
    } else if unsampled_root == UnsampledRoot::Drop && new_trace {
        return Context::new();
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
        UnsampledRoot::Keep,
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
/// the context its headers carry. A record that carries none starts a
/// trace; if the sampler drops it, the context returned is empty (no span
/// to make current, nothing carried on: what the handler sends is sampled
/// afresh).
pub fn process_span(tracer: &Tracer, rec: &Record, group: Option<&str>) -> Context {
    let parent = extract(&rec.headers);
    start(
        tracer,
        SpanKind::Consumer,
        UnsampledRoot::Drop,
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
/// trace with a link to each record's context (an empty context when the
/// sampler drops it, as for [`process_span`]).
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
        UnsampledRoot::Drop,
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
        UnsampledRoot::Keep,
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
    if !span.is_recording() {
        return; // nothing to end, and no clock to read for it
    }
    if let Err(e) = outcome {
        span.set_status(Status::error(e.to_string()));
    }
    span.end();
}

#[cfg(test)]
mod tests;
