//! Re-keying goes through a repartition topic, so grouping by the new key
//! counts every record of a key in one partition's state: the counts are
//! exact although the input is keyed by something else.

use std::collections::BTreeMap;
use std::time::Duration;

use rebound_stream::{Guarantee, StreamApp, StreamBuilder};
use rebound_testkit::{read_all, unique_name, TopicBed};

use crate::common::{config, state_dir, wait_last_values};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_by_a_new_key_counts_through_a_repartition_topic() {
    let bed = TopicBed::new("repartition", 3).await;
    let countries = ["de", "fr", "it", "es", "pl"];
    let n = 1500;
    // Keyed by user; the value is the user's country.
    bed.produce_to(
        (0..n)
            .map(|i| {
                (
                    (i % 3) as i32,
                    Some(format!("user{i}")),
                    countries[i % 5].to_string(),
                )
            })
            .collect(),
    );
    let app_id = unique_name("repartition-app");
    let out = format!("{}-out", bed.topic);
    let b = StreamBuilder::new(&app_id);
    b.stream::<String, String>(&bed.topic)
        .group_by(|_user, country| country.clone())
        .count("by-country")
        .to_stream()
        .to(&out);
    let dir = state_dir("repartition");
    let app = StreamApp::start(
        config(bed.bootstrap(), &dir, Guarantee::ExactlyOnce),
        b.build().unwrap(),
    )
    .await
    .unwrap();
    let want: BTreeMap<String, String> = countries
        .iter()
        .map(|c| (c.to_string(), (n / 5).to_string()))
        .collect();
    wait_last_values(bed.bootstrap(), &out, &want, Duration::from_secs(60)).await;
    let repartition =
        read_all(bed.bootstrap(), &format!("{app_id}-by-country-repartition")).unwrap();
    assert_eq!(
        repartition.len(),
        n,
        "every record went through the repartition topic once"
    );
    app.stop().await.unwrap();
}
