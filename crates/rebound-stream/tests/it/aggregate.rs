//! Stateful aggregation with durable state: exact counts, the write-back
//! cache (changelog writes per distinct key, not per record), restore from
//! the local file, and a deleted state directory rebuilt from the changelog.

use std::collections::BTreeMap;
use std::time::Duration;

use rebound_stream::{Guarantee, StreamApp, StreamBuilder};
use rebound_testkit::{read_all, unique_name, TopicBed};

use crate::common::{config, expected_counts, start_count, state_dir, wait_last_values};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_reduce_and_aggregate_are_exact() {
    let bed = TopicBed::new("agg", 3).await;
    let n = 3000usize;
    let key = |i: usize| format!("k{}", i % 30);
    bed.produce(n, |i| Some(key(i)));
    let app_id = unique_name("agg-app");
    let b = StreamBuilder::new(&app_id);
    let grouped = b.stream::<String, u64>(&bed.topic).group_by_key();
    grouped
        .count("count")
        .to_stream()
        .to(&format!("{}-count", bed.topic));
    grouped
        .reduce("sum", |a, v| a + v)
        .to_stream()
        .to(&format!("{}-sum", bed.topic));
    grouped
        .aggregate("max", || 0u64, |_, v, m| m.max(v))
        .to_stream()
        .to(&format!("{}-max", bed.topic));
    let dir = state_dir("agg");
    let app = StreamApp::start(
        config(bed.bootstrap(), &dir, Guarantee::AtLeastOnce),
        b.build().unwrap(),
    )
    .await
    .unwrap();

    let mut sum = BTreeMap::new();
    let mut max = BTreeMap::new();
    for i in 0..n {
        *sum.entry(key(i)).or_insert(0u64) += i as u64;
        max.insert(key(i), i as u64);
    }
    let text = |m: BTreeMap<String, u64>| m.into_iter().map(|(k, v)| (k, v.to_string())).collect();
    wait_last_values(
        bed.bootstrap(),
        &format!("{}-count", bed.topic),
        &expected_counts(n, key),
        WAIT,
    )
    .await;
    wait_last_values(
        bed.bootstrap(),
        &format!("{}-sum", bed.topic),
        &text(sum),
        WAIT,
    )
    .await;
    wait_last_values(
        bed.bootstrap(),
        &format!("{}-max", bed.topic),
        &text(max),
        WAIT,
    )
    .await;

    // The write-back cache: the changelog got one record per key changed
    // per commit, far fewer than the records (each key changed ~100 times).
    let changelog = read_all(bed.bootstrap(), &format!("{app_id}-count-changelog")).unwrap();
    let writes = app.metrics().changelog_writes.get();
    assert!(
        changelog.len() < n / 3,
        "changelog has {} records for {n} inputs",
        changelog.len()
    );
    assert!(changelog.len() >= 30, "every key is in the changelog");
    assert!(
        writes >= changelog.len() as u64,
        "metric {writes} counts every changelog write"
    );
    assert!(changelog
        .iter()
        .all(|r| r.header("rebound.stream.offset").is_some()));
    assert_eq!(app.metrics().processed_total(&bed.topic), n as u64);
    app.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_restores_from_the_file_and_a_deleted_state_dir_from_the_changelog() {
    let bed = TopicBed::new("restore", 2).await;
    let key = |i: usize| format!("k{}", i % 50);
    let (app_id, out) = (unique_name("restore-app"), format!("{}-out", bed.topic));
    let changelog = format!("{app_id}-counts-changelog");
    let dir = state_dir("restore");
    let cfg = || config(bed.bootstrap(), &dir, Guarantee::AtLeastOnce);

    bed.produce(2000, |i| Some(key(i)));
    let app = start_count(&app_id, &bed.topic, &out, cfg()).await;
    wait_last_values(bed.bootstrap(), &out, &expected_counts(2000, key), WAIT).await;
    app.stop().await.unwrap();

    // Restart on the same directory: the file is current, nothing to read.
    bed.produce(1000, |i| Some(key(i + 2000)));
    let app = start_count(&app_id, &bed.topic, &out, cfg()).await;
    wait_last_values(bed.bootstrap(), &out, &expected_counts(3000, key), WAIT).await;
    assert_eq!(
        app.metrics().restored_total(&changelog),
        0,
        "restored from the file, not the changelog"
    );
    app.stop().await.unwrap();

    // Delete the state directory: rebuilt from the changelog, exactly.
    std::fs::remove_dir_all(&dir).unwrap();
    bed.produce(1000, |i| Some(key(i + 3000)));
    let app = start_count(&app_id, &bed.topic, &out, cfg()).await;
    wait_last_values(bed.bootstrap(), &out, &expected_counts(4000, key), WAIT).await;
    assert!(
        app.metrics().restored_total(&changelog) >= 50,
        "rebuilt from the changelog"
    );
    assert!(app.metrics().restore_seconds.get_sample_count() >= 2);
    app.stop().await.unwrap();
}

/// Ten partitions restored with the state directory gone: a changelog
/// reader restores two or three partitions at once, one partition has no
/// state at all, and exactly-once changelogs end in transaction markers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_restoring_several_partitions_rebuilds_each_exactly() {
    let bed = TopicBed::new("restore-many", 10).await;
    // Key `k{j}` always goes to partition `j % 9`: partition 9 stays empty.
    let records = |range: std::ops::Range<usize>| -> Vec<(i32, Option<String>, String)> {
        range
            .map(|i| {
                (
                    (i % 45 % 9) as i32,
                    Some(format!("k{}", i % 45)),
                    i.to_string(),
                )
            })
            .collect()
    };
    let key = |i: usize| format!("k{}", i % 45);
    let (app_id, out) = (
        unique_name("restore-many-app"),
        format!("{}-out", bed.topic),
    );
    let changelog = format!("{app_id}-counts-changelog");
    let dir = state_dir("restore-many");
    let cfg = || config(bed.bootstrap(), &dir, Guarantee::ExactlyOnce);

    bed.produce_to(records(0..3000));
    let app = start_count(&app_id, &bed.topic, &out, cfg()).await;
    wait_last_values(bed.bootstrap(), &out, &expected_counts(3000, key), WAIT).await;
    app.stop().await.unwrap();

    std::fs::remove_dir_all(&dir).unwrap();
    bed.produce_to(records(3000..4500));
    let app = start_count(&app_id, &bed.topic, &out, cfg()).await;
    wait_last_values(bed.bootstrap(), &out, &expected_counts(4500, key), WAIT).await;
    assert!(
        app.metrics().restored_total(&changelog) >= 45,
        "rebuilt from the changelog"
    );
    app.stop().await.unwrap();
}
