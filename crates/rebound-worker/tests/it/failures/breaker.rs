//! The circuit breaker's cycle, and a crash between a DLQ write and the
//! source commit.

use super::*;

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
