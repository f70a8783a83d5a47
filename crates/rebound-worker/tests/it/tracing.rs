//! Tracing on the real broker: the exact span tree of a record that fails,
//! waits in a retry tier and is then handled, exported over OTLP to an
//! in-process receiver.

use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{wait_until, Bed, WorkerBed};
use rebound_core::headers as h;
use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_testkit::{create_topic, otlp, unique_name};
use rebound_worker::{
    handler_fn, DeadLetterLayer, DeadLetterPolicy, HandlerError, Layer, Record, Worker,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_retried_through_a_tier_stays_one_trace() {
    let receiver = otlp::Receiver::start().await;
    let provider = otlp::install(&receiver.endpoint(), "worker-test");
    let bed = Bed::new("t", 1).await;
    let group = unique_name("g");
    let policy = DeadLetterPolicy::new(&group).with_tiers(vec![Duration::from_millis(300)]);
    let tier = policy.tier_topics(&bed.topic)[0].clone();
    create_topic(bed.bootstrap(), &tier, 1).await.unwrap();
    create_topic(bed.bootstrap(), &policy.dlq_topic(&bed.topic), 1)
        .await
        .unwrap();

    // Built after the provider is installed: it keeps the tracer it finds.
    let producer = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    let sent = producer
        .send(&OutRecord::new(&bed.topic, "value-secret").with_key("key-secret"))
        .await
        .unwrap();

    let handled = Arc::new(AtomicUsize::new(0));
    let inner = {
        let handled = handled.clone();
        handler_fn(move |rec: &Record| {
            let first = rec.header(h::DUE).is_none();
            let handled = handled.clone();
            async move {
                if first {
                    return Err(HandlerError::transient("first attempt fails"));
                }
                handled.fetch_add(1, AtomicOrdering::SeqCst);
                Ok(())
            }
        })
    };
    let metrics = Arc::new(rebound_worker::Metrics::new());
    let handler = DeadLetterLayer::new(producer, policy, metrics.clone()).layer(inner);
    let cfg = bed
        .config(&group)
        .with_delayed_topic(&tier)
        .with_metrics(metrics)
        .build()
        .unwrap();
    let w = Worker::start(cfg, handler).await.unwrap();
    wait_until(Duration::from_secs(30), "the tier retry", || {
        let n = handled.load(AtomicOrdering::SeqCst);
        async move { n == 1 }
    })
    .await;
    w.stop().await.unwrap();
    tokio::task::spawn_blocking(move || provider.force_flush().unwrap())
        .await
        .unwrap();

    let spans = receiver
        .wait_for(Duration::from_secs(10), |s| s.len() >= 4)
        .await;
    let root = spans
        .iter()
        .find(|s| s.parent.is_none() && s.name == format!("send {}", bed.topic))
        .expect("the first send is a root span");
    let t = &bed.topic;
    assert_eq!(
        otlp::tree(&spans, &root.trace_id),
        format!(
            "send {t} [producer]\n  process {t} [consumer] !\n    send {tier} [producer]\n      process {tier} [consumer]\n"
        )
    );
    assert_eq!(spans.len(), 4, "{spans:#?}");

    let process = spans
        .iter()
        .find(|s| s.name == format!("process {t}"))
        .unwrap();
    let want = [
        ("messaging.system", "kafka"),
        ("messaging.operation.type", "process"),
        ("messaging.destination.name", t.as_str()),
        ("messaging.destination.partition.id", "0"),
        ("messaging.consumer.group.name", group.as_str()),
    ];
    for (k, v) in want {
        assert_eq!(
            process.attributes.get(k).map(String::as_str),
            Some(v),
            "{k}"
        );
    }
    assert_eq!(
        process.attributes["messaging.kafka.offset"],
        sent.offset.to_string()
    );
    assert_eq!(
        root.attributes["messaging.kafka.offset"],
        sent.offset.to_string()
    );
    otlp::assert_not_recorded(&spans, "secret");
}
