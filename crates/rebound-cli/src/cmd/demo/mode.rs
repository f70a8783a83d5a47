//! One ordering mode's run of the demo: a worker with the full failure
//! stack (DLQ → retry tier → in-place retry → handler) over the demo topic.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use rand::Rng;
use rebound_producer::admin::create_topic;
use rebound_producer::{Producer, ProducerConfig};
use rebound_worker::{
    handler_fn, Backoff, DeadLetterLayer, DeadLetterPolicy, HandlerError, Layer, Metrics, Record,
    RetryLayer, TopicNames, Worker, WorkerConfig,
};

use super::behaviour::behaviour;
use super::DemoArgs;
use crate::cmd::OrderingArg;

/// Last handled offset per (partition, key).
type LastOffsets = HashMap<(i32, Vec<u8>), i64>;

/// What one mode's run observed.
pub struct ModeResult {
    pub mode: OrderingArg,
    pub handled: u64,
    pub distinct: usize,
    pub retried_in_place: u64,
    pub via_tier: u64,
    pub dead_lettered: usize,
    pub order_violations: u64,
    /// From start to the first handled record (group join).
    pub join: Duration,
    /// From the first handled record to the last.
    pub elapsed: Duration,
}

pub fn mode_name(m: OrderingArg) -> &'static str {
    match m {
        OrderingArg::Key => "key",
        OrderingArg::Unordered => "unordered",
        OrderingArg::Partition => "partition",
    }
}

#[derive(Default)]
struct Observed {
    handled: AtomicU64,
    failed_attempts: AtomicU64,
    via_tier: AtomicU64,
    violations: AtomicU64,
    seen: Mutex<HashSet<(i32, i64)>>,
    attempts: Mutex<HashMap<(i32, i64), u32>>,
    last_per_key: Mutex<LastOffsets>,
}

pub async fn run_mode(
    a: &DemoArgs,
    mode: OrderingArg,
    brokers: &str,
    topic: &str,
    n: usize,
    bar: ProgressBar,
) -> anyhow::Result<ModeResult> {
    let name = mode_name(mode);
    let group = format!("{topic}-{name}");
    let names = TopicNames {
        tier: format!("{{topic}}.{name}.retry.{{n}}"),
        dlq: format!("{{topic}}.{name}.dlq"),
    };
    let policy = DeadLetterPolicy::new(&group)
        .with_tiers(vec![a.retry_tier])
        .with_names(names);
    for t in policy.tier_topics(topic) {
        create_topic(brokers, &t, a.partitions).await?;
    }
    let dlq = policy.dlq_topic(topic);
    create_topic(brokers, &dlq, 1).await?;

    let obs = Arc::new(Observed::default());
    let (rates, max_work) = ((a.failure_rate, a.stubborn_rate, a.poison_rate), a.max_work);
    let check_order = mode != OrderingArg::Unordered;
    let main_topic = topic.to_string();
    let inner = {
        let obs = obs.clone();
        handler_fn(move |rec: &Record| {
            // Tier records carry their original coordinates in headers.
            let from_tier = *rec.topic != *main_topic;
            let id = original_id(rec);
            let key = rec.key.clone().unwrap_or_default();
            let b = behaviour(id.1, id.0, rates.0, rates.1, rates.2);
            let obs = obs.clone();
            async move {
                let work = rand::rng().random_range(0..=max_work.as_micros() as u64);
                tokio::time::sleep(Duration::from_micros(work)).await;
                let attempt = {
                    let mut a = obs.attempts.lock().expect("lock");
                    let n = a.entry(id).or_default();
                    *n += 1;
                    *n
                };
                match b.failures() {
                    None => return Err(HandlerError::permanent("payload failed validation")),
                    Some(f) if attempt <= f => {
                        obs.failed_attempts.fetch_add(1, AtomicOrdering::Relaxed);
                        return Err(HandlerError::transient("simulated downstream timeout"));
                    }
                    Some(_) => {}
                }
                if from_tier {
                    obs.via_tier.fetch_add(1, AtomicOrdering::Relaxed);
                } else if check_order {
                    // Tiers give up per-key order by design: check the main topic only.
                    let mut last = obs.last_per_key.lock().expect("lock");
                    if last.insert((id.0, key), id.1).is_some_and(|p| p > id.1) {
                        obs.violations.fetch_add(1, AtomicOrdering::Relaxed);
                    }
                }
                obs.seen.lock().expect("lock").insert(id);
                obs.handled.fetch_add(1, AtomicOrdering::Relaxed);
                Ok(())
            }
        })
    };
    let metrics = Arc::new(Metrics::new());
    let producer = Producer::new(&ProducerConfig::new(brokers))?;
    let retry = RetryLayer::new(
        Backoff::exponential(Duration::from_millis(5), Duration::from_millis(100))
            .with_max_attempts(Some(2)),
    );
    let handler =
        DeadLetterLayer::new(producer, policy.clone(), metrics.clone()).layer(retry.layer(inner));
    let mut config = WorkerConfig::builder()
        .with_brokers(brokers)
        .with_group(&group)
        .with_topic(topic)
        .with_ordering(mode.into())
        .with_max_in_flight(a.max_in_flight as usize)
        .with_session_timeout(Duration::from_secs(6))
        .with_commit_interval(Duration::from_millis(500))
        .with_connect_timeout(Duration::from_secs(15))
        .with_metrics(metrics.clone());
    for t in policy.tier_topics(topic) {
        config = config.with_delayed_topic(t);
    }
    let started = Instant::now();
    let worker = Worker::start(config.build()?, handler).await?;
    let mut first: Option<Instant> = None;
    loop {
        let done = obs.seen.lock().expect("lock").len();
        let dead = metrics.dead_lettered_count(rebound_worker::ErrorKind::Permanent) as usize
            + metrics.dead_lettered_count(rebound_worker::ErrorKind::Transient) as usize;
        if done > 0 && first.is_none() {
            first = Some(Instant::now());
        }
        bar.set_position((done + dead) as u64);
        if done + dead >= n {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("{name} mode did not finish within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let first = first.unwrap_or(started);
    let (join, elapsed) = (first - started, first.elapsed());
    worker.stop().await?;
    bar.finish_with_message(format!("{name} mode done"));
    let (b, d) = (brokers.to_string(), dlq.clone());
    let dead_lettered = tokio::task::spawn_blocking(move || super::count_records(&b, &d)).await??;
    let distinct = obs.seen.lock().expect("lock").len();
    Ok(ModeResult {
        mode,
        handled: obs.handled.load(AtomicOrdering::Relaxed),
        distinct,
        retried_in_place: obs.failed_attempts.load(AtomicOrdering::Relaxed),
        via_tier: obs.via_tier.load(AtomicOrdering::Relaxed),
        dead_lettered,
        order_violations: obs.violations.load(AtomicOrdering::Relaxed),
        join,
        elapsed,
    })
}

/// (partition, offset) where the record was first consumed.
fn original_id(rec: &Record) -> (i32, i64) {
    use rebound_core::headers as h;
    match (
        rec.header_str(h::ORIGINAL_PARTITION)
            .and_then(|p| p.parse().ok()),
        rec.header_str(h::ORIGINAL_OFFSET)
            .and_then(|o| o.parse().ok()),
    ) {
        (Some(p), Some(o)) => (p, o),
        _ => (rec.partition, rec.offset),
    }
}
