//! Tracing on the real broker: the exact span tree of a record that fails,
//! waits in a retry tier and is then handled, and a batch's one span linked
//! to each record; exported over OTLP to an in-process receiver.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_one_span_linked_to_each_record() {
    let receiver = otlp::Receiver::start().await;
    let provider = otlp::install(&receiver.endpoint(), "worker-test");
    let bed = Bed::new("t", 1).await;
    // Four records, each sent in its own trace (its own root `send` span),
    // queued before the worker starts so they arrive as one batch.
    let producer = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    for i in 0..4 {
        producer
            .send(&OutRecord::new(&bed.topic, i.to_string()))
            .await
            .unwrap();
    }
    let batches = Arc::new(std::sync::Mutex::new(Vec::new()));
    let handler = {
        let batches = batches.clone();
        rebound_worker::batch_handler_fn(move |recs: &[Record]| {
            batches.lock().unwrap().push(recs.len());
            std::future::ready(Ok(()))
        })
    };
    let cfg = bed
        .config(&unique_name("g"))
        .with_ordering(rebound_worker::Ordering::Batch)
        .with_max_batch_size(10)
        .build()
        .unwrap();
    let w = Worker::start_batch(cfg, handler).await.unwrap();
    wait_until(Duration::from_secs(30), "the batch", || {
        let n: usize = batches.lock().unwrap().iter().sum();
        async move { n == 4 }
    })
    .await;
    w.stop().await.unwrap();
    tokio::task::spawn_blocking(move || provider.force_flush().unwrap())
        .await
        .unwrap();

    let sizes = batches.lock().unwrap().clone();
    let spans = receiver
        .wait_for(Duration::from_secs(10), |s| s.len() >= 4 + sizes.len())
        .await;
    let sends: Vec<_> = spans
        .iter()
        .filter(|s| s.name.starts_with("send"))
        .collect();
    let process: Vec<_> = spans
        .iter()
        .filter(|s| s.name == format!("process {}", bed.topic))
        .collect();
    assert_eq!((sends.len(), process.len()), (4, sizes.len()), "{spans:#?}");
    // Each batch span is a root linked to exactly its records' spans; all
    // links together name every record once.
    let mut linked: Vec<&String> = process.iter().flat_map(|p| &p.links).collect();
    for (p, n) in process.iter().zip(&sizes) {
        assert_eq!(p.parent, None);
        assert_eq!(p.links.len(), *n);
        assert_eq!(p.attributes["messaging.batch.message_count"], n.to_string());
    }
    linked.sort();
    let mut sent: Vec<&String> = sends.iter().map(|s| &s.span_id).collect();
    sent.sort();
    assert_eq!(linked, sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exactly_once_output_continues_its_inputs_trace() {
    use rebound_worker::exactly_once::{Pipeline, PipelineConfig};
    let receiver = otlp::Receiver::start().await;
    let provider = otlp::install(&receiver.endpoint(), "worker-test");
    let bed = Bed::new("t", 1).await;
    let out = unique_name("out");
    create_topic(bed.bootstrap(), &out, 1).await.unwrap();
    let producer = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    producer
        .send(&OutRecord::new(&bed.topic, "0"))
        .await
        .unwrap();
    let config = PipelineConfig::builder()
        .with_brokers(bed.bootstrap())
        .with_group(unique_name("g"))
        .with_topic(&bed.topic)
        .with_transactional_id(unique_name("txn"))
        .with_session_timeout(Duration::from_millis(
            rebound_testkit::FAST_SESSION_TIMEOUT_MS as u64,
        ))
        .build()
        .unwrap();
    let p = Pipeline::start(
        config,
        crate::common::eos::copy_to(out.clone(), "1".into(), Vec::new()),
    )
    .await
    .unwrap();
    wait_until(Duration::from_secs(60), "the input committed", || {
        let done = p.stats().records_in == 1;
        async move { done }
    })
    .await;
    p.stop().await.unwrap();
    tokio::task::spawn_blocking(move || provider.force_flush().unwrap())
        .await
        .unwrap();

    let spans = receiver
        .wait_for(Duration::from_secs(10), |s| s.len() >= 3)
        .await;
    let root = spans.iter().find(|s| s.parent.is_none()).unwrap();
    let t = &bed.topic;
    assert_eq!(
        otlp::tree(&spans, &root.trace_id),
        format!("send {t} [producer]\n  process {t} [consumer]\n    send {out} [producer]\n"),
        "{spans:#?}"
    );
    // The output record carries its send span's context.
    let written = rebound_testkit::read_all(bed.bootstrap(), &out).unwrap();
    let send_out = spans
        .iter()
        .find(|s| s.name == format!("send {out}"))
        .unwrap();
    assert_eq!(
        written[0].header("traceparent"),
        Some(format!("00-{}-{}-01", root.trace_id, send_out.span_id).as_str())
    );
}
