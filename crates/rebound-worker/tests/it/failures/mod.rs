//! Failure handling on the real broker: in-place retry, retry tiers, the
//! DLQ with provenance, the circuit breaker, and a crash between a DLQ
//! write and the source commit.
//!
//! Here: the shared fixtures and the DLQ provenance test; [`retries`] has
//! in-place retry and retry tiers, [`breaker`] the breaker and the crash.

mod breaker;
mod flood_guard;
mod retries;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{index_of, wait_until, Bed, WorkerBed};
use rebound_core::{epoch_ms, headers as h};
use rebound_producer::{Producer, ProducerConfig};
use rebound_testkit::{create_topic, read_all, unique_name};
use rebound_worker::{
    handler_fn, Backoff, Breaker, BreakerConfig, BreakerLayer, BreakerState, DeadLetterLayer,
    DeadLetterPolicy, HandlerError, Jitter, Layer, Metrics, Ordering, Record, RetryLayer, Worker,
};

type Shared<T> = Arc<Mutex<T>>;
/// (record index, topic, handled at epoch ms, `rebound.due`)
type Seen = (usize, String, i64, Option<i64>);

fn mix(i: u64) -> u64 {
    let mut x = i ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

/// How record `i` behaves: `Some(n)`: its first n attempts fail transiently;
/// `None`: it always fails permanently. 30% transient, 1% permanent.
fn behaviour(i: usize) -> Option<u32> {
    let x = mix(i as u64);
    match x % 100 {
        99 => None,
        0..=29 => Some(1 + ((x / 100) % 7) as u32),
        _ => Some(0),
    }
}

fn in_place(attempts: u32, base_ms: u64) -> RetryLayer {
    RetryLayer::new(
        Backoff::exponential(Duration::from_millis(base_ms), Duration::from_secs(5))
            .with_jitter(Jitter::None)
            .with_max_attempts(Some(attempts)),
    )
}

async fn create_failure_topics(bed: &Bed, policy: &DeadLetterPolicy) {
    for t in policy.tier_topics(&bed.topic) {
        create_topic(bed.bootstrap(), &t, bed.partitions)
            .await
            .unwrap();
    }
    create_topic(bed.bootstrap(), &policy.dlq_topic(&bed.topic), 1)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_is_handled_or_dead_lettered_with_exact_provenance() {
    let bed = Bed::new("t", 3).await;
    let n = 1_500;
    bed.produce(n, |i| Some(format!("k{}", i % 150)));
    let group = unique_name("g");
    let policy = DeadLetterPolicy::new(&group)
        .with_tiers(vec![Duration::from_millis(200), Duration::from_millis(400)]);
    create_failure_topics(&bed, &policy).await;

    // index → (partition, offset) where it was first seen on the main topic.
    let origin: Shared<HashMap<usize, (i32, i64, i64)>> = Default::default();
    let attempts: Arc<Mutex<HashMap<usize, u32>>> = Default::default();
    let handled: Arc<Mutex<HashMap<usize, usize>>> = Default::default();
    let main_topic = bed.topic.clone();
    let inner = {
        let (origin, attempts, handled) = (origin.clone(), attempts.clone(), handled.clone());
        handler_fn(move |rec: &Record| {
            let i = index_of(rec);
            if *rec.topic == *main_topic {
                origin.lock().unwrap().entry(i).or_insert((
                    rec.partition,
                    rec.offset,
                    rec.timestamp.unwrap(),
                ));
            }
            let n = {
                let mut a = attempts.lock().unwrap();
                let n = a.entry(i).or_default();
                *n += 1;
                *n
            };
            let result = match behaviour(i) {
                None => Err(HandlerError::permanent(format!("record {i} is invalid"))),
                Some(f) if n <= f => Err(HandlerError::transient(format!(
                    "attempt {n} of {i} failed"
                ))),
                Some(_) => Ok(()),
            };
            if result.is_ok() {
                *handled.lock().unwrap().entry(i).or_default() += 1;
            }
            async move { result }
        })
    };
    let metrics = Arc::new(Metrics::new());
    let producer = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    let handler = DeadLetterLayer::new(producer, policy.clone(), metrics.clone())
        .layer(in_place(2, 5).layer(inner));
    let mut cfg = bed
        .config(&group)
        .with_ordering(Ordering::Key)
        .with_max_in_flight(64)
        .with_metrics(metrics.clone());
    for t in policy.tier_topics(&bed.topic) {
        cfg = cfg.with_delayed_topic(t);
    }
    let w = Worker::start(cfg.build().unwrap(), handler).await.unwrap();
    let expected_dlq: HashSet<usize> = (0..n)
        .filter(|i| matches!(behaviour(*i), None | Some(6..)))
        .collect();
    assert!(!expected_dlq.is_empty());
    let dlq_topic = policy.dlq_topic(&bed.topic);
    wait_until(
        Duration::from_secs(60),
        "every record handled or dead-lettered",
        || {
            let handled = handled.lock().unwrap().len();
            let dlq = read_all(bed.bootstrap(), &dlq_topic).unwrap().len();
            async move { handled + dlq >= n }
        },
    )
    .await;
    w.stop().await.unwrap();

    let handled = handled.lock().unwrap().clone();
    let dlq = read_all(bed.bootstrap(), &dlq_topic).unwrap();
    let dlq_ids: Vec<usize> = dlq
        .iter()
        .map(|r| {
            std::str::from_utf8(r.value.as_ref().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let dlq_set: HashSet<usize> = dlq_ids.iter().copied().collect();
    assert_eq!(dlq_ids.len(), dlq_set.len(), "a record dead-lettered twice");
    assert_eq!(
        dlq_set, expected_dlq,
        "exactly the exhausted and permanent records"
    );
    for i in 0..n {
        let in_dlq = dlq_set.contains(&i);
        let ok = handled.contains_key(&i);
        assert!(
            in_dlq ^ ok,
            "record {i}: handled {ok}, dead-lettered {in_dlq}"
        );
    }
    assert!(handled.values().all(|c| *c == 1), "a record handled twice");

    let origin = origin.lock().unwrap();
    for r in &dlq {
        let i: usize = std::str::from_utf8(r.value.as_ref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        let (p, o, ts) = origin[&i];
        assert_eq!(r.key.as_deref(), Some(format!("k{}", i % 150).as_bytes()));
        assert_eq!(r.header(h::ORIGINAL_TOPIC), Some(bed.topic.as_str()));
        assert_eq!(
            r.header(h::ORIGINAL_PARTITION),
            Some(p.to_string().as_str())
        );
        assert_eq!(r.header(h::ORIGINAL_OFFSET), Some(o.to_string().as_str()));
        assert_eq!(
            r.header(h::ORIGINAL_TIMESTAMP),
            Some(ts.to_string().as_str())
        );
        assert_eq!(r.header(h::CONSUMER_GROUP), Some(group.as_str()));
        let first: i64 = r.header(h::FIRST_FAILURE).unwrap().parse().unwrap();
        let last: i64 = r.header(h::LAST_FAILURE).unwrap().parse().unwrap();
        assert!(first <= last);
        assert_eq!(r.header(h::DUE), None);
        match behaviour(i) {
            None => {
                assert_eq!(r.header(h::ERROR_KIND), Some("permanent"));
                assert_eq!(r.header(h::ATTEMPT), Some("1"), "permanent: no retries");
                assert_eq!(
                    r.header(h::ERROR_MESSAGE),
                    Some(format!("record {i} is invalid").as_str())
                );
            }
            Some(_) => {
                assert_eq!(r.header(h::ERROR_KIND), Some("transient"));
                // 2 in place on the main topic, then 2 in each of the 2 tiers.
                assert_eq!(r.header(h::ATTEMPT), Some("6"));
                assert_eq!(
                    r.header(h::ERROR_MESSAGE),
                    Some(format!("attempt 6 of {i} failed").as_str())
                );
                assert!(
                    last - first >= 600,
                    "went through both tiers: {first}..{last}"
                );
            }
        }
    }
    assert!(metrics.retried_to_tier_count(1) > 0);
    assert_eq!(
        metrics.dead_lettered_count(rebound_worker::ErrorKind::Permanent) as usize,
        (0..n).filter(|i| behaviour(*i).is_none()).count()
    );
}
