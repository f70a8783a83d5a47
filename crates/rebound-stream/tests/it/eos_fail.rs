//! Exactly-once with an output that fails for good: a record over the
//! producer's size limit aborts every transaction of its batch. The
//! application must stop after a bounded number of aborts, naming the
//! topic, with health saying so, instead of reading the batch for ever.

use std::time::Duration;

use rebound_stream::{Guarantee, StreamApp, StreamBuilder, StreamConfig, StreamError};
use rebound_testkit::{eventually_or, read_all_uncommitted, unique_name, TopicBed};

use crate::common::state_dir;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_fails_for_good_stops_exactly_once_after_bounded_aborts() {
    let bed = TopicBed::new("eos-too-large", 1).await;
    let out = bed.another_topic(&format!("{}-out", bed.topic), 1).await;
    let app_id = unique_name("eos-too-large-app");
    let b = StreamBuilder::new(&app_id);
    // 2 MB values: over librdkafka's message.max.bytes (1,000,000).
    b.stream::<String, String>(&bed.topic)
        .map(|k, _| (k, "x".repeat(2_000_000)))
        .to(&out);
    let dir = state_dir("eos-too-large");
    let cfg = StreamConfig::builder()
        .with_brokers(bed.bootstrap())
        .with_state_dir(&dir)
        .with_guarantee(Guarantee::ExactlyOnce)
        .with_commit_interval(Duration::from_millis(50))
        .with_session_timeout(Duration::from_secs(6))
        .with_max_aborts(3)
        .with_max_abort_time(Duration::ZERO)
        .build()
        .unwrap();
    bed.produce(3, |i| Some(format!("k{i}")));
    let app = StreamApp::start(cfg, b.build().unwrap()).await.unwrap();

    let stopped = eventually_or(Duration::from_secs(60), || {
        let done = app.is_finished();
        async move { done }
    })
    .await;
    assert!(stopped, "still retrying the failing batch after 60 s");
    let health = app.health().report();
    assert!(!health.live && !health.ready, "{health:?}");
    assert!(
        health.reasons.iter().any(|r| r.contains(&out)),
        "health names the output topic: {health:?}"
    );
    match app.join().await {
        Err(StreamError::Aborted { aborts, last }) => {
            assert_eq!(aborts, 3);
            assert!(
                last.contains(&format!("a record for {out} failed")),
                "{last}"
            );
        }
        other => panic!("want Aborted, got {other:?}"),
    }
    assert!(
        read_all_uncommitted(bed.bootstrap(), &out)
            .unwrap()
            .is_empty(),
        "nothing reached the output"
    );
    assert!(
        bed.committed(&app_id).iter().all(|(o, _)| o.is_none()),
        "no input offset committed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Aborts in a row stop the application only once the time bound has
/// passed too: a broker restart or a coordinator move is waited out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborts_are_waited_out_for_the_configured_time() {
    let bed = TopicBed::new("eos-abort-time", 1).await;
    let out = bed.another_topic(&format!("{}-out", bed.topic), 1).await;
    let app_id = unique_name("eos-abort-time-app");
    let b = StreamBuilder::new(&app_id);
    b.stream::<String, String>(&bed.topic)
        .map(|k, _| (k, "x".repeat(2_000_000)))
        .to(&out);
    let dir = state_dir("eos-abort-time");
    let cfg = StreamConfig::builder()
        .with_brokers(bed.bootstrap())
        .with_state_dir(&dir)
        .with_guarantee(Guarantee::ExactlyOnce)
        .with_commit_interval(Duration::from_millis(50))
        .with_session_timeout(Duration::from_secs(6))
        .with_max_aborts(1)
        .with_max_abort_time(Duration::from_secs(4))
        .build()
        .unwrap();
    bed.produce(1, |i| Some(format!("k{i}")));
    let app = StreamApp::start(cfg, b.build().unwrap()).await.unwrap();
    // The first abort comes within a few seconds of the join; one abort is
    // the limit in number, yet the application is still up 2 s later.
    let started = std::time::Instant::now();
    let stopped = eventually_or(Duration::from_secs(60), || {
        let done = app.is_finished();
        async move { done }
    })
    .await;
    assert!(stopped, "still retrying after 60 s");
    match app.join().await {
        Err(StreamError::Aborted { aborts, .. }) => {
            assert!(aborts >= 2, "stopped at the first abort: {aborts}");
        }
        other => panic!("want Aborted, got {other:?}"),
    }
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "stopped before the time bound: {:?}",
        started.elapsed()
    );
    let _ = std::fs::remove_dir_all(&dir);
}
