//! At-least-once pipelines batches (batch N is acknowledged while N+1 is
//! processed). Two things must hold that a one-batch-at-a-time loop got
//! for free:
//!
//! - a partition revoked while a batch of it is pending is given up only
//!   once that batch is committed: a second instance joining under load
//!   (a backlog) takes partitions over, then leaves again (the state
//!   moves twice, through the changelog), and every count is exact (no
//!   crash: no record may count twice or be lost);
//! - an application aborted (the demo's crash simulation) while a batch
//!   is pending closes its consumer at once, and a restart counts every
//!   record at least once;
//! - an output that fails delivery in the pending batch stops the
//!   application with the input offsets where they were (Apache Kafka:
//!   it enforces a topic's `max.message.bytes`, tansu does not).

use std::path::Path;
use std::time::Duration;

use rebound_producer::admin::{self, TopicSpec};
use rebound_stream::{Guarantee, StreamApp, StreamBuilder, StreamError, StreamHandle};
use rebound_testkit::{eventually, unique_name, TopicBed};

use crate::common::{config, expected_counts, state_dir, wait_last_values};

const WAIT: Duration = Duration::from_secs(90);
const KEYS: usize = 40;

fn key(i: usize) -> String {
    format!("k{}", i % KEYS)
}

/// Count by key, 100 µs a record: with a backlog every batch is full
/// (10,000 records, a second of work), so a batch is always pending when
/// the next is collected, which is when rebalance callbacks run.
async fn start_slow_count(bed: &TopicBed, app: &str, output: &str, dir: &Path) -> StreamHandle {
    let input = &bed.topic;
    let b = StreamBuilder::new(app);
    b.stream::<String, String>(input)
        .filter(|_, _| {
            std::thread::sleep(Duration::from_micros(100));
            true
        })
        .group_by_key()
        .count("counts")
        .to_stream()
        .to(output);
    let cfg = config(bed.bootstrap(), dir, Guarantee::AtLeastOnce);
    StreamApp::start(cfg, b.build().unwrap()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_while_a_batch_is_pending_keeps_every_count_exact() {
    let bed = TopicBed::new("alo-revoke", 4).await;
    let (app_id, out) = (unique_name("alo-revoke-app"), format!("{}-out", bed.topic));
    let (dir_a, dir_b) = (state_dir("alo-revoke-a"), state_dir("alo-revoke-b"));
    // A backlog of six seconds of A's work.
    const FIRST: usize = 60_000;
    bed.produce(FIRST, |i| Some(key(i)));
    let a = start_slow_count(&bed, &app_id, &out, &dir_a).await;
    let ma = a.metrics().clone();
    eventually(WAIT, "A processes", || async {
        ma.processed_total(&bed.topic) > 5_000
    })
    .await;
    // B joins: A's partitions are revoked while it has a batch pending.
    let b = start_slow_count(&bed, &app_id, &out, &dir_b).await;
    let mb = b.metrics().clone();
    eventually(WAIT, "both instances own partitions", || async {
        let (pa, pb) = (ma.active_partitions.get(), mb.active_partitions.get());
        pa > 0 && pb > 0 && pa + pb == 4
    })
    .await;
    eventually(WAIT, "B processes", || async {
        mb.processed_total(&bed.topic) > 1_000
    })
    .await;
    // B leaves mid-backlog: A takes its partitions back, restoring them
    // from their changelogs (its own files are behind).
    b.stop().await.unwrap();
    eventually(WAIT, "A owns every partition again", || async {
        ma.active_partitions.get() == 4
    })
    .await;
    bed.produce(2_000, |i| Some(key(FIRST + i)));
    let n = FIRST + 2_000;
    wait_last_values(bed.bootstrap(), &out, &expected_counts(n, key), WAIT).await;
    assert!(
        ma.revokes_deferred.get() > 0,
        "A's revoke waited for a pending batch (the case under test happened)"
    );
    a.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir_a);
    let _ = std::fs::remove_dir_all(&dir_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_abort_while_a_batch_is_pending_closes_and_a_restart_counts_every_record() {
    let bed = TopicBed::new("alo-abort", 2).await;
    let (app_id, out) = (unique_name("alo-abort-app"), format!("{}-out", bed.topic));
    let dir = state_dir("alo-abort");
    const N: usize = 20_000;
    bed.produce(N, |i| Some(key(i)));
    let a = start_slow_count(&bed, &app_id, &out, &dir).await;
    let m = a.metrics().clone();
    eventually(
        WAIT,
        "a batch committed and the next ones pending",
        || async { m.commits_total("committed") > 0 && m.processed_total(&bed.topic) > 2_000 },
    )
    .await;
    // The consumer's close (when the aborted loop's state is dropped)
    // revokes its partitions while a batch is pending: it must not wait
    // for an unassign the aborted loop will never make.
    tokio::time::timeout(Duration::from_secs(30), a.abort())
        .await
        .expect("the aborted application closed within 30 s");
    let b = start_slow_count(&bed, &app_id, &out, &dir).await;
    // At least once: the last update of each key is at least its count.
    let want = expected_counts(N, key);
    let ok = rebound_testkit::eventually_or(WAIT, || {
        let got =
            crate::common::last_values(&rebound_testkit::read_all(bed.bootstrap(), &out).unwrap());
        let done = want.iter().all(|(k, v)| {
            let (have, need): (u64, u64) = (
                got.get(k).map_or(0, |g| g.parse().unwrap()),
                v.parse().unwrap(),
            );
            have >= need
        });
        async move { done }
    })
    .await;
    assert!(
        ok,
        "some key counted less than its records after the restart"
    );
    b.stop().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_output_that_fails_delivery_stops_with_the_offsets_unmoved() {
    let bed = TopicBed::kafka("alo-undelivered", 1).await;
    let out = bed.another_topic(&format!("{}-out", bed.topic), 1).await;
    // A topic that refuses records over 1,000 bytes (the producer's own
    // limit is 1,000,000: the record is queued and fails at the broker).
    let small = unique_name("alo-small");
    let spec = TopicSpec {
        name: small.clone(),
        partitions: 1,
        replication: 1,
        configs: vec![("max.message.bytes".into(), "1000".into())],
    };
    admin::create_topic_with(bed.bootstrap(), &[], &spec, Duration::from_secs(30))
        .await
        .unwrap();
    let app_id = unique_name("alo-undelivered-app");
    let b = StreamBuilder::new(&app_id);
    let input = b.stream::<String, String>(&bed.topic);
    input.group_by_key().count("counts").to_stream().to(&out);
    input
        .filter(|k, _| k == "poison")
        .map(|k, _| (k, "x".repeat(5_000)))
        .to(&small);
    let dir = state_dir("alo-undelivered");
    let cfg = config(bed.bootstrap(), &dir, Guarantee::AtLeastOnce);
    let app = StreamApp::start(cfg, b.build().unwrap()).await.unwrap();

    bed.produce(100, |i| Some(key(i)));
    wait_last_values(bed.bootstrap(), &out, &expected_counts(100, key), WAIT).await;
    eventually(WAIT, "the first 100 offsets committed", || async {
        bed.committed(&app_id) == vec![(Some(100), String::new())]
    })
    .await;

    // The poison record (offset 100), then more good ones behind it.
    bed.produce_to(vec![(0, Some("poison".into()), "p".into())]);
    bed.produce(50, |i| Some(key(i)));
    eventually(WAIT, "the application stops", || {
        let done = app.is_finished();
        async move { done }
    })
    .await;
    match app.join().await {
        Err(StreamError::Undelivered { failed, output, .. }) => {
            assert_eq!(failed, 1);
            assert_eq!(output.topic, small);
        }
        other => panic!("want Undelivered, got {other:?}"),
    }
    assert_eq!(
        bed.committed(&app_id),
        vec![(Some(100), String::new())],
        "no offset past the unacknowledged output"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
