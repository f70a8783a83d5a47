//! State moves with its partitions: two instances share the input; one
//! leaves; the survivor restores the partitions it takes over (from their
//! changelogs) before processing them, and every count stays exact.

use std::time::Duration;

use rebound_stream::Guarantee;
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
