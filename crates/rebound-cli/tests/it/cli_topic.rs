//! `rebound topic` on Apache Kafka, checked with another client (Python's
//! confluent-kafka admin API), and `rebound produce --create-topic`.

use std::time::Duration;

use rebound_testkit::{eventually, unique_name, Brokers};
use serde_json::Value;

use crate::common::{ok, python, run};

/// What confluent-kafka's admin client sees of `topic`: its partition count
/// (null when absent) and its non-default configs.
fn python_view(bootstrap: &str, topic: &str) -> Value {
    let script = r#"
import json, sys
from confluent_kafka.admin import AdminClient, ConfigResource
a = AdminClient({"bootstrap.servers": sys.argv[1]})
# All topics: asking for one by name lets the broker auto-create it.
t = a.list_topics(timeout=20).topics.get(sys.argv[2])
if t is None or t.error is not None:
    print(json.dumps({"partitions": None}))
else:
    r = ConfigResource(ConfigResource.Type.TOPIC, sys.argv[2])
    cfg = a.describe_configs([r])[r].result(timeout=20)
    configs = {k: v.value for k, v in cfg.items() if not v.is_default}
    print(json.dumps({"partitions": len(t.partitions), "configs": configs}))
"#;
    serde_json::from_str(&python(script, &[bootstrap, topic])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_describe_list_and_delete_as_another_client_sees_them() {
    let kafka = Brokers::kafka().unwrap();
    let b = kafka.bootstrap();
    let topic = unique_name("compacted");
    let created = ok(&[
        "topic",
        "create",
        "--brokers",
        b,
        "--topic",
        &topic,
        "--partitions",
        "3",
        "--config",
        "cleanup.policy=compact",
        "--config",
        "retention.ms=60000",
    ]);
    assert_eq!(
        created.trim(),
        format!("created topic {topic} (3 partitions, replication factor 1)")
    );
    let seen = python_view(b, &topic);
    assert_eq!(seen["partitions"], 3, "{seen}");
    assert_eq!(seen["configs"]["cleanup.policy"], "compact", "{seen}");
    assert_eq!(seen["configs"]["retention.ms"], "60000", "{seen}");

    let described: Value = serde_json::from_str(&ok(&[
        "topic",
        "describe",
        "--brokers",
        b,
        "--topic",
        &topic,
        "--format",
        "json",
    ]))
    .unwrap();
    let parts = described["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    for (i, p) in parts.iter().enumerate() {
        assert_eq!(p["partition"], i);
        assert_eq!(
            (p["earliest"].as_i64(), p["latest"].as_i64()),
            (Some(0), Some(0))
        );
        assert!(p["leader"].as_i64().unwrap() >= 0, "{p}");
    }
    assert_eq!(described["configs"]["cleanup.policy"], "compact");
    assert_eq!(described["configs"]["retention.ms"], "60000");

    let listed: Vec<Value> = ok(&["topic", "list", "--brokers", b, "--format", "json"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        listed.contains(&serde_json::json!({"topic": topic, "partitions": 3})),
        "{listed:?}"
    );
    assert!(listed
        .iter()
        .all(|t| !t["topic"].as_str().unwrap().starts_with("__")));

    let again = run(&["topic", "create", "--brokers", b, "--topic", &topic]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains(&topic) && stderr.contains("already exists"),
        "{stderr}"
    );

    let unconfirmed = run(&["topic", "delete", "--brokers", b, "--topic", &topic]);
    assert!(!unconfirmed.status.success());
    assert!(String::from_utf8_lossy(&unconfirmed.stderr).contains("--yes"));
    assert_eq!(python_view(b, &topic)["partitions"], 3, "still there");
    assert_eq!(
        ok(&[
            "topic",
            "delete",
            "--brokers",
            b,
            "--topic",
            &topic,
            "--yes"
        ])
        .trim(),
        format!("deleted topic {topic}")
    );
    eventually(
        Duration::from_secs(30),
        "the topic gone for the other client",
        || {
            let gone = python_view(b, &topic)["partitions"].is_null();
            async move { gone }
        },
    )
    .await;
    let missing = run(&["topic", "describe", "--brokers", b, "--topic", &topic]);
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains(&format!("topic {topic} does not exist"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_creates_a_missing_topic_only_when_asked() {
    let brokers = Brokers::start().unwrap();
    let b = brokers.bootstrap();
    let topic = unique_name("fresh");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "k1\tv1\nk2\tv2\n").unwrap();
    let input = input.to_str().unwrap();

    let refused = run(&["produce", "--brokers", b, "--topic", &topic, input]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("topic {topic} does not exist")),
        "{stderr}"
    );
    assert!(stderr.contains("--create-topic"), "{stderr}");

    ok(&[
        "produce",
        "--brokers",
        b,
        "--topic",
        &topic,
        "--create-topic",
        "--partitions",
        "2",
        "--quiet",
        input,
    ]);
    let spans =
        rebound_worker::reader::spans(&rebound_worker::reader::ReaderConfig::new(b, &topic))
            .unwrap();
    assert_eq!(spans.len(), 2, "two partitions");
    assert_eq!(rebound_testkit::read_all(b, &topic).unwrap().len(), 2);
}
