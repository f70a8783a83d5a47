//! What tracing costs the consumer per record, without a broker: the
//! worker's per-record path (`process_span`, the handler wrapper's check,
//! the context made current around a ready future, `end`) over 2,000,000
//! records, with no provider, with `ratio_sampler(0.01)` (what `rebound`
//! installs for `parentbased_traceidratio`) and with the SDK's own
//! `ParentBased(TraceIdRatioBased(0.01))`; records without and with an
//! unsampled `traceparent`. Three rounds each; prints ns per record.
//!
//! `cargo bench -p rebound-core --bench trace_cost`

use std::time::Instant;

use opentelemetry::global;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use rebound_core::trace::{self, FutureExt, TraceContextExt, Tracer};
use rebound_core::{Header, Record};

const RECORDS: usize = 2_000_000;

fn records(with_context: bool) -> Vec<Record> {
    (0..1000)
        .map(|i| {
            let mut r = Record::new("t", 0, i);
            if with_context {
                let tp = format!("00-{:032x}-{:016x}-00", 0x1234 + i as u128, 0x99 + i as u64);
                r.headers.push(Header {
                    name: "traceparent".into(),
                    value: Some(tp.into_bytes()),
                });
            }
            r
        })
        .collect()
}

/// ns per record of the worker's per-record tracing path.
fn per_record(rt: &tokio::runtime::Runtime, tracer: &Tracer, recs: &[Record]) -> f64 {
    rt.block_on(async {
        let t0 = Instant::now();
        for i in 0..RECORDS {
            let rec = &recs[i % recs.len()];
            let traced = tracer.is_live() || trace::carries_context(&rec.headers);
            let cx = traced
                .then(|| trace::process_span(tracer, rec, Some("g")))
                .filter(|c| c.has_active_span());
            if let Some(cx) = cx {
                std::hint::black_box(async { 1 }.with_context(cx.clone()).await);
                trace::end::<str>(&cx, Ok(()));
            } else {
                std::hint::black_box(async { 1 }.await);
            }
        }
        t0.elapsed().as_nanos() as f64 / RECORDS as f64
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let sdk_ratio = || Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(0.01)));
    for (name, sampler) in [
        ("no provider", None),
        ("ratio_sampler(0.01)", Some(trace::ratio_sampler(0.01))),
        (
            "SDK ParentBased(TraceIdRatioBased(0.01))",
            Some(sdk_ratio()),
        ),
    ] {
        if name.starts_with("SDK") {
            trace::set_new_trace_ratio(None);
        }
        let provider = sampler.map(|s| {
            let p = SdkTracerProvider::builder().with_sampler(s).build();
            global::set_tracer_provider(p.clone());
            p
        });
        let tracer = trace::tracer();
        for with_context in [false, true] {
            let recs = records(with_context);
            let rounds: Vec<String> = (0..3)
                .map(|_| format!("{:.1}", per_record(&rt, &tracer, &recs)))
                .collect();
            println!(
                "{name}, records {} context: {} ns/record",
                if with_context { "with" } else { "without" },
                rounds.join(" / ")
            );
        }
        if let Some(p) = provider {
            p.shutdown().unwrap();
        }
    }
}
