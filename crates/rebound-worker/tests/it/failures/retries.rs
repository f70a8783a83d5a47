//! In-place retry keeps key order; retry tiers deliver nothing early.

use super::*;

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
