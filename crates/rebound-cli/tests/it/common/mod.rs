//! Shared by the CLI tests: the binary with a clean environment, a topic of
//! records of known age, and offsets committed as another client.
#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_testkit::{KillOnDrop, TopicBed};

/// The `rebound` binary without the caller's `REBOUND_*` (the tansu path
/// stays) and `OTEL_*` settings, logging at `level`.
pub fn rebound_with_log(level: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rebound"));
    for (k, _) in std::env::vars() {
        if (k.starts_with("REBOUND_") && k != "REBOUND_TANSU_BIN") || k.starts_with("OTEL_") {
            c.env_remove(k);
        }
    }
    c.env("LOG_LEVEL", level);
    c
}

/// [`rebound_with_log`] at `warn`.
pub fn rebound() -> Command {
    rebound_with_log("warn")
}

/// `rebound serve` on `127.0.0.1:port` on the store URL `store`, no broker
/// (tasks to Kafka are not delivered), with `env` set besides a clean
/// environment; killed when dropped.
pub fn serve(port: u16, store: &str, env: &[(&str, &str)]) -> KillOnDrop {
    serve_to(port, store, env, Stdio::null())
}

/// [`serve`] with its stderr (its log) to `stderr`.
pub fn serve_to(port: u16, store: &str, env: &[(&str, &str)], stderr: Stdio) -> KillOnDrop {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rebound"));
    for (k, _) in std::env::vars() {
        if k.starts_with("REBOUND_") || k.starts_with("REDIS_") || k == "HTTP_ADDR" {
            cmd.env_remove(k);
        }
    }
    let child = cmd
        .envs(env.iter().copied())
        .args(["serve", "--kafka-brokers", "127.0.0.1:1", "--http-addr"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["--store", store])
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    KillOnDrop(child)
}

/// The `file://` store URL of `dir`.
pub fn file_store(dir: &std::path::Path) -> String {
    format!("file://{}", dir.display())
}

/// Posts `task` to the [`serve`] on `port` until it answers 201 (20 s).
pub async fn post_task(port: u16, task: &serde_json::Value) {
    let client = reqwest::Client::new();
    rebound_testkit::eventually(
        Duration::from_secs(20),
        "serve accepts the task",
        || async {
            let r = client
                .post(format!("http://127.0.0.1:{port}/tasks"))
                .json(task)
                .send()
                .await;
            matches!(r, Ok(r) if r.status() == 201)
        },
    )
    .await;
}

/// A task to `url`, delivered once (no retry).
pub fn task(id: &str, url: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "source": "cli-test", "destination_type": "http",
        "destination": {"url": url}, "max_retries": 0, "base_delay": 1,
        "message_data": "{\"hello\":1}"
    })
}

/// The task's state and last error, as `GET /tasks/{id}` shows them.
pub async fn task_state(port: u16, id: &str) -> (String, String) {
    let url = format!("http://127.0.0.1:{port}/tasks/{id}");
    let Ok(r) = reqwest::get(url).await else {
        return Default::default();
    };
    let t: serde_json::Value = r.json().await.unwrap_or_default();
    let field = |f: &str| t[f].as_str().unwrap_or_default().to_string();
    (field("state"), field("last_error"))
}

/// Serves `app` on an ephemeral 127.0.0.1 port for the rest of the test;
/// its base URL (`http://127.0.0.1:PORT`).
pub async fn serve_http(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Output bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `rebound ARGS` and insists it succeeds; its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "rebound {args:?} failed: {}",
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Runs `rebound ARGS`.
pub fn run(args: &[&str]) -> Output {
    rebound().args(args).output().unwrap()
}

/// Apache Kafka with a two-partition topic of ten records each; record `i`
/// of a partition is stamped `100 - i` seconds before the returned time.
pub async fn aged_topic() -> (TopicBed, i64) {
    let bed = TopicBed::kafka("aged", 2).await;
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

/// Commits `offsets` (partition, offset) for `group`, as another client.
pub fn commit(bootstrap: &str, group: &str, topic: &str, offsets: &[(i32, i64)]) {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in offsets {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
            .unwrap();
    }
    consumer(bootstrap, group)
        .commit(&tpl, CommitMode::Sync)
        .unwrap();
}

/// `group`'s committed offsets of partitions 0 and 1, read by another client.
pub fn committed(bootstrap: &str, group: &str, topic: &str) -> Vec<Option<i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..2 {
        tpl.add_partition(topic, p);
    }
    let got = consumer(bootstrap, group)
        .committed_offsets(tpl, std::time::Duration::from_secs(10))
        .unwrap();
    (0..2)
        .map(|p| match got.find_partition(topic, p).unwrap().offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        })
        .collect()
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

/// Runs a Python script (another Kafka client: confluent-kafka) with
/// `args`; its stdout, after insisting it succeeded.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "python: {}", text(&out.stderr));
    text(&out.stdout)
}
