//! `rebound lag` on Apache Kafka with exact figures: offsets committed by
//! another client, records of known age, records deleted under a group,
//! and statuses from a window of looks.

use rebound_testkit::unique_name;
use serde_json::Value;

use crate::common::{aged_topic, commit, ok, python};

fn lag(args: &[&str]) -> Vec<Value> {
    let args: Vec<&str> = ["lag"]
        .iter()
        .chain(args)
        .chain(&["--format", "json"])
        .copied()
        .collect();
    ok(&args)
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
    let (bed, _) = aged_topic().await;
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
    let (bed, _) = aged_topic().await;
    let (b, t) = (bed.bootstrap(), bed.topic.as_str());
    let group = unique_name("g");
    commit(b, &group, t, &[(0, 2), (1, 10)]);
    // Delete partition 0's records below offset 5, as retention would.
    let script = "import sys\nfrom confluent_kafka import TopicPartition\nfrom confluent_kafka.admin import AdminClient\na = AdminClient({'bootstrap.servers': sys.argv[1]})\nfor f in a.delete_records([TopicPartition(sys.argv[2], 0, 5)]).values():\n    f.result(timeout=30)\n";
    python(script, &[b, t]);

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
