//! Core types for rebound: records, header names, error kinds, backoff.
//! No I/O and nothing Kafka-client specific; the one async part is the retry
//! loop's sleep.
//!
//! # Layout
//!
//! - [`record`]: [`Record`], the owned record a handler sees.
//! - [`time`]: [`epoch_ms`], the clock the headers use.
//! - [`topic`]: [`Topic`], an interned topic name.
//! - [`error`]: [`HandlerError`] and its [`ErrorKind`] (transient / permanent / throttled).
//! - [`headers`]: the one documented set of `rebound.*` header names.
//! - [`provenance`]: [`Provenance`], reading and writing a failed record's headers.
//! - [`backoff`]: [`Backoff`], exponential with cap and full jitter.
//! - [`retry`]: [`retry()`], the one retry loop on a [`Backoff`], and `Retry-After`.
//! - [`properties`]: [`ClientProperties`], librdkafka properties whose `Debug` hides secrets.
//! - [`trace`]: W3C trace context in record headers and the spans rebound opens.
//! - [`validate`]: the [`Validate`] trait; failures are permanent and name the field.
//! - [`webhook`]: Standard Webhooks signatures of every HTTP delivery.

pub mod backoff;
pub mod error;
pub mod headers;
pub mod properties;
pub mod provenance;
pub mod record;
pub mod retry;
pub mod time;
pub mod topic;
pub mod trace;
pub mod validate;
pub mod webhook;

pub use backoff::{Backoff, Jitter};
pub use error::{DisplayChain, ErrorKind, HandlerError, HandlerResult};
pub use properties::ClientProperties;
pub use provenance::Provenance;
pub use record::{Header, Record};
pub use retry::{retry, GaveUp, Next};
pub use time::epoch_ms;
pub use topic::Topic;
pub use validate::{Validate, ValidationError};
