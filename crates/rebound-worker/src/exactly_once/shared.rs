//! What the pipeline's loop and each transaction share: the consumer (with
//! a context that remembers revoked partitions), the transactional producer,
//! the transform, the configuration and the metrics. Its own module so that
//! the loop (`pipeline`) and a transaction (`txn`) both depend on it and not
//! on each other.

use std::sync::{Arc, Mutex};

use rdkafka::consumer::{BaseConsumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::ClientContext;
use rebound_core::Topic;
use rebound_producer::TransactionalProducer;
use tracing::info;

use super::config::PipelineConfig;
use super::metrics::PipelineMetrics;
use super::observer::CommitObserver;

/// Consumer context: remembers revoked partitions, so records fetched from
/// them before the revoke are dropped from the batch being collected.
#[derive(Default)]
pub(crate) struct EosCtx {
    pub(super) revoked: Mutex<Vec<(Topic, i32)>>,
}

impl ClientContext for EosCtx {}

impl ConsumerContext for EosCtx {
    fn pre_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let mut revoked = self.revoked.lock().expect("revoked list");
            for e in tpl.elements() {
                revoked.push((Topic::intern(e.topic()), e.partition()));
            }
            info!(partitions = tpl.count(), "partitions revoked");
        }
    }
}

/// What the loop and each transaction share.
pub(crate) struct Shared<T> {
    pub cfg: PipelineConfig,
    pub consumer: Arc<StreamConsumer<EosCtx>>,
    pub producer: TransactionalProducer,
    pub transform: T,
    pub metrics: Arc<PipelineMetrics>,
    /// Opens each input record's `process` span.
    pub tracer: rebound_core::trace::Tracer,
}

impl<T> Shared<T> {
    pub(crate) fn observe(&self, f: impl FnOnce(&dyn CommitObserver)) {
        if let Some(o) = &self.cfg.observer {
            f(o.as_ref());
        }
    }
}
