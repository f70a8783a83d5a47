//! State moves with its partitions: two instances share the input; one
//! leaves; the survivor restores the partitions it takes over (from their
//! changelogs) before processing them, and every count stays exact.

use std::time::Duration;

use rebound_stream::{Guarantee, StreamConfig};
use rebound_testkit::{eventually, read_all as bed_read_all, unique_name, TopicBed};

use crate::common::{config, expected_counts, start_count, state_dir, wait_last_values};

const WAIT: Duration = Duration::from_secs(90);

async fn two_instances_one_leaves(g: Guarantee) {
    let bed = TopicBed::new("rebalance", 4).await;
    let key = |i: usize| format!("k{}", i % 40);
    let (app_id, out) = (unique_name("rebalance-app"), format!("{}-out", bed.topic));
    let changelog = format!("{app_id}-counts-changelog");
    let (dir_a, dir_b) = (state_dir("rebalance-a"), state_dir("rebalance-b"));

    let a = start_count(
        &app_id,
        &bed.topic,
        &out,
        config(bed.bootstrap(), &dir_a, g),
    )
    .await;
    let b = start_count(
        &app_id,
        &bed.topic,
        &out,
        config(bed.bootstrap(), &dir_b, g),
    )
    .await;
    let (ma, mb) = (a.metrics().clone(), b.metrics().clone());
    eventually(WAIT, "both instances own partitions", || async {
        let (pa, pb) = (ma.active_partitions.get(), mb.active_partitions.get());
        pa > 0 && pb > 0 && pa + pb == 4
    })
    .await;
    bed.produce(2000, |i| Some(key(i)));
    wait_last_values(bed.bootstrap(), &out, &expected_counts(2000, key), WAIT).await;
    assert!(
        ma.processed_total(&bed.topic) > 0 && mb.processed_total(&bed.topic) > 0,
        "both processed"
    );

    // B leaves: A takes its partitions over, restoring their state first.
    let restored_before = ma.restored_total(&changelog);
    b.stop().await.unwrap();
    eventually(WAIT, "the survivor owns every partition", || async {
        ma.active_partitions.get() == 4
    })
    .await;
    assert!(
        ma.restored_total(&changelog) > restored_before,
        "the survivor restored B's partitions"
    );
    bed.produce(2000, |i| Some(key(i + 2000)));
    wait_last_values(bed.bootstrap(), &out, &expected_counts(4000, key), WAIT).await;
    a.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_leaves_the_survivor_restores_and_counts_stay_exact() {
    two_instances_one_leaves(Guarantee::AtLeastOnce).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_one_leaves_exactly_once() {
    two_instances_one_leaves(Guarantee::ExactlyOnce).await;
}

/// At-least-once commits once an hour here, so every record is processed
/// and its output sent long before any interval commit. A second instance
/// joining takes partitions away from the first (a cooperative revoke):
/// the first commits what it processed before giving them up, so nothing
/// is processed twice — every key's outputs are 1, 2, …, n, once each —
/// and the stops commit the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_between_commits_commits_before_giving_partitions_up() {
    let bed = TopicBed::new("revoke-mid", 4).await;
    let key = |i: usize| format!("k{}", i % 40);
    let (app_id, out) = (unique_name("revoke-mid-app"), format!("{}-out", bed.topic));
    let cfg = |dir: &std::path::Path| {
        StreamConfig::builder()
            .with_brokers(bed.bootstrap())
            .with_state_dir(dir)
            .with_commit_interval(Duration::from_secs(3600))
            .with_session_timeout(Duration::from_secs(6))
            .build()
            .unwrap()
    };
    let (dir_a, dir_b) = (state_dir("revoke-mid-a"), state_dir("revoke-mid-b"));

    let a = start_count(&app_id, &bed.topic, &out, cfg(&dir_a)).await;
    let ma = a.metrics().clone();
    eventually(WAIT, "the first instance owns every partition", || async {
        ma.active_partitions.get() == 4
    })
    .await;
    bed.produce(2000, |i| Some(key(i)));
    wait_last_values(bed.bootstrap(), &out, &expected_counts(2000, key), WAIT).await;
    assert_eq!(ma.processed_total(&bed.topic), 2000);
    assert_eq!(bed.committed_total(&app_id), 0, "nothing committed yet");

    let b = start_count(&app_id, &bed.topic, &out, cfg(&dir_b)).await;
    let mb = b.metrics().clone();
    eventually(WAIT, "both instances own partitions", || async {
        let (pa, pb) = (ma.active_partitions.get(), mb.active_partitions.get());
        pa > 0 && pb > 0 && pa + pb == 4
    })
    .await;
    // A committed what it had processed before giving partitions up.
    assert_eq!(
        bed.committed_total(&app_id),
        2000,
        "A committed before the revoke"
    );
    bed.produce(2000, |i| Some(key(i + 2000)));
    wait_last_values(bed.bootstrap(), &out, &expected_counts(4000, key), WAIT).await;
    assert_eq!(
        ma.processed_total(&bed.topic) + mb.processed_total(&bed.topic),
        4000,
        "no record processed twice"
    );
    let mut seen: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    for r in bed_read_all(bed.bootstrap(), &out).unwrap() {
        let k = String::from_utf8(r.key.unwrap_or_default()).unwrap();
        let v: u64 = String::from_utf8(r.value.unwrap_or_default())
            .unwrap()
            .parse()
            .unwrap();
        seen.entry(k).or_default().push(v);
    }
    for (k, vs) in &seen {
        let want: Vec<u64> = (1..=vs.len() as u64).collect();
        assert_eq!(vs, &want, "key {k}: every update once, in order");
    }
    a.stop().await.unwrap();
    b.stop().await.unwrap();
    assert_eq!(
        bed.committed_total(&app_id),
        4000,
        "the stops committed the rest"
    );
}

/// An at-least-once application dropped at once (`abort`: the loop never
/// reaches its own shutdown) still closes: closing the consumer revokes
/// its partitions, and that revoke must not wait for the loop that is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_at_least_once_app_closes() {
    let bed = TopicBed::new("abort-alo", 4).await;
    let (app_id, out) = (unique_name("abort-alo-app"), format!("{}-out", bed.topic));
    let dir = state_dir("abort-alo");
    let app = start_count(
        &app_id,
        &bed.topic,
        &out,
        config(bed.bootstrap(), &dir, Guarantee::AtLeastOnce),
    )
    .await;
    let m = app.metrics().clone();
    eventually(WAIT, "the app owns every partition", || async {
        m.active_partitions.get() == 4
    })
    .await;
    bed.produce(100, |i| Some(format!("k{}", i % 10)));
    eventually(WAIT, "the records processed", || async {
        m.processed_total(&bed.topic) == 100
    })
    .await;
    tokio::time::timeout(Duration::from_secs(30), app.abort())
        .await
        .expect("the aborted app closed its consumer");
}
