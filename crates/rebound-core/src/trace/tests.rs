//! The tracer against real providers: none, then SDK ones with different
//! samplers (one test: it installs the process's global provider).

use super::propagation::tests::{with_parent, PARENT};
use super::*;

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

    // A provider that samples nothing: a record without context gets no
    // span (nothing current, nothing carried on); one with a context
    // still carries it on; a new record sent keeps its unsampled span.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(opentelemetry_sdk::trace::Sampler::AlwaysOff)
        .build();
    global::set_tracer_provider(provider);
    let dropping = tracer();
    assert!(dropping.is_live());
    let bare = process_span(&dropping, &Record::new("orders", 0, 9), None);
    assert!(!bare.has_active_span());
    let batch = batch_span(&dropping, std::slice::from_ref(&rec), None);
    assert!(!batch.has_active_span());
    let cx = process_span(&dropping, &rec, None);
    let sc = cx.span().span_context().clone();
    assert_eq!(sc.trace_id().to_string(), &PARENT[3..35]);
    assert!(!sc.is_sampled());
    let sent = send_span(&dropping, "orders", &[]);
    assert!(sent.span().span_context().is_valid());
    assert!(!sent.span().span_context().is_sampled());

    // rebound drawing new traces (`ratio_sampler`): at 0 a record
    // without context gets no span and a new record sent an unsampled
    // context, while a sampled parent's children are still recorded.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_sampler(ratio_sampler(0.0))
        .build();
    global::set_tracer_provider(provider);
    let none = tracer();
    let bare = process_span(&none, &Record::new("orders", 0, 10), None);
    assert!(!bare.has_active_span());
    let sent = send_span(&none, "orders", &[]);
    assert!(sent.span().span_context().is_valid());
    assert!(!sent.span().span_context().is_sampled());
    let child = process_span(&none, &rec, None);
    assert!(child.span().is_recording());
    assert_eq!(
        child.span().span_context().trace_id().to_string(),
        &PARENT[3..35]
    );
    end::<str>(&child, Ok(()));
    // At 1 every new trace is recorded; at 0.25 about a quarter.
    set_new_trace_ratio(Some(1.0));
    let all = tracer();
    let cx = process_span(&all, &Record::new("orders", 0, 11), None);
    assert!(cx.span().is_recording());
    end::<str>(&cx, Ok(()));
    set_new_trace_ratio(Some(0.25));
    let quarter = tracer();
    let kept = (0..4000)
        .filter(|i| {
            let cx = process_span(&quarter, &Record::new("orders", 0, *i), None);
            let kept = cx.span().is_recording();
            end::<str>(&cx, Ok(()));
            kept
        })
        .count();
    assert!((800..1200).contains(&kept), "{kept} of 4000 kept at 0.25");
    set_new_trace_ratio(None);

    global::set_tracer_provider(opentelemetry::trace::noop::NoopTracerProvider::new());
    assert!(!tracer().is_live());
}
