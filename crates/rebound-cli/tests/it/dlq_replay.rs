//! After the handler is fixed, `rebound dlq replay` leaves every
//! dead-lettered record handled exactly once.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rebound_producer::{Producer, ProducerConfig};
use rebound_testkit::{
    create_topic, eventually, produce_records, read_all, unique_name, Brokers, TestRecord,
};
use rebound_worker::{
    handler_fn, DeadLetterLayer, DeadLetterPolicy, HandlerError, Layer, Metrics, Record, Worker,
    WorkerConfig,
};

type Tally = Arc<Mutex<HashMap<usize, usize>>>;

fn worker_config(bootstrap: &str, topic: &str, group: &str) -> WorkerConfig {
    WorkerConfig::builder()
        .with_brokers(bootstrap)
        .with_group(group)
        .with_topic(topic)
        .with_session_timeout(Duration::from_secs(6))
        .with_commit_interval(Duration::from_millis(200))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_dlq_after_a_fix_handles_every_record_once() {
    let brokers = Brokers::start().unwrap();
    let bootstrap = brokers.bootstrap().to_string();
    let topic = unique_name("orders");
    let group = unique_name("g");
    create_topic(&bootstrap, &topic, 2).await.unwrap();
    let policy = DeadLetterPolicy::new(&group);
    let dlq = policy.dlq_topic(&topic);
    create_topic(&bootstrap, &dlq, 1).await.unwrap();
    let n = 200usize;
    produce_records(
        &bootstrap,
        &topic,
        (0..n).map(|i| TestRecord {
            partition: None,
            key: Some(format!("k{i}").into_bytes()),
            value: i.to_string().into_bytes(),
        }),
    )
    .unwrap();

    let fixed = Arc::new(Mutex::new(false));
    let handled: Tally = Default::default();
    let buggy = |i: usize| i % 7 == 2;
    let make = || {
        let (fixed, handled) = (fixed.clone(), handled.clone());
        let inner = handler_fn(move |rec: &Record| {
            let i: usize = rec.value_str().unwrap().parse().unwrap();
            let fail = buggy(i) && !*fixed.lock().unwrap();
            if !fail {
                *handled.lock().unwrap().entry(i).or_default() += 1;
            }
            async move {
                if fail {
                    Err(HandlerError::permanent("bug: cannot parse"))
                } else {
                    Ok(())
                }
            }
        });
        let producer = Producer::new(&ProducerConfig::new(&bootstrap)).unwrap();
        DeadLetterLayer::new(producer, policy.clone(), Arc::new(Metrics::new())).layer(inner)
    };

    let w = Worker::start(worker_config(&bootstrap, &topic, &group), make())
        .await
        .unwrap();
    let expected_dlq = (0..n).filter(|i| buggy(*i)).count();
    eventually(Duration::from_secs(60), "first pass", || {
        let done = handled.lock().unwrap().len() + read_all(&bootstrap, &dlq).unwrap().len() >= n;
        async move { done }
    })
    .await;
    assert_eq!(read_all(&bootstrap, &dlq).unwrap().len(), expected_dlq);

    // The fix ships; the same worker keeps running and the DLQ is replayed.
    *fixed.lock().unwrap() = true;
    let out = Command::new(env!("CARGO_BIN_EXE_rebound"))
        .args([
            "dlq",
            "replay",
            "--brokers",
            &bootstrap,
            "--topic",
            &dlq,
            "--all",
        ])
        .env_remove("REBOUND_BROKERS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eventually(Duration::from_secs(60), "replayed records handled", || {
        let done = handled.lock().unwrap().len() >= n;
        async move { done }
    })
    .await;
    // Let any duplicate show up before judging.
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.stop().await.unwrap();

    let handled = handled.lock().unwrap();
    assert_eq!(handled.len(), n, "every record handled");
    let twice: Vec<_> = handled.iter().filter(|(_, c)| **c != 1).collect();
    assert!(twice.is_empty(), "handled more than once: {twice:?}");
    assert_eq!(
        read_all(&bootstrap, &dlq).unwrap().len(),
        expected_dlq,
        "nothing new dead-lettered"
    );
}
