//! The transform API: what an exactly-once pipeline calls for each record.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use rebound_core::{HandlerError, Record};
use rebound_producer::OutRecord;

use crate::handler::panic_error;

/// The records a transform emits for one input record.
pub type TransformResult = Result<Vec<OutRecord>, HandlerError>;

/// Turns one input record into zero or more output records. The output is
/// sent in the same transaction that commits the input's offset, so each
/// input's output appears exactly once to `read_committed` readers. Errors
/// carry a kind: transient and throttled ones are retried in place,
/// permanent ones (and exhausted retries) go to the dead-letter topic.
///
/// The transform may run again for the same record after an abort or a
/// crash: side effects outside Kafka are not covered by the transaction.
pub trait Transform: Send + Sync + 'static {
    /// Transforms `record`.
    fn transform(&self, record: &Record) -> impl Future<Output = TransformResult> + Send;
}

/// A transform from a closure that reads what it needs from the record and
/// returns an owned future.
#[derive(Clone)]
pub struct FnTransform<F>(F);

/// Makes a [`Transform`] from `Fn(&Record) -> impl Future<Output = TransformResult>`.
///
/// ```
/// use rebound_producer::OutRecord;
/// use rebound_worker::exactly_once::{transform_fn, TransformResult};
/// use rebound_worker::Record;
/// let upper = transform_fn(|rec: &Record| {
///     let value = rec.value.clone().unwrap_or_default().to_ascii_uppercase();
///     let key = rec.key.clone();
///     async move {
///         let mut out = OutRecord::new("shouted", value);
///         out.key = key;
///         TransformResult::Ok(vec![out])
///     }
/// });
/// # let _ = upper;
/// ```
pub fn transform_fn<F, Fut>(f: F) -> FnTransform<F>
where
    F: Fn(&Record) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = TransformResult> + Send + 'static,
{
    FnTransform(f)
}

impl<F, Fut> Transform for FnTransform<F>
where
    F: Fn(&Record) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = TransformResult> + Send + 'static,
{
    fn transform(&self, record: &Record) -> impl Future<Output = TransformResult> + Send {
        (self.0)(record)
    }
}

/// Runs `t` on `record`; a panic becomes a transient error.
pub(crate) async fn run_caught<T: Transform>(t: &T, record: &Record) -> TransformResult {
    match AssertUnwindSafe(t.transform(record)).catch_unwind().await {
        Ok(r) => r,
        Err(p) => Err(panic_error(p)),
    }
}
