//! Middleware around a [`crate::Handler`], tower style: each layer wraps a
//! handler and is itself a handler. The usual stack, outermost first:
//!
//! `DeadLetterLayer` (tiers, DLQ) → `RetryLayer` (in place) → `BreakerLayer` → handler
//!
//! - [`retry`]: retry in place with exponential backoff (blocks only the
//!   record's own lane: its key in key mode, its partition in partition mode).
//! - [`dead_letter`]: non-blocking retry tiers and the DLQ, with provenance.
//! - [`breaker`]: the circuit breaker.
//! - [`flood_guard`]: the DLQ flood guard of the dead-letter layer.
//! - [`provenance`]: building tier and DLQ records.
//!
//! A failure that escapes every layer freezes its partition (the runtime's
//! last resort): nothing is ever skipped.

pub mod breaker;
pub mod dead_letter;
pub mod flood_guard;
pub mod provenance;
pub mod retry;

pub use breaker::{Breaker, BreakerConfig, BreakerLayer, BreakerState};
pub use dead_letter::{DeadLetterLayer, DeadLetterPolicy};
pub use flood_guard::FloodGuardConfig;
pub use provenance::TopicNames;
pub use retry::{Retry, RetryLayer};

/// Wraps a handler into another handler.
pub trait Layer<H> {
    /// The wrapped handler.
    type Handler: crate::Handler;
    /// Wraps `inner`.
    fn layer(&self, inner: H) -> Self::Handler;
}
