//! The DLQ flood guard on the broker: after a "bad deploy" makes every
//! record fail, the layer dead-letters until more than half of the last ten
//! records would have gone to the DLQ, then freezes instead — the tripping
//! record is not dead-lettered, not committed, and a restart runs it and
//! every later record: none lost.

use super::*;
use rebound_worker::{FloodGuardConfig, Handler, WorkerHandle};

/// A partition-ordered worker running `inner` under the DLQ layer of
/// `policy`; its layer and metrics.
async fn start_guarded<H: Handler>(
    bed: &Bed,
    group: &str,
    policy: &DeadLetterPolicy,
    inner: H,
) -> (WorkerHandle, DeadLetterLayer, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let producer = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    let layer = DeadLetterLayer::new(producer, policy.clone(), metrics.clone());
    let cfg = bed
        .config(group)
        .with_ordering(Ordering::Partition)
        .with_metrics(metrics.clone());
    let w = Worker::start(cfg.build().unwrap(), layer.layer(inner))
        .await
        .unwrap();
    (w, layer, metrics)
}

async fn wait_frozen(w: &WorkerHandle) {
    wait_until(Duration::from_secs(60), "the partition freezes", || async {
        !w.frozen().await.is_empty()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flood_guard_freezes_after_the_configured_ratio_and_loses_nothing() {
    let bed = Bed::new("flood", 1).await;
    let n = 60;
    bed.produce(n, |i| Some(format!("k{i}")));
    let group = unique_name("g");
    let policy = DeadLetterPolicy::new(&group).with_flood_guard(FloodGuardConfig {
        ratio: Some(0.5),
        window: 10,
        consecutive: None,
    });
    create_failure_topics(&bed, &policy).await;
    let seen: Shared<Vec<usize>> = Default::default();
    // Records 0..20 are fine; from 20 on, every one fails permanently.
    let inner = {
        let seen = seen.clone();
        handler_fn(move |rec: &Record| {
            let i = index_of(rec);
            seen.lock().unwrap().push(i);
            let r = if i < 20 {
                Ok(())
            } else {
                Err(HandlerError::permanent(format!("bad deploy: {i}")))
            };
            async move { r }
        })
    };
    let (w, layer, metrics) = start_guarded(&bed, &group, &policy, inner).await;
    // 20..25 are dead-lettered (at most 5 of the last 10); 25 makes 6: trip.
    wait_frozen(&w).await;
    let frozen = w.frozen().await;
    assert_eq!(frozen.len(), 1);
    assert_eq!(
        frozen[0].offset, 25,
        "frozen at the record that tripped the guard"
    );
    assert!(layer.flood_guard_tripped());
    assert_eq!(metrics.flood_guard_tripped.get(), 1);
    assert!(metrics
        .encode()
        .contains("rebound_dlq_flood_guard_tripped 1"));
    wait_until(
        Duration::from_secs(20),
        "the commit up to the frozen record",
        || {
            let c = bed.committed_total(&group);
            async move { c == 25 }
        },
    )
    .await;
    // Nothing more is taken or dead-lettered while frozen.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(*seen.lock().unwrap(), (0..=25).collect::<Vec<_>>());
    let dlq = read_all(bed.bootstrap(), &policy.dlq_topic(&bed.topic)).unwrap();
    let dead: Vec<&str> = dlq
        .iter()
        .map(|r| std::str::from_utf8(r.value.as_deref().unwrap()).unwrap())
        .collect();
    assert_eq!(dead, ["20", "21", "22", "23", "24"]);
    w.stop().await.unwrap();
    assert_eq!(
        bed.committed_total(&group),
        25,
        "nothing past the frozen record committed"
    );

    // The cause fixed, a restart runs the frozen record and everything after.
    let again: Shared<Vec<usize>> = Default::default();
    let handler = {
        let again = again.clone();
        handler_fn(move |rec: &Record| {
            again.lock().unwrap().push(index_of(rec));
            async { Ok(()) }
        })
    };
    let w = Worker::start(
        bed.config(&group)
            .with_ordering(Ordering::Partition)
            .build()
            .unwrap(),
        handler,
    )
    .await
    .unwrap();
    wait_until(Duration::from_secs(60), "the rest handled", || {
        let c = bed.committed_total(&group);
        async move { c == n as i64 }
    })
    .await;
    w.stop().await.unwrap();
    assert_eq!(*again.lock().unwrap(), (25..n).collect::<Vec<_>>());
}

/// A hop to a retry tier is no outcome: the guard counts a record when it
/// is handled or dead-lettered, not when it waits in a tier. Records
/// alternate permanent failures (DLQ) and transient ones (tier, delay far
/// beyond the test); with three dead-letters in a row as the limit, the
/// third permanent failure trips the guard although tier hops came between.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tier_hops_do_not_break_a_run_of_dead_letters() {
    let bed = Bed::new("flood-tier", 1).await;
    bed.produce(6, |i| Some(format!("k{i}")));
    let group = unique_name("g");
    let policy = DeadLetterPolicy::new(&group)
        .with_tiers(vec![Duration::from_secs(3600)])
        .with_flood_guard(FloodGuardConfig {
            ratio: None,
            window: 100,
            consecutive: Some(3),
        });
    create_failure_topics(&bed, &policy).await;
    let inner = handler_fn(move |rec: &Record| {
        let i = index_of(rec);
        let r = if i.is_multiple_of(2) {
            Err(HandlerError::permanent(format!("bad: {i}")))
        } else {
            Err(HandlerError::transient(format!("later: {i}")))
        };
        async move { r }
    });
    let (w, layer, _) = start_guarded(&bed, &group, &policy, inner).await;
    wait_frozen(&w).await;
    let frozen = w.frozen().await;
    assert_eq!(frozen[0].offset, 4, "the third dead-letter in a row trips");
    assert!(layer.flood_guard_tripped());
    w.stop().await.unwrap();
    let values = |topic: &str| -> Vec<String> {
        read_all(bed.bootstrap(), topic)
            .unwrap()
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
            .collect()
    };
    assert_eq!(values(&policy.dlq_topic(&bed.topic)), ["0", "2"]);
    assert_eq!(values(&policy.tier_topics(&bed.topic)[0]), ["1", "3"]);
    assert_eq!(bed.committed_total(&group), 4);
}
