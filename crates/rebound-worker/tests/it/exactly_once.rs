//! Exactly-once pipelines on the real broker: every input's output once,
//! per-key order, dead letters inside the transaction, offsets committed
//! with the output, fencing by transactional id.

use crate::common;

use std::time::Duration;

use crate::common::eos::{assert_exactly_once, assert_order_per_key, copy_to, input_of};
use crate::common::{wait_until, Bed};
use rebound_core::headers as h;
use rebound_testkit::{create_topic, read_all, unique_name};
use rebound_worker::exactly_once::{Pipeline, PipelineConfig, PipelineError};

fn config(bed: &Bed, group: &str, txn_id: &str) -> rebound_worker::exactly_once::PipelineBuilder {
    PipelineConfig::builder()
        .with_brokers(bed.bootstrap())
        .with_group(group)
        .with_topic(&bed.topic)
        .with_transactional_id(txn_id)
        .with_session_timeout(Duration::from_millis(
            rebound_testkit::FAST_SESSION_TIMEOUT_MS as u64,
        ))
        .with_max_batch_size(200)
        .with_linger(Duration::from_millis(50))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_once_in_key_order_with_dead_letters_in_the_transaction() {
    let bed = Bed::new("t", 3).await;
    let out = unique_name("out");
    create_topic(bed.bootstrap(), &out, 3).await.unwrap();
    let n = 3_000;
    bed.produce(n, |i| Some(format!("k{}", i % 37)));
    let poison: Vec<String> = (0..n)
        .filter(|i| i % 500 == 7)
        .map(|i| i.to_string())
        .collect();
    let group = unique_name("g");
    let p = Pipeline::start(
        config(&bed, &group, &unique_name("txn")).build().unwrap(),
        copy_to(out.clone(), "1".into(), poison.clone()),
    )
    .await
    .unwrap();
    wait_until(Duration::from_secs(60), "all input committed", || {
        let done = p.stats().records_in as usize == n;
        async move { done }
    })
    .await;
    let stats = p.stop().await.unwrap();
    assert_eq!(stats.dead_lettered as usize, poison.len());
    assert_eq!(stats.aborted, 0);

    let read = read_all(bed.bootstrap(), &out).unwrap();
    let all: Vec<_> = read.iter().collect();
    assert_exactly_once(&all, (0..n).filter(|i| i % 500 != 7).map(|i| i.to_string()));
    assert_order_per_key(&all);
    for r in &all {
        let (p, o) = input_of(r);
        let i: usize = String::from_utf8(r.value.clone().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(r.key.as_deref(), Some(format!("k{}", i % 37).as_bytes()));
        assert!(p < 3 && o >= 0);
    }

    let dlq = read_all(bed.bootstrap(), &format!("{}.dlq", bed.topic)).unwrap();
    let dead: Vec<_> = dlq.iter().collect();
    assert_exactly_once(&dead, poison.iter().cloned());
    for r in &dlq {
        assert_eq!(r.header(h::ORIGINAL_TOPIC), Some(bed.topic.as_str()));
        assert!(r.header(h::ORIGINAL_OFFSET).is_some());
        assert_eq!(r.header(h::CONSUMER_GROUP), Some(group.as_str()));
        assert_eq!(r.header(h::ERROR_KIND), Some("permanent"));
        let v = String::from_utf8(r.value.clone().unwrap()).unwrap();
        assert_eq!(
            r.header(h::ERROR_MESSAGE),
            Some(format!("poison {v}").as_str())
        );
    }

    // The input offsets were committed with the output: all of them.
    let committed: i64 = bed.committed(&group).iter().map(|(o, _)| o.unwrap()).sum();
    assert_eq!(committed as usize, n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_after_the_last_commit() {
    let bed = Bed::new("t", 2).await;
    let out = unique_name("out");
    create_topic(bed.bootstrap(), &out, 2).await.unwrap();
    let group = unique_name("g");
    let txn = unique_name("txn");
    bed.produce(1_000, |i| Some(format!("k{}", i % 11)));
    let p = Pipeline::start(
        config(&bed, &group, &txn).build().unwrap(),
        copy_to(out.clone(), "1".into(), vec![]),
    )
    .await
    .unwrap();
    wait_until(Duration::from_secs(60), "first half", || {
        let done = p.stats().records_in >= 1_000;
        async move { done }
    })
    .await;
    p.stop().await.unwrap();
    bed.produce(1_000, |i| Some(format!("k{}", i % 11)));
    let p = Pipeline::start(
        config(&bed, &group, &txn).build().unwrap(),
        copy_to(out.clone(), "2".into(), vec![]),
    )
    .await
    .unwrap();
    wait_until(Duration::from_secs(60), "second half", || {
        let done = p.stats().records_in >= 1_000;
        async move { done }
    })
    .await;
    let stats = p.stop().await.unwrap();
    assert_eq!(
        stats.records_in, 1_000,
        "the second run redid committed input"
    );
    let read = read_all(bed.bootstrap(), &out).unwrap();
    let all: Vec<_> = read.iter().collect();
    // Values 0..1000 twice: once from each produce; tell them apart by run.
    let first: Vec<_> = all
        .iter()
        .copied()
        .filter(|r| r.header(common::eos::RUN) == Some("1"))
        .collect();
    let second: Vec<_> = all
        .iter()
        .copied()
        .filter(|r| r.header(common::eos::RUN) == Some("2"))
        .collect();
    assert_exactly_once(&first, (0..1_000).map(|i| i.to_string()));
    assert_exactly_once(&second, (0..1_000).map(|i| i.to_string()));
}

/// A zombie (an instance whose transactional id was registered again by
/// its successor) cannot commit: its pipeline stops with a transaction
/// error and its group's offsets stay where they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_with_the_same_transactional_id_fences_the_first() {
    let bed = Bed::new("t", 1).await;
    let out = unique_name("out");
    create_topic(bed.bootstrap(), &out, 1).await.unwrap();
    let txn = unique_name("txn");
    let zombie_group = unique_name("g");
    bed.produce(10, |_| None);
    let first = Pipeline::start(
        config(&bed, &zombie_group, &txn)
            .with_transaction_timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        copy_to(out.clone(), "1".into(), vec![]),
    )
    .await
    .unwrap();
    wait_until(Duration::from_secs(60), "first instance committing", || {
        let done = first.stats().records_in >= 10;
        async move { done }
    })
    .await;
    let second = Pipeline::start(
        config(&bed, &unique_name("g"), &txn).build().unwrap(),
        copy_to(out.clone(), "2".into(), vec![]),
    )
    .await
    .unwrap();
    bed.produce(10, |_| None);
    let err = tokio::time::timeout(Duration::from_secs(90), first.join())
        .await
        .expect("the fenced instance stops")
        .unwrap_err();
    assert!(matches!(err, PipelineError::Txn(_)), "{err}");
    assert_eq!(
        bed.committed(&zombie_group)[0].0,
        Some(10),
        "the fenced instance committed offsets"
    );
    wait_until(
        Duration::from_secs(60),
        "the successor processes all",
        || {
            let done = second.stats().records_in >= 20;
            async move { done }
        },
    )
    .await;
    second.stop().await.unwrap();
}
