//! `rebound group` on Apache Kafka: a live member is listed and described
//! with its assignment and blocks a reset; resets move committed offsets
//! exactly with --execute and not at all without it (read by another client).

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rebound_testkit::{eventually, unique_name};
use serde_json::Value;

use crate::common::{aged_topic, commit, committed, ok, run, text};

/// `group reset` of `group` on `topic` to `to` (a plan unless `--execute` is added).
fn reset_args<'a>(b: &'a str, group: &'a str, topic: &'a str, to: &'a str) -> Vec<&'a str> {
    vec![
        "group",
        "reset",
        "--brokers",
        b,
        "--group",
        group,
        "--topic",
        topic,
        "--to",
        to,
    ]
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_member_is_described_and_blocks_a_reset() {
    let (bed, _) = aged_topic().await;
    let (b, t) = (bed.bootstrap(), bed.topic.clone());
    let group = unique_name("live");
    let member: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b)
        .set("group.id", &group)
        .set("client.id", "member-one")
        .set("session.timeout.ms", "6000")
        .create()
        .unwrap();
    member.subscribe(&[&t]).unwrap();
    let member = std::sync::Arc::new(member);
    let polling = member.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let poller = std::thread::spawn(move || {
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            let _ = polling.poll(Duration::from_millis(100));
        }
    });
    eventually(Duration::from_secs(30), "the member assigned", || {
        let assigned = member.assignment().map(|a| a.count()).unwrap_or(0) == 2;
        async move { assigned }
    })
    .await;

    let groups = json_lines(&ok(&["group", "list", "--brokers", b, "--format", "json"]));
    let listed = groups
        .iter()
        .find(|g| g["group"] == group.as_str())
        .expect("listed");
    assert_eq!(
        (&listed["state"], &listed["members"]),
        (&Value::from("Stable"), &Value::from(1))
    );

    let d: Value = serde_json::from_str(&ok(&[
        "group",
        "describe",
        "--brokers",
        b,
        "--group",
        &group,
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(d["members"].as_array().unwrap().len(), 1, "{d}");
    assert_eq!(d["members"][0]["client_id"], "member-one");
    assert_eq!(
        d["members"][0]["assignment"],
        serde_json::json!([[t, [0, 1]]])
    );

    let mut execute = reset_args(b, &group, &t, "latest");
    execute.push("--execute");
    let refused = run(&execute);
    assert!(!refused.status.success());
    assert!(
        text(&refused.stderr).contains("has 1 active member(s)"),
        "{}",
        text(&refused.stderr)
    );
    assert_eq!(committed(b, &group, &t), [None, None], "nothing moved");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    poller.join().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resets_move_offsets_exactly_and_only_with_execute() {
    let (bed, t0) = aged_topic().await;
    let (b, t) = (bed.bootstrap(), bed.topic.clone());
    let group = unique_name("reset");
    commit(b, &group, &t, &[(0, 4), (1, 9)]);
    let reset = |to: &str, execute: bool| {
        let mut args = reset_args(b, &group, &t, to);
        args.extend(["--format", "json"]);
        if execute {
            args.push("--execute");
        }
        json_lines(&ok(&args))
    };

    let plan = reset("earliest", false);
    assert_eq!(
        plan,
        [
            serde_json::json!({"partition": 0, "old": 4, "new": 0}),
            serde_json::json!({"partition": 1, "old": 9, "new": 0}),
        ]
    );
    assert_eq!(
        committed(b, &group, &t),
        [Some(4), Some(9)],
        "a plan changes nothing"
    );

    // Record 5 of each partition is stamped t0 - 95 s.
    let at_5 = format!("@{}", t0 - 95_000);
    let after_5 = jiff::Timestamp::from_millisecond(t0 - 94_500)
        .unwrap()
        .to_string();
    for (to, want) in [
        ("earliest", [Some(0), Some(0)]),
        ("shift:3", [Some(3), Some(3)]),
        ("shift:-5", [Some(0), Some(0)]),
        ("latest", [Some(10), Some(10)]),
        ("7", [Some(7), Some(7)]),
        (at_5.as_str(), [Some(5), Some(5)]),
        (after_5.as_str(), [Some(6), Some(6)]),
        ("999", [Some(10), Some(10)]),
    ] {
        reset(to, true);
        assert_eq!(committed(b, &group, &t), want, "--to {to}");
    }
    let bad = run(&reset_args(b, &group, &t, "soon"));
    assert!(text(&bad.stderr).contains("--to"), "{}", text(&bad.stderr));
}
