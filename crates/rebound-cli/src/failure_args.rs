//! Flags of the failure stack (`rebound worker`): in-place retry, retry
//! tiers, the DLQ and the circuit breaker, and the handler stack they build.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};
use rebound_producer::Producer;
use rebound_worker::{
    Backoff, Breaker, BreakerConfig, BreakerLayer, DeadLetterLayer, DeadLetterPolicy, Handler,
    Layer, Metrics, RetryLayer, TopicNames, WorkerBuilder,
};

use crate::args;

/// What happens to a record that still fails after in-place retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnFailure {
    /// Retry tiers (if any), then the dead-letter topic; the partition goes on.
    Dlq,
    /// Halt the partition at the record (nothing past it commits).
    Freeze,
}

/// Failure handling flags.
#[derive(Debug, Args)]
pub struct FailureArgs {
    /// Attempts per record in place (exponential backoff, full jitter).
    #[arg(long, env = "REBOUND_RETRY_ATTEMPTS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub retry_attempts: u32,
    /// First in-place retry delay.
    #[arg(long, env = "REBOUND_RETRY_BASE", default_value = "200ms", value_parser = args::duration)]
    pub retry_base: Duration,
    /// Largest in-place retry delay.
    #[arg(long, env = "REBOUND_RETRY_CAP", default_value = "30s", value_parser = args::duration)]
    pub retry_cap: Duration,
    /// After in-place retries: dead-letter (through the retry tiers) or freeze the partition.
    #[arg(long, env = "REBOUND_ON_FAILURE", value_enum, default_value = "dlq")]
    pub on_failure: OnFailure,
    /// Delays of the non-blocking retry tiers, comma separated (e.g. `10s,1m,10m`).
    /// Tiers give up per-key order; in-place retry keeps it.
    #[arg(long, env = "REBOUND_RETRY_TIERS", value_delimiter = ',', value_parser = args::duration)]
    pub retry_tiers: Vec<Duration>,
    /// Retry tier topic pattern (`{topic}`, `{n}`).
    #[arg(long, env = "REBOUND_TIER_TOPIC", default_value = "{topic}.retry.{n}",
          value_parser = pattern_tier)]
    pub tier_topic: String,
    /// Dead-letter topic pattern (`{topic}`).
    #[arg(long, env = "REBOUND_DLQ_TOPIC", default_value = "{topic}.dlq",
          value_parser = args::non_empty)]
    pub dlq_topic: String,
    /// Create missing tier and DLQ topics at start (as many partitions as the source).
    #[arg(long, env = "REBOUND_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub create_topics: bool,
    /// Consecutive transient failures that open the circuit breaker (0: off).
    #[arg(long, env = "REBOUND_BREAKER_FAILURES", default_value_t = 20)]
    pub breaker_failures: u32,
    /// Failure ratio over --breaker-window that opens the breaker (0–1; off when unset).
    #[arg(long, env = "REBOUND_BREAKER_RATIO", value_parser = ratio)]
    pub breaker_ratio: Option<f64>,
    /// Sliding window of --breaker-ratio.
    #[arg(long, env = "REBOUND_BREAKER_WINDOW", default_value = "30s", value_parser = args::duration)]
    pub breaker_window: Duration,
    /// Calls in the window before --breaker-ratio applies.
    #[arg(long, env = "REBOUND_BREAKER_MIN_CALLS", default_value_t = 20)]
    pub breaker_min_calls: u32,
    /// How long the breaker stays open before a trial call.
    #[arg(long, env = "REBOUND_BREAKER_COOLDOWN", default_value = "10s", value_parser = args::duration)]
    pub breaker_cooldown: Duration,
}

fn ratio(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|_| format!("{s:?} is not a number"))?;
    if v > 0.0 && v <= 1.0 {
        Ok(v)
    } else {
        Err(format!("{v} is not in (0, 1]"))
    }
}

fn pattern_tier(s: &str) -> Result<String, String> {
    if s.contains("{n}") {
        Ok(s.to_string())
    } else {
        Err(format!("{s:?} must contain {{n}} (the tier number)"))
    }
}

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

impl FailureArgs {
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
        topic: &str,
        group: &str,
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
        let policy = DeadLetterPolicy::new(group)
            .with_tiers(self.retry_tiers.clone())
            .with_names(self.names());
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
