//! The handler API: what the worker calls for each record or batch.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures::FutureExt;
use rebound_core::trace::{self, Context, FutureExt as _, TraceContextExt as _, Tracer};
use rebound_core::{HandlerError, HandlerResult, Record};

use crate::dispatch::{Job, Outcome};

/// Handles one record. Return `Ok(())` when done; an error carries a kind
/// for the failure layers. A panic is caught and counts as a transient failure.
///
/// Handlers run on the worker's dispatcher task: up to `max_in_flight`
/// handler futures are polled concurrently there. Move CPU-heavy work to
/// `tokio::task::spawn_blocking` (or spawn it) inside the handler.
pub trait Handler: Send + Sync + 'static {
    /// Handles `record`.
    fn handle(&self, record: &Record) -> impl Future<Output = HandlerResult> + Send;
}

/// A batch failed from `index` on: records before it are finished.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("batch failed at record {index}: {error}")]
pub struct BatchError {
    /// Index of the first record that is not finished.
    pub index: usize,
    /// Why.
    pub error: HandlerError,
}

impl From<HandlerError> for BatchError {
    fn from(error: HandlerError) -> Self {
        BatchError { index: 0, error }
    }
}

/// Handles a batch of records of one partition, in offset order.
pub trait BatchHandler: Send + Sync + 'static {
    /// Handles `records`.
    fn handle_batch(
        &self,
        records: &[Record],
    ) -> impl Future<Output = Result<(), BatchError>> + Send;
}

impl<H: Handler> Handler for Arc<H> {
    fn handle(&self, record: &Record) -> impl Future<Output = HandlerResult> + Send {
        (**self).handle(record)
    }
}

/// A handler from a closure that reads what it needs from the record and
/// returns an owned future.
#[derive(Clone)]
pub struct FnHandler<F>(F);

/// Makes a [`Handler`] from `Fn(&Record) -> impl Future<Output = HandlerResult>`.
///
/// ```
/// use rebound_worker::{handler_fn, Record, HandlerResult};
/// let h = handler_fn(|rec: &Record| {
///     let offset = rec.offset;
///     async move { let _ = offset; HandlerResult::Ok(()) }
/// });
/// # let _ = h;
/// ```
pub fn handler_fn<F, Fut>(f: F) -> FnHandler<F>
where
    F: Fn(&Record) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    FnHandler(f)
}

impl<F, Fut> Handler for FnHandler<F>
where
    F: Fn(&Record) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    fn handle(&self, record: &Record) -> impl Future<Output = HandlerResult> + Send {
        (self.0)(record)
    }
}

/// A batch handler from a closure, like [`handler_fn`].
#[derive(Clone)]
pub struct FnBatchHandler<F>(F);

/// Makes a [`BatchHandler`] from `Fn(&[Record]) -> impl Future<...>`.
pub fn batch_handler_fn<F, Fut>(f: F) -> FnBatchHandler<F>
where
    F: Fn(&[Record]) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BatchError>> + Send + 'static,
{
    FnBatchHandler(f)
}

impl<F, Fut> BatchHandler for FnBatchHandler<F>
where
    F: Fn(&[Record]) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), BatchError>> + Send + 'static,
{
    fn handle_batch(
        &self,
        records: &[Record],
    ) -> impl Future<Output = Result<(), BatchError>> + Send {
        (self.0)(records)
    }
}

pub(crate) type JobFuture = Pin<Box<dyn Future<Output = (Job, Outcome)> + Send>>;

/// Turns jobs into futures; one implementation per handler flavour.
pub(crate) trait Runner: Send + Sync + 'static {
    fn run(self: &Arc<Self>, job: Job) -> JobFuture;
}

/// A handler and what its spans need: each record (or batch) is handled
/// inside its `process {topic}` span, so what the handler sends or posts
/// continues the record's trace.
pub(crate) struct Traced<H> {
    handler: H,
    tracer: Tracer,
    group: String,
}

impl<H> Traced<H> {
    /// Takes the tracer from the global provider as it is now.
    pub(crate) fn new(handler: H, group: &str) -> Self {
        Traced {
            handler,
            tracer: trace::tracer(),
            group: group.to_string(),
        }
    }

    /// Runs `handle` inside the span `open` makes (current in every poll of
    /// its future), then ends the span with the outcome. Without a provider
    /// and without a context on the records (`recs`), no span is made:
    /// nothing per record beyond a header scan. A new trace the sampler
    /// drops is not made current either.
    async fn within<F, Fut>(
        &self,
        recs: &[Record],
        open: impl FnOnce(&Tracer) -> Context,
        handle: F,
    ) -> Result<(), (usize, HandlerError)>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), (usize, HandlerError)>>,
    {
        let traced =
            self.tracer.is_live() || recs.iter().any(|r| trace::carries_context(&r.headers));
        // An unsampled new trace comes back empty: handled as if untraced.
        let cx = traced
            .then(|| open(&self.tracer))
            .filter(|cx| cx.has_active_span());
        let (cx, caught) = if let Some(cx) = cx {
            // `handle` returns an async block: the handler is called in its
            // first poll, with `cx` current.
            let caught = AssertUnwindSafe(handle())
                .catch_unwind()
                .with_context(cx.clone())
                .await;
            (Some(cx), caught)
        } else {
            (None, AssertUnwindSafe(handle()).catch_unwind().await)
        };
        let outcome = match caught {
            Ok(r) => r,
            Err(p) => Err((0, panic_error(p))),
        };
        if let Some(cx) = cx {
            trace::end(&cx, outcome.as_ref().map(|_| ()).map_err(|(_, e)| e));
        }
        outcome
    }
}

pub(crate) struct RecordRunner<H>(pub Traced<H>);
pub(crate) struct BatchRunner<B>(pub Traced<B>);

pub(crate) fn panic_error(payload: Box<dyn std::any::Any + Send>) -> HandlerError {
    let msg = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_string());
    HandlerError::transient(format!("handler panicked: {msg}"))
}

impl<H: Handler> Runner for RecordRunner<H> {
    fn run(self: &Arc<Self>, job: Job) -> JobFuture {
        let this = Arc::clone(self);
        Box::pin(async move {
            let t = &this.0;
            let outcome = match &job {
                Job::One { item, .. } => {
                    let open = |tr: &Tracer| trace::process_span(tr, &item.rec, Some(&t.group));
                    t.within(std::slice::from_ref(&item.rec), open, || async {
                        t.handler.handle(&item.rec).await.map_err(|e| (0, e))
                    })
                    .await
                }
                Job::Batch { .. } => Err((
                    0,
                    HandlerError::permanent("a record handler was given a batch job"),
                )),
            };
            (job, outcome)
        })
    }
}

impl<B: BatchHandler> Runner for BatchRunner<B> {
    fn run(self: &Arc<Self>, job: Job) -> JobFuture {
        let this = Arc::clone(self);
        Box::pin(async move {
            let t = &this.0;
            let outcome = match &job {
                Job::Batch { recs, .. } => {
                    let open = |tr: &Tracer| trace::batch_span(tr, recs, Some(&t.group));
                    t.within(recs, open, || async {
                        t.handler
                            .handle_batch(recs)
                            .await
                            .map_err(|e| (e.index, e.error))
                    })
                    .await
                }
                Job::One { item, .. } => {
                    let one = std::slice::from_ref(&item.rec);
                    let open = |tr: &Tracer| trace::process_span(tr, &item.rec, Some(&t.group));
                    t.within(one, open, || async {
                        t.handler.handle_batch(one).await.map_err(|e| (0, e.error))
                    })
                    .await
                }
            };
            (job, outcome)
        })
    }
}
