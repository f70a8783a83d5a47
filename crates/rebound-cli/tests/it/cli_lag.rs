//! `rebound lag` on Apache Kafka with exact figures: offsets committed by
//! another client, records of known age, records deleted under a group,
//! and statuses from a window of looks.

use std::process::Command;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_testkit::{unique_name, TopicBed};
use serde_json::Value;

/// Ten records in each of two partitions; record `i` is `100 - i` seconds old.
async fn bed() -> (TopicBed, i64) {
    let bed = TopicBed::kafka("lagged", 2).await;
    let producer = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    let now = rebound_core::epoch_ms();
    for p in 0..2 {
        for i in 0..10 {
            let mut r = OutRecord::new(&bed.topic, format!("v{i}").into_bytes());
            r.partition = Some(p);
            r.timestamp = Some(now - (100 - i) * 1000);
            producer.send(&r).await.unwrap();
        }
    }
    (bed, now)
}

/// Commits `offsets` (partition → offset) for `group`, as another client.
fn commit(bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
            .unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).unwrap();
}

fn lag(args: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_rebound"))
        .arg("lag")
        .args(args)
        .args(["--format", "json"])
        .env_remove("REBOUND_BROKERS")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn only<'a>(rows: &'a [Value], group: &str, partition: i32) -> &'a Value {
    let found: Vec<&Value> = rows
        .iter()
        .filter(|r| r["group"] == group && r["partition"] == partition)
        .collect();
    assert_eq!(found.len(), 1, "{rows:?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_in_records_and_seconds_is_exact() {
    let (bed, _) = bed().await;
    let (b, t) = (bed.bootstrap(), bed.topic.as_str());
    let group = unique_name("g");
    commit(b, &group, t, &[(0, 4), (1, 10)]);

    let rows = lag(&["--brokers", b, "--group", &group, "--topic", t]);
    assert_eq!(rows.len(), 2);
    let behind = only(&rows, &group, 0);
    assert_eq!(
        (
            &behind["committed"],
            &behind["end"],
            &behind["lag"],
            &behind["lost"]
        ),
        (
            &Value::from(4),
            &Value::from(10),
            &Value::from(6),
            &Value::from(0)
        )
    );
    // Record 4 was written 96 s before the bed's clock; allow for the run.
    let age = behind["lag_seconds"].as_f64().unwrap();
    assert!((96.0..110.0).contains(&age), "lag_seconds {age}");
    assert_eq!(behind["status"], Value::Null, "one look gives no status");
    let caught_up = only(&rows, &group, 1);
    assert_eq!(
        (&caught_up["lag"], &caught_up["lag_seconds"]),
        (&Value::from(0), &Value::from(0.0))
    );

    // Without --group: every group with commits, this one among them.
    let all = lag(&["--brokers", b]);
    assert_eq!(only(&all, &group, 0)["lag"], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_deleted_under_a_group_are_lost_and_a_window_gives_statuses() {
    let (bed, _) = bed().await;
    let (b, t) = (bed.bootstrap(), bed.topic.as_str());
    let group = unique_name("g");
    commit(b, &group, t, &[(0, 2), (1, 10)]);
    // Delete partition 0's records below offset 5, as retention would.
    let script = "import sys\nfrom confluent_kafka import TopicPartition\nfrom confluent_kafka.admin import AdminClient\na = AdminClient({'bootstrap.servers': sys.argv[1]})\nfor f in a.delete_records([TopicPartition(sys.argv[2], 0, 5)]).values():\n    f.result(timeout=30)\n";
    let out = Command::new("python3")
        .args(["-c", script, b, t])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rows = lag(&[
        "--brokers",
        b,
        "--group",
        &group,
        "--topic",
        t,
        "--watch",
        "--interval",
        "200ms",
        "--rounds",
        "3",
    ]);
    assert_eq!(rows.len(), 6, "two partitions, three looks");
    let p0: Vec<&Value> = rows.iter().filter(|r| r["partition"] == 0).collect();
    assert_eq!(
        (&p0[0]["lost"], &p0[0]["lag"]),
        (&Value::from(3), &Value::from(5))
    );
    let statuses: Vec<&Value> = p0.iter().map(|r| &r["status"]).collect();
    assert_eq!(
        statuses,
        [&Value::Null, &Value::from("STOP"), &Value::from("STOP")]
    );
    let p1: Vec<&Value> = rows.iter().filter(|r| r["partition"] == 1).collect();
    assert_eq!(p1[2]["status"], "OK");
}
