//! Exactly-once specifics that hold on tansu too: changelog entries of an
//! aborted transaction (which tansu shows to `read_committed` readers) are
//! not restored, because their input-offset tag is not below the committed
//! input offset.

use std::time::Duration;

use rebound_producer::{OutRecord, ProducerConfig, TransactionalProducer};
use rebound_stream::Guarantee;
use rebound_testkit::{read_all_uncommitted, unique_name, TopicBed};

use crate::common::{config, expected_counts, start_count, state_dir, wait_last_values};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_changelog_entries_are_not_restored() {
    let bed = TopicBed::new("eos-abort", 2).await;
    let key = |i: usize| format!("k{}", i % 10);
    let (app_id, out) = (unique_name("eos-abort-app"), format!("{}-out", bed.topic));
    let changelog = format!("{app_id}-counts-changelog");
    let dir = state_dir("eos-abort");
    let cfg = || config(bed.bootstrap(), &dir, Guarantee::ExactlyOnce);

    bed.produce(500, |i| Some(key(i)));
    let app = start_count(&app_id, &bed.topic, &out, cfg()).await;
    wait_last_values(bed.bootstrap(), &out, &expected_counts(500, key), WAIT).await;
    app.stop().await.unwrap();

    // What a crash in the middle of a commit leaves: changelog entries of
    // a transaction that never commits, tagged with input offsets at or
    // above the committed one, holding counts that are wrong.
    let committed = bed.committed(&app_id);
    let zombie = TransactionalProducer::init(
        &ProducerConfig::new(bed.bootstrap()),
        &unique_name("zombie"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    zombie.begin().unwrap();
    let mut sent = Vec::new();
    for (p, (offset, _)) in committed.iter().enumerate() {
        let tag = offset.expect("the group committed every partition");
        for k in 0..10 {
            let mut rec = OutRecord::new(&changelog, "999999").with_key(format!("k{k}"));
            rec.partition = Some(p as i32);
            rec.set_header("rebound.stream.offset", (tag + k).to_string());
            sent.push(zombie.send(&rec).unwrap());
        }
    }
    for d in sent {
        d.delivered().await.unwrap(); // in the log before the abort
    }
    zombie.abort().await.unwrap();
    let all = read_all_uncommitted(bed.bootstrap(), &changelog).unwrap();
    assert!(
        all.iter()
            .any(|r| r.value.as_deref() == Some(&b"999999"[..])),
        "the aborted entries are in the log"
    );

    // The state directory is lost: rebuilt from the changelog, aborted
    // entries left out, then the new input counted exactly.
    std::fs::remove_dir_all(&dir).unwrap();
    bed.produce(500, |i| Some(key(i + 500)));
    let app = start_count(&app_id, &bed.topic, &out, cfg()).await;
    wait_last_values(bed.bootstrap(), &out, &expected_counts(1000, key), WAIT).await;
    assert!(
        app.metrics().restored_total(&changelog) >= 30,
        "rebuilt from the changelog, aborted entries read too"
    );
    app.stop().await.unwrap();
}
