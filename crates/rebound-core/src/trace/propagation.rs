//! W3C trace context in record headers and HTTP requests: read
//! (`extract`), written (`inject`, `http_headers`) and checked, with the
//! SDK's `TraceContextPropagator`.

use std::sync::OnceLock;

use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;

use crate::headers::TRACEPARENT;
use crate::record::Header;

/// Name of the `tracestate` header.
pub const TRACESTATE: &str = "tracestate";

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
    if let Some(cx) = canonical(headers) {
        return cx;
    }
    // Not `extract`: that starts from the current context, which a
    // malformed header would then leave in place.
    propagator().extract_with_context(&Context::new(), &HeaderReader(headers))
}

/// The context of the common case read without the propagator's parser
/// (about a third of what a record with context costs a consumer): a
/// version-00 `traceparent` in its exact 55-byte lowercase form and no
/// `tracestate`. Anything else is `None`, left to the propagator, so what
/// is accepted and how is the propagator's.
fn canonical(headers: &[Header]) -> Option<Context> {
    if headers.iter().any(|h| h.name == TRACESTATE) {
        return None;
    }
    let v = headers
        .iter()
        .rev()
        .find(|h| h.name == TRACEPARENT)?
        .value
        .as_deref()?;
    if v.len() != 55 || &v[..3] != b"00-" || v[35] != b'-' || v[52] != b'-' {
        return None;
    }
    let trace_id = hex(&v[3..35])?;
    let span_id = u64::try_from(hex(&v[36..52])?).ok()?;
    let flags = u8::try_from(hex(&v[53..55])?).ok()?;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    let sc = SpanContext::new(
        TraceId::from(trace_id),
        SpanId::from(span_id),
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    Some(Context::new().with_remote_span_context(sc))
}

/// Lowercase hex digits as a number; `None` for any other character.
fn hex(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |n, &d| {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        Some(n << 4 | u128::from(v))
    })
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

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A sampled upstream context, the one the trace tests start from.
    pub(in crate::trace) const PARENT: &str =
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// A `traceparent` header holding `value`.
    pub(in crate::trace) fn traceparent(value: &str) -> Header {
        Header {
            name: TRACEPARENT.into(),
            value: Some(value.as_bytes().to_vec()),
        }
    }

    /// Headers carrying [`PARENT`].
    pub(in crate::trace) fn with_parent() -> Vec<Header> {
        vec![traceparent(PARENT)]
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
    fn the_canonical_form_reads_as_the_propagator_reads_it() {
        let values = [
            PARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736+00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
        ];
        for v in values {
            for headers in [
                vec![traceparent(v)],
                vec![traceparent("stale"), traceparent(v)],
            ] {
                let by_propagator =
                    propagator().extract_with_context(&Context::new(), &HeaderReader(&headers));
                let read = extract(&headers);
                assert_eq!(
                    read.span().span_context(),
                    by_propagator.span().span_context(),
                    "{v}"
                );
            }
        }
        // With a tracestate the propagator reads both.
        let mut headers = with_parent();
        headers.push(Header {
            name: TRACESTATE.into(),
            value: Some(b"vendor=x".to_vec()),
        });
        let cx = extract(&headers);
        assert_eq!(cx.span().span_context().trace_state().header(), "vendor=x");
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
}
