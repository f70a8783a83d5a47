//! Head sampling of new traces by rebound itself, before the SDK is asked.
//!
//! With `ParentBased(TraceIdRatioBased(r))` every record that arrives
//! without a trace costs an SDK span, kept or not (ids, the sampler, the
//! span, its drop): most of what tracing costs a consumer at low ratios.
//! [`ratio_sampler`] splits that sampler in two: rebound draws whether a
//! trace that starts at one of its spans is kept (probability `r`), and
//! only a kept one reaches the SDK, whose sampler is then
//! `ParentBased(AlwaysOn)`. Children follow their parent's decision as
//! before, and a dropped new trace costs one random draw. Of the spans
//! rebound opens, the same are recorded as with the single sampler; two
//! differences: a root span opened through the same provider by anything
//! else (an application's own spans) is always recorded, so use it when
//! rebound opens the spans that start traces (as in the `rebound` CLI);
//! and, with either sampler, a consumer's dropped new trace is not carried
//! on (see `process_span`), so what its handler sends is drawn afresh: a
//! record's trace is then recorded from a later hop with probability about
//! `1 - (1 - ratio)^hops`, starting at that hop.

use std::sync::atomic::{AtomicU64, Ordering};

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use opentelemetry::Context;
use opentelemetry_sdk::trace::Sampler;

/// The ratio's `f64` bits, or [`UNSET`]: the provider's sampler decides.
static NEW_TRACE_RATIO: AtomicU64 = AtomicU64::new(UNSET);
const UNSET: u64 = u64::MAX;

/// Samples new traces at `ratio` (clamped to 0–1) as
/// `ParentBased(TraceIdRatioBased(ratio))` would, with rebound drawing the
/// decision for a trace that starts at one of its spans: returns the
/// sampler to give the tracer provider (`ParentBased(AlwaysOn)`: root
/// spans not opened by rebound are all recorded), and makes tracers
/// created from now on draw (process-wide, until
/// [`set_new_trace_ratio`]`(None)`). Install the provider before creating
/// clients.
pub fn ratio_sampler(ratio: f64) -> Sampler {
    set_new_trace_ratio(Some(ratio));
    Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
}

/// Sets (or, with `None`, clears) the ratio at which tracers created from
/// now on keep the traces they start; cleared, the provider's sampler
/// decides every span.
pub fn set_new_trace_ratio(ratio: Option<f64>) {
    let bits = ratio.map_or(UNSET, |r| r.clamp(0.0, 1.0).to_bits());
    NEW_TRACE_RATIO.store(bits, Ordering::Relaxed);
}

/// The ratio set, if any.
pub(super) fn new_trace_ratio() -> Option<f64> {
    match NEW_TRACE_RATIO.load(Ordering::Relaxed) {
        UNSET => None,
        bits => Some(f64::from_bits(bits)),
    }
}

/// Whether a new trace is kept at `ratio`.
pub(super) fn keep(ratio: f64) -> bool {
    ratio >= 1.0 || rand::random::<f64>() < ratio
}

/// A new trace that is not sampled: fresh ids, the sampled flag clear. What
/// is sent under it tells the next hop the decision, as an SDK span that
/// was dropped would.
pub(super) fn unsampled_trace() -> Context {
    let sc = SpanContext::new(
        TraceId::from(rand::random::<u128>().max(1)),
        SpanId::from(rand::random::<u64>().max(1)),
        TraceFlags::default(),
        false,
        TraceState::default(),
    );
    Context::new().with_remote_span_context(sc)
}
