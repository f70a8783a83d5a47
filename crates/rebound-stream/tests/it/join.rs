//! A stream–table join sees table updates: a table from a compacted topic
//! enriches each event with the current value of its key; an update (or a
//! deletion) in the table topic reaches the join while the app runs.

use std::time::Duration;

use rebound_producer::admin::{create_topic_with, TopicSpec};
use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_stream::{Guarantee, StreamApp, StreamBuilder};
use rebound_testkit::{read_all, read_at_least, unique_name, TopicBed};

use crate::common::{config, state_dir};

async fn send(p: &Producer, topic: &str, key: &str, value: Option<&str>) {
    let mut r = OutRecord::new(topic, "").with_key(key);
    r.value = value.map(|v| v.as_bytes().to_vec());
    p.send(&r).await.unwrap();
}

fn values(bootstrap: &str, topic: &str) -> Vec<String> {
    read_all(bootstrap, topic)
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8(r.value.unwrap()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_table_join_sees_table_updates() {
    let bed = TopicBed::new("join-events", 1).await;
    let users = unique_name("join-users");
    let spec = TopicSpec {
        name: users.clone(),
        partitions: 1,
        replication: 1,
        configs: vec![("cleanup.policy".into(), "compact".into())],
    };
    create_topic_with(bed.bootstrap(), &[], &spec, Duration::from_secs(10))
        .await
        .unwrap();
    let (inner, left) = (
        format!("{}-inner", bed.topic),
        format!("{}-left", bed.topic),
    );
    bed.another_topic(&inner, 1).await;
    bed.another_topic(&left, 1).await;
    let p = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    send(&p, &users, "a", Some("Alice")).await;
    send(&p, &users, "b", Some("Bob")).await;

    let b = StreamBuilder::new(unique_name("join-app"));
    let table = b.global_table::<String, String>(&users);
    let events = b.stream::<String, String>(&bed.topic);
    events
        .join(&table, |_, ev, name| format!("{ev}:{name}"))
        .to(&inner);
    events
        .left_join(&table, |_, ev, name| {
            format!("{ev}:{}", name.unwrap_or_else(|| "none".into()))
        })
        .to(&left);
    let dir = state_dir("join");
    let app = StreamApp::start(
        config(bed.bootstrap(), &dir, Guarantee::AtLeastOnce),
        b.build().unwrap(),
    )
    .await
    .unwrap();

    // The table is loaded before the first event is joined.
    send(&p, &bed.topic, "a", Some("e1")).await;
    send(&p, &bed.topic, "c", Some("e2")).await;
    send(&p, &bed.topic, "b", Some("e3")).await;
    read_at_least(bed.bootstrap(), &left, 3).await;
    assert_eq!(values(bed.bootstrap(), &inner), ["e1:Alice", "e3:Bob"]);
    assert_eq!(
        values(bed.bootstrap(), &left),
        ["e1:Alice", "e2:none", "e3:Bob"]
    );

    // b deleted, then a renamed (same partition: applied in this order).
    send(&p, &users, "b", None).await;
    send(&p, &users, "a", Some("Alicia")).await;
    // Events keep coming until one is joined with the new value.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut i = 0;
    let seen = loop {
        i += 1;
        send(&p, &bed.topic, "a", Some(&format!("u{i}"))).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if values(bed.bootstrap(), &inner)
            .iter()
            .any(|v| v.ends_with(":Alicia"))
        {
            break true;
        }
        if std::time::Instant::now() > deadline {
            break false;
        }
    };
    assert!(seen, "the join saw the table update");
    send(&p, &bed.topic, "b", Some("e4")).await;
    read_at_least(bed.bootstrap(), &left, 4 + i).await;
    let got = values(bed.bootstrap(), &inner);
    let first_new = got.iter().position(|v| v.ends_with(":Alicia")).unwrap();
    assert!(got[..first_new].iter().all(|v| !v.contains("Alicia")));
    assert!(
        got[first_new..].iter().all(|v| v.ends_with(":Alicia")),
        "never back to the old value: {got:?}"
    );
    assert!(
        !got.iter().any(|v| v.starts_with("e4")),
        "a deleted key joins nothing: {got:?}"
    );
    assert_eq!(values(bed.bootstrap(), &left).last().unwrap(), "e4:none");
    app.stop().await.unwrap();
}
