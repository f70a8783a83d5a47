//! Middleware around a [`crate::Handler`], tower style: each layer wraps a
//! handler and is itself a handler.
//!
//! - [`retry`]: retry in place with exponential backoff (blocks only the
//!   record's own lane: its key in key mode, its partition in partition mode).

pub mod retry;

pub use retry::{Retry, RetryLayer};

/// Wraps a handler into another handler.
pub trait Layer<H> {
    /// The wrapped handler.
    type Handler: crate::Handler;
    /// Wraps `inner`.
    fn layer(&self, inner: H) -> Self::Handler;
}
