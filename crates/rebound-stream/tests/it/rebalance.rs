//! State moves with its partitions: two instances share the input; one
//! leaves; the survivor restores the partitions it takes over (from their
//! changelogs) before processing them, and every count stays exact.

use std::time::Duration;

use rebound_stream::{Guarantee, StreamConfig};
use rebound_testkit::{eventually, unique_name, TopicBed};

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

/// At-least-once commits once a minute here, so every record is processed
/// and its output sent long before its commit. A second instance joining
/// takes partitions away from the first in the middle of that interval:
/// the first drops their uncommitted work (state and offsets) instead of
/// committing it later, the second processes those records again from
/// the last commit (their outputs repeat), and the counts stay exact. A
/// stop commits what was processed: a third instance started afterwards
/// has nothing left to process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_revoked_between_commits_drops_its_uncommitted_work() {
    let bed = TopicBed::new("revoke-mid", 4).await;
    let key = |i: usize| format!("k{}", i % 40);
    let (app_id, out) = (unique_name("revoke-mid-app"), format!("{}-out", bed.topic));
    let cfg = |dir: &std::path::Path| {
        StreamConfig::builder()
            .with_brokers(bed.bootstrap())
            .with_state_dir(dir)
            .with_commit_interval(Duration::from_secs(60))
            .with_session_timeout(Duration::from_secs(6))
            .build()
            .unwrap()
    };
    let (dir_a, dir_b, dir_c) = (
        state_dir("revoke-mid-a"),
        state_dir("revoke-mid-b"),
        state_dir("revoke-mid-c"),
    );

    let a = start_count(&app_id, &bed.topic, &out, cfg(&dir_a)).await;
    let ma = a.metrics().clone();
    eventually(WAIT, "the first instance owns every partition", || async {
        ma.active_partitions.get() == 4
    })
    .await;
    bed.produce(2000, |i| Some(key(i)));
    wait_last_values(bed.bootstrap(), &out, &expected_counts(2000, key), WAIT).await;
    assert_eq!(ma.processed_total(&bed.topic), 2000);

    let b = start_count(&app_id, &bed.topic, &out, cfg(&dir_b)).await;
    let mb = b.metrics().clone();
    eventually(WAIT, "both instances own partitions", || async {
        let (pa, pb) = (ma.active_partitions.get(), mb.active_partitions.get());
        pa > 0 && pb > 0 && pa + pb == 4
    })
    .await;
    // Nothing was committed: B reads its partitions from the start.
    eventually(
        WAIT,
        "B processed its partitions' records again",
        || async { mb.processed_total(&bed.topic) > 0 },
    )
    .await;
    bed.produce(2000, |i| Some(key(i + 2000)));
    wait_last_values(bed.bootstrap(), &out, &expected_counts(4000, key), WAIT).await;
    let again = ma.processed_total(&bed.topic) + mb.processed_total(&bed.topic) - 4000;
    assert!(again > 0, "B's partitions were processed twice");
    a.stop().await.expect("A commits only what it still owns");
    b.stop().await.unwrap();

    let c = start_count(&app_id, &bed.topic, &out, cfg(&dir_c)).await;
    let mc = c.metrics().clone();
    eventually(WAIT, "C owns every partition", || async {
        mc.active_partitions.get() == 4
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        mc.processed_total(&bed.topic),
        0,
        "the stops committed everything processed"
    );
    wait_last_values(bed.bootstrap(), &out, &expected_counts(4000, key), WAIT).await;
    c.stop().await.unwrap();
}
