//! Delivery reports: librdkafka calls back once per record, on the
//! producer's polling thread; the report counts the record in the metrics
//! and then completes a future, runs a callback, or (fire-and-forget) does
//! nothing more.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use rdkafka::error::KafkaError;
use rdkafka::message::{DeliveryResult, Message};
use rdkafka::producer::{BaseRecord, ProducerContext};
use rdkafka::ClientContext;
use rebound_core::trace::{self, Context as TraceContext, Tracer};
use tokio::sync::oneshot;

use crate::error::ProduceError;
use crate::metrics::ProducerMetrics;
use crate::record::OutRecord;

/// Where a record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    /// Partition.
    pub partition: i32,
    /// Offset (negative when the broker does not answer: `acks=0`).
    pub offset: i64,
}

/// The outcome of one record.
pub type DeliveryOutcome = Result<Delivered, ProduceError>;

type Callback = Box<dyn FnOnce(DeliveryOutcome) + Send>;

/// What to do when a record's report arrives.
pub(crate) enum Notify {
    /// Complete a [`Pending`].
    Future(oneshot::Sender<DeliveryOutcome>),
    /// Run a callback (behind a mutex only because librdkafka's opaque must
    /// be `Sync`; it is taken once).
    Callback(Mutex<Option<Callback>>),
    /// Nothing beyond the metrics.
    Forget,
}

/// The per-record state librdkafka carries from enqueue to report.
pub(crate) struct Completion {
    started: Instant,
    notify: Notify,
    /// The record's `send` span, ended with its report.
    pub(crate) span: TraceContext,
}

impl Completion {
    pub(crate) fn new(notify: Notify) -> Box<Self> {
        Box::new(Completion {
            started: Instant::now(),
            notify,
            span: TraceContext::new(),
        })
    }

    pub(crate) fn callback(f: impl FnOnce(DeliveryOutcome) + Send + 'static) -> Box<Self> {
        Self::new(Notify::Callback(Mutex::new(Some(Box::new(f)))))
    }
}

/// The rdkafka context of every producer here.
pub(crate) struct DeliveryContext {
    pub(crate) metrics: Arc<ProducerMetrics>,
    /// Opens each record's `send` span (global provider at creation).
    pub(crate) tracer: Tracer,
}

impl DeliveryContext {
    pub(crate) fn new(metrics: Arc<ProducerMetrics>) -> Self {
        DeliveryContext {
            metrics,
            tracer: trace::tracer(),
        }
    }

    /// The rdkafka record sending `rec`, under its own `send {topic}` span
    /// whose context it carries and which its report ends.
    pub(crate) fn traced<'a>(
        &self,
        rec: &'a OutRecord,
        mut c: Box<Completion>,
    ) -> BaseRecord<'a, [u8], [u8], Box<Completion>> {
        c.span = trace::send_span(&self.tracer, &rec.topic, &rec.headers);
        let span = c.span.clone();
        rec.as_base_record(c, &span)
    }
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Box<Completion>;

    fn delivery(&self, result: &DeliveryResult<'_>, c: Box<Completion>) {
        let outcome = match result {
            Ok(m) => {
                self.metrics.record_delivered(c.started.elapsed());
                trace::record_delivery(&c.span, m.partition(), m.offset());
                trace::end::<KafkaError>(&c.span, Ok(()));
                Ok(Delivered {
                    partition: m.partition(),
                    offset: m.offset(),
                })
            }
            Err((e, m)) => {
                self.metrics.record_failed(e);
                trace::end(&c.span, Err(e));
                Err((e, m.topic()))
            }
        };
        let outcome =
            || outcome.map_err(|(e, t): (&KafkaError, &str)| ProduceError::new(t, e.clone()));
        match c.notify {
            Notify::Future(tx) => {
                // The receiver may be gone: nobody waits, nothing to do.
                let _ = tx.send(outcome());
            }
            Notify::Callback(cb) => {
                let f = cb.lock().unwrap_or_else(|p| p.into_inner()).take();
                if let Some(f) = f {
                    f(outcome());
                }
            }
            Notify::Forget => {
                if let Err(e) = outcome() {
                    tracing::debug!(error = %e, "fire-and-forget record failed");
                }
            }
        }
    }
}

/// A record's acknowledgement, returned as soon as the record is queued so
/// many can be in flight; resolves when the broker answered or librdkafka
/// gave up (after the delivery timeout). Dropping it does not cancel the
/// record.
#[derive(Debug)]
#[must_use = "a Pending does nothing unless awaited; drop it to not wait"]
pub struct Pending {
    pub(crate) rx: oneshot::Receiver<DeliveryOutcome>,
}

impl Future for Pending {
    type Output = DeliveryOutcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.rx).poll(cx).map(|r| {
            // The sender is dropped unsent only if librdkafka freed the
            // record without a report (the client was destroyed).
            r.unwrap_or_else(|_| Err(ProduceError::new("<producer closed>", KafkaError::Canceled)))
        })
    }
}
