//! The failure stack of a route: in-place retry, retry tiers, the DLQ and
//! the circuit breaker around the sink, built from [`RouteSettings`].

use std::sync::Arc;

use anyhow::Context;
use rebound_producer::Producer;
use rebound_worker::{
    Backoff, Breaker, BreakerConfig, BreakerLayer, DeadLetterLayer, DeadLetterPolicy,
    FloodGuardConfig, Handler, Layer, Metrics, RetryLayer, TopicNames, WorkerBuilder,
};

use super::settings::{OnFailure, RouteSettings};

/// The handler stack and what the worker needs to know about it.
pub struct Stack<H> {
    /// The wrapped handler.
    pub handler: H,
    /// Topics to subscribe to as delayed (retry tiers).
    pub delayed_topics: Vec<String>,
    /// Topics to create if missing: (name, partitions same as source).
    pub extra_topics: Vec<String>,
    /// The breaker, if on.
    pub breaker: Option<Arc<Breaker>>,
}

impl RouteSettings {
    fn names(&self) -> TopicNames {
        TopicNames {
            tier: self.tier_topic.clone(),
            dlq: self.dlq_topic.clone(),
        }
    }

    fn breaker(&self, metrics: &Arc<Metrics>) -> Option<Arc<Breaker>> {
        if self.breaker_failures == 0 && self.breaker_ratio.is_none() {
            return None;
        }
        Some(Breaker::new(
            BreakerConfig {
                consecutive_failures: self.breaker_failures,
                failure_ratio: self.breaker_ratio,
                window: self.breaker_window,
                min_calls: self.breaker_min_calls,
                cooldown: self.breaker_cooldown,
            },
            Some(metrics.clone()),
        ))
    }

    /// Wraps `sink`: DLQ/tiers → in-place retry → breaker → sink.
    pub fn stack<H: Handler>(
        &self,
        sink: H,
        brokers: &str,
        props: &[(String, String)],
        metrics: &Arc<Metrics>,
    ) -> anyhow::Result<Stack<Box<dyn DynHandler>>> {
        let breaker = self.breaker(metrics);
        let retry = RetryLayer::new(
            Backoff::exponential(self.retry_base, self.retry_cap.max(self.retry_base))
                .with_max_attempts(Some(self.retry_attempts)),
        );
        let guarded: Box<dyn DynHandler> = match &breaker {
            Some(b) => Box::new(retry.layer(BreakerLayer::new(b.clone()).layer(sink))),
            None => Box::new(retry.layer(sink)),
        };
        if self.on_failure == OnFailure::Freeze {
            return Ok(Stack {
                handler: guarded,
                delayed_topics: Vec::new(),
                extra_topics: Vec::new(),
                breaker,
            });
        }
        let (topic, group) = (self.topic.as_str(), self.group.as_str());
        let policy = DeadLetterPolicy::new(group)
            .with_tiers(self.retry_tiers.clone())
            .with_names(self.names())
            .with_flood_guard(FloodGuardConfig {
                ratio: self.flood_guard_ratio,
                window: self.flood_guard_window as usize,
                consecutive: self.flood_guard_consecutive,
            });
        let delayed_topics = policy.tier_topics(topic);
        let mut extra_topics = delayed_topics.clone();
        extra_topics.push(policy.dlq_topic(topic));
        // The DLQ producer counts into the worker's registry: one /metrics.
        let producer_metrics =
            rebound_producer::ProducerMetrics::in_registry(metrics.registry().clone());
        let producer = Producer::new(
            &crate::security::producer_config(brokers, props)
                .with_metrics(Arc::new(producer_metrics)),
        )
        .context("creating the producer for retry tiers and the DLQ")?;
        let handler: Box<dyn DynHandler> =
            Box::new(DeadLetterLayer::new(producer, policy, metrics.clone()).layer(guarded));
        Ok(Stack {
            handler,
            delayed_topics,
            extra_topics,
            breaker,
        })
    }

    /// Adds the stack's topics and pause signal to the worker config.
    pub fn configure<H>(&self, mut b: WorkerBuilder, stack: &Stack<H>) -> WorkerBuilder {
        for t in &stack.delayed_topics {
            b = b.with_delayed_topic(t);
        }
        if let Some(br) = &stack.breaker {
            b = b.with_pause_signal(br.pause_signal());
        }
        b
    }
}

/// An object-safe handler, so the stack's shape can depend on flags.
pub trait DynHandler: Send + Sync + 'static {
    /// Handles one record.
    fn handle_dyn<'a>(
        &'a self,
        record: &'a rebound_worker::Record,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = rebound_worker::HandlerResult> + Send + 'a>,
    >;
}

impl<H: Handler> DynHandler for H {
    fn handle_dyn<'a>(
        &'a self,
        record: &'a rebound_worker::Record,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = rebound_worker::HandlerResult> + Send + 'a>,
    > {
        Box::pin(self.handle(record))
    }
}

impl Handler for Box<dyn DynHandler> {
    async fn handle(&self, record: &rebound_worker::Record) -> rebound_worker::HandlerResult {
        // Through the trait object: `self.handle_dyn` would pick the blanket
        // impl for `Box<dyn DynHandler>` itself and recurse.
        (**self).handle_dyn(record).await
    }
}
