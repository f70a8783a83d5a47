//! End to end over Kafka, on the real broker from rebound-testkit: delivery
//! keyed `<id>|<attempt>` to the destination's broker or the default one, and
//! the ingress topic (invalid records dead-lettered to `<topic>.dlq` with
//! their provenance, the valid ones around them created).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::common::{http_task, Recorder};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::Message;
use rebound_core::headers as h;
use rebound_scheduler::ServeConfig;
use rebound_testkit::{create_topic, produce_records, unique_name, Brokers, TestRecord};
use serde_json::json;
use tokio_util::sync::CancellationToken;

async fn consume(bootstrap: &str, topic: &str, want: usize) -> HashMap<String, String> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_name("check"))
        .set("auto.offset.reset", "earliest")
        .set(
            "session.timeout.ms",
            rebound_testkit::FAST_SESSION_TIMEOUT_MS.to_string(),
        )
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let mut got = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, consumer.recv()).await {
            Ok(Ok(m)) => {
                let key = String::from_utf8(m.key().unwrap().to_vec()).unwrap();
                let value = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
                got.insert(key, value);
            }
            Ok(Err(e)) => panic!("consume: {e}"),
            Err(_) => panic!("only {} of {want} records on {topic}: {got:?}", got.len()),
        }
    }
    got
}

#[tokio::test]
async fn delivers_to_kafka_and_ingests_tasks_from_a_topic() {
    let brokers = Brokers::start().unwrap();
    let bootstrap = brokers.bootstrap().to_string();
    let (host, port) = bootstrap.split_once(':').unwrap();
    let out = unique_name("out");
    let ingress = unique_name("ingress");
    create_topic(&bootstrap, &out, 1).await.unwrap();
    create_topic(&bootstrap, &ingress, 1).await.unwrap();
    let rec = Recorder::start().await;

    let dir = tempfile::tempdir().unwrap();
    let config = ServeConfig {
        store_url: format!("file://{}", dir.path().display()),
        kafka_brokers: bootstrap.clone(),
        ingress_topic: Some(ingress.clone()),
        ingress_group: unique_name("ingress-group"),
        ..ServeConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let served = tokio::spawn(rebound_scheduler::serve::serve_on(
        config,
        listener,
        stop.clone(),
    ));

    let client = reqwest::Client::new();
    let explicit = json!({
        "id": "k-1", "source": "t", "destination_type": "kafka", "base_delay": 1,
        "destination": {"host": host, "port": port, "topic": out},
        "message_data": "to explicit broker"
    });
    let default = json!({
        "id": "k-2", "source": "t", "destination_type": "kafka", "base_delay": 1,
        "destination": {"topic": out}, "message_data": "to default broker"
    });
    for t in [&explicit, &default] {
        let r = client
            .post(format!("{base}/tasks"))
            .json(t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
    }
    let got = consume(&bootstrap, &out, 2).await;
    assert_eq!(
        got.get("k-1|0").map(String::as_str),
        Some("to explicit broker")
    );
    assert_eq!(
        got.get("k-2|0").map(String::as_str),
        Some("to default broker")
    );

    // Ingress: bad records are dead-lettered, good ones on both sides are created.
    let records = [
        http_task("in-1", &rec.url("ingress"), 0, 1).to_string(),
        "not json at all".to_string(),
        json!({"id": "in-bad", "source": "t", "destination_type": "http", "base_delay": 0,
               "destination": {"url": rec.url("ingress")}})
        .to_string(),
        http_task("in-2", &rec.url("ingress"), 0, 1).to_string(),
    ];
    produce_records(
        &bootstrap,
        &ingress,
        records.iter().map(|r| TestRecord {
            value: r.clone().into_bytes(),
            ..TestRecord::default()
        }),
    )
    .unwrap();
    rec.wait_for(
        Duration::from_secs(60),
        "both ingested tasks delivered",
        |r| r.len() >= 2,
    )
    .await;
    let mut keys: Vec<String> = rec
        .received()
        .iter()
        .map(|r| r.header("x-message-key"))
        .collect();
    keys.sort();
    assert_eq!(keys, ["in-1|0", "in-2|0"]);
    let bad = client
        .get(format!("{base}/tasks/in-bad"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        bad.status().as_u16(),
        404,
        "an invalid record creates nothing"
    );
    // Both invalid records are in the DLQ, each naming where it came from
    // and what was wrong with it.
    let dlq = format!("{ingress}.dlq");
    let dead = rebound_testkit::read_at_least(&bootstrap, &dlq, 2).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    for (r, offset, names) in [
        (&dead[0], "1", "invalid body"),
        (&dead[1], "2", "base_delay"),
    ] {
        assert_eq!(r.header(h::ORIGINAL_TOPIC), Some(ingress.as_str()));
        assert_eq!(r.header(h::ORIGINAL_PARTITION), Some("0"));
        assert_eq!(r.header(h::ORIGINAL_OFFSET), Some(offset));
        assert_eq!(r.header(h::ERROR_KIND), Some("permanent"));
        let message = r.header(h::ERROR_MESSAGE).unwrap();
        assert!(message.contains(names), "{message}");
        assert_eq!(
            r.value.as_deref(),
            Some(records[offset.parse::<usize>().unwrap()].as_bytes()),
            "the DLQ keeps the original value"
        );
    }
    // One /metrics for the whole process: the scheduler's, its producers'
    // (two Kafka deliveries, two dead letters) and the ingress worker's
    // (four records handled, two of them by dead-lettering).
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "rebound_scheduler_tasks_created_total 4".to_string(),
        "rebound_producer_records_delivered_total 4".to_string(),
        format!("rebound_records_processed_total{{topic=\"{ingress}\"}} 4"),
        "rebound_dead_lettered_total{kind=\"permanent\"} 2".to_string(),
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    stop.cancel();
    served.await.unwrap().unwrap();
}
