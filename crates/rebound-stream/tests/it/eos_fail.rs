//! Exactly-once with an output that fails for good: a record over the
//! producer's size limit (refused when sent) or over the output topic's
//! (refused by the broker, seen when the commit fails) aborts every
//! transaction of its batch. The application must stop after a bounded
//! number of aborts (and time), naming the topic, with health saying so,
//! instead of reading the batch for ever.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use rebound_stream::{
    FailedOutput, Guarantee, StreamApp, StreamBuilder, StreamConfig, StreamError, StreamHandle,
};
use rebound_testkit::{
    create_topic_configured, eventually_or, read_all_uncommitted, unique_name, TopicBed,
};

use crate::common::state_dir;

/// An application whose every output is `value_len` bytes long (2 MB is
/// over librdkafka's `message.max.bytes`, 1,000,000), with the given abort
/// bounds, started on `records` input records; and its output topic and
/// state directory.
struct TooLarge {
    bed: TopicBed,
    out: String,
    app_id: String,
    dir: PathBuf,
    app: StreamHandle,
}

impl TooLarge {
    async fn start(name: &str, records: usize, max_aborts: u32, max_time: Duration) -> TooLarge {
        let bed = TopicBed::new(name, 1).await;
        let out = bed.another_topic(&format!("{}-out", bed.topic), 1).await;
        TooLarge::on(bed, out, 2_000_000, records, (max_aborts, max_time)).await
    }

    /// [`TooLarge::start`] on `bed`, writing to `out`.
    async fn on(
        bed: TopicBed,
        out: String,
        value_len: usize,
        records: usize,
        (max_aborts, max_time): (u32, Duration),
    ) -> TooLarge {
        let name = bed.topic.clone();
        let app_id = unique_name(&format!("{name}-app"));
        let b = StreamBuilder::new(&app_id);
        b.stream::<String, String>(&bed.topic)
            .map(move |k, _| (k, "x".repeat(value_len)))
            .to(&out);
        let dir = state_dir(&name);
        let cfg = StreamConfig::builder()
            .with_brokers(bed.bootstrap())
            .with_state_dir(&dir)
            .with_guarantee(Guarantee::ExactlyOnce)
            .with_commit_interval(Duration::from_millis(50))
            .with_session_timeout(Duration::from_secs(6))
            .with_max_aborts(max_aborts)
            .with_max_abort_time(max_time)
            .build()
            .unwrap();
        bed.produce(records, |i| Some(format!("k{i}")));
        let app = StreamApp::start(cfg, b.build().unwrap()).await.unwrap();
        TooLarge {
            bed,
            out,
            app_id,
            dir,
            app,
        }
    }

    /// Waits (up to 60 s) for the application to stop on its own.
    async fn stopped(&self) {
        let stopped = eventually_or(Duration::from_secs(60), || {
            let done = self.app.is_finished();
            async move { done }
        })
        .await;
        assert!(stopped, "still retrying the failing batch after 60 s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_fails_for_good_stops_exactly_once_after_bounded_aborts() {
    let t = TooLarge::start("eos-too-large", 3, 3, Duration::ZERO).await;
    stops_naming_the_output(t, |_| {}).await;
}

/// A record librdkafka accepts but the broker refuses (over the output
/// topic's `max.message.bytes`): its send succeeds, and the failure shows
/// only when the transaction's commit flushes it. The record named is
/// then found among the batch's acknowledgements. Apache Kafka: tansu
/// does not enforce the topic's limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_the_broker_refuses_fails_the_commit_and_is_named() {
    let bed = TopicBed::kafka("eos-refused", 1).await;
    let out = format!("{}-out", bed.topic);
    create_topic_configured(bed.bootstrap(), &out, 1, &[("max.message.bytes", "10000")])
        .await
        .unwrap();
    let t = TooLarge::on(bed, out, 50_000, 3, (3, Duration::ZERO)).await;
    stops_naming_the_output(t, |last| {
        assert!(
            last.contains("too large"),
            "the broker's refusal is the cause: {last}"
        )
    })
    .await;
}

/// Waits for `t` to stop after its aborts; checks health, the error (its
/// last abort's words go to `last`), and that nothing was committed.
async fn stops_naming_the_output(t: TooLarge, last_words: impl FnOnce(&str)) {
    t.stopped().await;
    let health = t.app.health().report();
    assert!(!health.live && !health.ready, "{health:?}");
    assert!(
        health.reasons.iter().any(|r| r.contains(&t.out)),
        "health names the output topic: {health:?}"
    );
    let (bed, out, app_id, dir) = (t.bed, t.out, t.app_id, t.dir);
    match t.app.join().await {
        Err(StreamError::Aborted {
            aborts,
            failed,
            last,
        }) => {
            assert_eq!(aborts, 3);
            let want = FailedOutput {
                topic: out.clone(),
                partition: None,
            };
            assert_eq!(failed, Some(want), "{last}");
            last_words(&last);
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
    // One abort is the limit in number; the application still goes on
    // until 4 s have passed since the first.
    let started = Instant::now();
    let t = TooLarge::start("eos-abort-time", 1, 1, Duration::from_secs(4)).await;
    t.stopped().await;
    let dir = t.dir.clone();
    match t.app.join().await {
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
