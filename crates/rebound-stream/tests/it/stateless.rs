//! Stateless operators, at-least-once, on the broker: what each output
//! topic holds is exactly what the operators say.

use std::collections::BTreeSet;
use std::time::Duration;

use rebound_stream::{Guarantee, StreamApp, StreamBuilder};
use rebound_testkit::{read_at_least, TopicBed};

use crate::common::{config, state_dir};

fn pairs(recs: &[rebound_testkit::ReadRecord]) -> BTreeSet<(String, String)> {
    recs.iter()
        .map(|r| {
            (
                String::from_utf8(r.key.clone().unwrap()).unwrap(),
                String::from_utf8(r.value.clone().unwrap()).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_filter_flat_map_branch_and_to() {
    let bed = TopicBed::new("stateless", 2).await;
    let n = 200usize;
    bed.produce(n, |i| Some(format!("k{}", i % 7)));
    let out = |s: &str| format!("{}-{s}", bed.topic);
    let b = StreamBuilder::new(rebound_testkit::unique_name("stateless-app"));
    let input = b.stream::<String, u64>(&bed.topic);
    input
        .filter(|_, v| v % 2 == 0)
        .map_values(|_, v| v * 10)
        .to(&out("even"));
    let parts = input.branch(vec![Box::new(|_, v| *v < 50), Box::new(|_, v| *v < 100)]);
    parts[0].to(&out("low"));
    parts[1].to(&out("mid"));
    input
        .flat_map(|k: String, v: u64| vec![(format!("{k}-a"), v), (format!("{k}-b"), v + 1)])
        .filter(|_, v| *v < 10)
        .to(&out("fan"));
    input.map(|k, v| (format!("{v}"), k)).to(&out("swap"));
    let dir = state_dir("stateless");
    let app = StreamApp::start(
        config(bed.bootstrap(), &dir, Guarantee::AtLeastOnce),
        b.build().unwrap(),
    )
    .await
    .unwrap();

    let key = |i: usize| format!("k{}", i % 7);
    let even: BTreeSet<_> = (0..n)
        .filter(|i| i % 2 == 0)
        .map(|i| (key(i), (i * 10).to_string()))
        .collect();
    let low: BTreeSet<_> = (0..50).map(|i| (key(i), i.to_string())).collect();
    let mid: BTreeSet<_> = (50..100).map(|i| (key(i), i.to_string())).collect();
    let fan: BTreeSet<_> = (0..n)
        .flat_map(|i| {
            [
                (format!("{}-a", key(i)), i),
                (format!("{}-b", key(i)), i + 1),
            ]
        })
        .filter(|(_, v)| *v < 10)
        .map(|(k, v)| (k, v.to_string()))
        .collect();
    let swap: BTreeSet<_> = (0..n).map(|i| (i.to_string(), key(i))).collect();
    for (topic, want) in [
        ("even", even),
        ("low", low),
        ("mid", mid),
        ("fan", fan),
        ("swap", swap),
    ] {
        let got = read_at_least(bed.bootstrap(), &out(topic), want.len()).await;
        assert_eq!(
            got.len(),
            want.len(),
            "{topic}: one output per matching input"
        );
        assert_eq!(pairs(&got), want, "{topic}");
    }
    app.stop().await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_record_stops_the_app_naming_it() {
    let bed = TopicBed::new("stateless-bad", 1).await;
    bed.produce_to(vec![
        (0, Some("a".into()), "1".into()),
        (0, Some("b".into()), "x".into()),
    ]);
    let b = StreamBuilder::new(rebound_testkit::unique_name("bad-app"));
    b.stream::<String, u64>(&bed.topic)
        .to(&format!("{}-out", bed.topic));
    let dir = state_dir("bad");
    let app = StreamApp::start(
        config(bed.bootstrap(), &dir, Guarantee::AtLeastOnce),
        b.build().unwrap(),
    )
    .await
    .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(30), app.join())
        .await
        .expect("the app stops")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("value of {}/0@1", bed.topic)),
        "{err}"
    );
    assert!(err.contains("\"x\" is not a decimal u64"), "{err}");
}

#[test]
fn a_topology_that_writes_to_its_own_input_is_refused() {
    let b = StreamBuilder::new("loop-app");
    b.stream::<String, String>("t").to("t");
    let err = b.build().unwrap_err().to_string();
    assert!(err.contains("to(t)"), "{err}");
}
