//! Failure handling on the real broker: in-place retry, retry tiers, the
//! DLQ with provenance, the circuit breaker, and a crash between a DLQ
//! write and the source commit.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_retry_keeps_key_order_while_other_keys_progress() {
    let bed = Bed::new("t", 1).await;
    // Records 0..5 have key "slow"; 5..200 other keys. Record 0 fails 3 times.
    let n = 200;
    bed.produce(n, |i| {
        Some(if i < 5 {
            "slow".into()
        } else {
            format!("k{i}")
        })
    });
    let log: Arc<Mutex<Vec<(usize, Instant)>>> = Default::default();
    let failures = Arc::new(AtomicUsize::new(0));
    let inner = {
        let (log, failures) = (log.clone(), failures.clone());
        handler_fn(move |rec: &Record| {
            let i = index_of(rec);
            let fail = i == 0 && failures.fetch_add(1, AtomicOrdering::SeqCst) < 3;
            if !fail {
                log.lock().unwrap().push((i, Instant::now()));
            }
            async move {
                if fail {
                    Err(HandlerError::transient("not yet"))
                } else {
                    Ok(())
                }
            }
        })
    };
    let handler = in_place(10, 200).layer(inner);
    let cfg = bed
        .config(&unique_name("g"))
        .with_ordering(Ordering::Key)
        .with_max_in_flight(20)
        .build()
        .unwrap();
    let w = Worker::start(cfg, handler).await.unwrap();
    wait_until(Duration::from_secs(30), "all records", || {
        let d = log.lock().unwrap().len();
        async move { d >= n }
    })
    .await;
    w.stop().await.unwrap();
    let log = log.lock().unwrap();
    let slow: Vec<usize> = log.iter().map(|(i, _)| *i).filter(|i| *i < 5).collect();
    assert_eq!(slow, vec![0, 1, 2, 3, 4], "key order kept through retries");
    let slow_done = log.iter().find(|(i, _)| *i == 0).unwrap().1;
    let others_before = log
        .iter()
        .filter(|(i, t)| *i >= 5 && *t < slow_done)
        .count();
    assert_eq!(
        others_before,
        n - 5,
        "every other key finished during the backoff (200+400+800 ms)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_tiers_deliver_nothing_early_and_do_not_delay_other_records() {
    let bed = Bed::new("t", 1).await;
    let n = 100;
    bed.produce(n, |i| Some(format!("k{i}")));
    let group = unique_name("g");
    let policy = DeadLetterPolicy::new(&group).with_tiers(vec![Duration::from_secs(2)]);
    create_failure_topics(&bed, &policy).await;
    let tier_topic = policy.tier_topics(&bed.topic)[0].clone();
    let failing: HashSet<usize> = [3, 40, 77].into();
    // (index, topic, handled at ms, due header)
    let seen: Shared<Vec<Seen>> = Default::default();
    let inner = {
        let (seen, failing) = (seen.clone(), failing.clone());
        handler_fn(move |rec: &Record| {
            let i = index_of(rec);
            let due = rec.header_str(h::DUE).map(|d| d.parse().unwrap());
            seen.lock()
                .unwrap()
                .push((i, rec.topic.to_string(), epoch_ms(), due));
            let fail = failing.contains(&i) && due.is_none();
            async move {
                if fail {
                    Err(HandlerError::transient("first attempt fails"))
                } else {
                    Ok(())
                }
            }
        })
    };
    let metrics = Arc::new(Metrics::new());
    let producer = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    let handler = DeadLetterLayer::new(producer, policy.clone(), metrics.clone()).layer(inner);
    let cfg = bed
        .config(&group)
        .with_ordering(Ordering::Partition)
        .with_delayed_topic(&tier_topic)
        .with_metrics(metrics)
        .build()
        .unwrap();
    let w = Worker::start(cfg, handler).await.unwrap();
    wait_until(Duration::from_secs(30), "the retried records", || {
        let d = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.1 == tier_topic)
            .count();
        async move { d >= 3 }
    })
    .await;
    w.stop().await.unwrap();
    let seen = seen.lock().unwrap();
    let main_done = seen
        .iter()
        .filter(|s| s.1 == bed.topic)
        .map(|s| s.2)
        .max()
        .unwrap();
    let mut retried = 0;
    for (i, topic, at, due) in seen.iter() {
        if *topic == tier_topic {
            retried += 1;
            assert!(failing.contains(i));
            let due = due.unwrap();
            assert!(
                *at >= due,
                "record {i} handled at {at}, before its due time {due}"
            );
            assert!(
                main_done < due,
                "the main topic finished before the first retry was due"
            );
        }
    }
    assert_eq!(retried, 3);
    // Partition mode, one partition: the records after each failing one were
    // handled without waiting for its 2 s backoff.
    let first = seen.iter().map(|s| s.2).min().unwrap();
    assert!(
        main_done - first < 2_000,
        "main topic took {} ms",
        main_done - first
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_opens_pauses_half_opens_closes_and_skips_nothing() {
    let bed = Bed::new("t", 2).await;
    let n = 300;
    bed.produce(n, |i| Some(format!("k{i}")));
    let metrics = Arc::new(Metrics::new());
    let breaker = Breaker::new(
        BreakerConfig {
            consecutive_failures: 5,
            cooldown: Duration::from_millis(500),
            ..Default::default()
        },
        Some(metrics.clone()),
    );
    // The downstream is down for the first 1.5 s after the first call.
    let started: Arc<Mutex<Option<Instant>>> = Default::default();
    let calls_while_open = Arc::new(AtomicUsize::new(0));
    let handled: Arc<Mutex<HashSet<usize>>> = Default::default();
    let inner = {
        let (started, open_calls, handled, b) = (
            started.clone(),
            calls_while_open.clone(),
            handled.clone(),
            breaker.clone(),
        );
        handler_fn(move |rec: &Record| {
            if b.state() == BreakerState::Open {
                open_calls.fetch_add(1, AtomicOrdering::SeqCst);
            }
            let t0 = *started.lock().unwrap().get_or_insert_with(Instant::now);
            let down = t0.elapsed() < Duration::from_millis(1500);
            if !down {
                handled.lock().unwrap().insert(index_of(rec));
            }
            async move {
                if down {
                    Err(HandlerError::transient("downstream unavailable"))
                } else {
                    Ok(())
                }
            }
        })
    };
    let retry = RetryLayer::new(
        Backoff::exponential(Duration::from_millis(20), Duration::from_millis(200))
            .with_max_attempts(None),
    );
    let handler = retry.layer(BreakerLayer::new(breaker.clone()).layer(inner));
    let cfg = bed
        .config(&unique_name("g"))
        .with_ordering(Ordering::Key)
        .with_max_in_flight(10)
        .with_pause_signal(breaker.pause_signal())
        .with_metrics(metrics.clone())
        .build()
        .unwrap();
    let w = Worker::start(cfg, handler).await.unwrap();
    wait_until(Duration::from_secs(30), "every record", || {
        let d = handled.lock().unwrap().len();
        async move { d >= n }
    })
    .await;
    let summary = w.stop().await.unwrap();
    assert_eq!(
        calls_while_open.load(AtomicOrdering::SeqCst),
        0,
        "handler called while open"
    );
    assert!(metrics.breaker_transitions("open") >= 1);
    assert!(metrics.breaker_transitions("half_open") >= 1);
    assert_eq!(metrics.breaker_transitions("closed"), 1);
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(summary.stats.processed, n as u64, "nothing skipped");
    assert_eq!(summary.stats.failed, 0, "nothing froze or was given up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_dlq_write_and_commit_duplicates_at_most_never_loses() {
    let bed = Bed::new("t", 2).await;
    let n = 400;
    bed.produce(n, |i| Some(format!("k{i}")));
    let group = unique_name("g");
    let policy = DeadLetterPolicy::new(&group);
    create_failure_topics(&bed, &policy).await;
    let dlq_topic = policy.dlq_topic(&bed.topic);
    let poison: HashSet<usize> = (0..n).filter(|i| i % 10 == 3).collect();
    let handled: Arc<Mutex<HashSet<usize>>> = Default::default();
    let make = |handled: Arc<Mutex<HashSet<usize>>>| {
        let poison = poison.clone();
        let producer = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
        let inner = handler_fn(move |rec: &Record| {
            let i = index_of(rec);
            let bad = poison.contains(&i);
            if !bad {
                handled.lock().unwrap().insert(i);
            }
            async move {
                if bad {
                    Err(HandlerError::permanent("poison"))
                } else {
                    Ok(())
                }
            }
        });
        DeadLetterLayer::new(producer, policy.clone(), Arc::new(Metrics::new())).layer(inner)
    };
    // No commit before the crash: everything it did will be redone.
    let cfg = bed
        .config(&group)
        .with_commit_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    let w = Worker::start(cfg, make(handled.clone())).await.unwrap();
    let poison_count = poison.len();
    wait_until(Duration::from_secs(30), "the DLQ writes", || {
        let d = read_all(bed.bootstrap(), &dlq_topic).unwrap().len();
        async move { d >= poison_count }
    })
    .await;
    w.abort().await.unwrap();
    assert_eq!(
        bed.committed(&group)
            .iter()
            .filter(|c| c.0.is_some())
            .count(),
        0
    );

    let w = Worker::start(bed.config(&group).build().unwrap(), make(handled.clone()))
        .await
        .unwrap();
    wait_until(
        Duration::from_secs(30),
        "the restarted worker to commit the end",
        || {
            let c: i64 = bed.committed(&group).iter().map(|c| c.0.unwrap_or(0)).sum();
            async move { c == n as i64 }
        },
    )
    .await;
    w.stop().await.unwrap();
    let mut copies: HashMap<usize, usize> = HashMap::new();
    for r in read_all(bed.bootstrap(), &dlq_topic).unwrap() {
        let i: usize = std::str::from_utf8(r.value.as_ref().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        *copies.entry(i).or_default() += 1;
    }
    assert_eq!(
        copies.keys().copied().collect::<HashSet<_>>(),
        poison,
        "no poison record lost"
    );
    assert!(
        copies.values().all(|c| (1..=2).contains(c)),
        "at most a duplicate: {copies:?}"
    );
    assert!(
        copies.values().any(|c| *c == 2),
        "the crash did redo the DLQ writes"
    );
    let handled = handled.lock().unwrap();
    assert_eq!(handled.len(), n - poison.len(), "every good record handled");
}
