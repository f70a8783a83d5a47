//! `rebound dlq` as a black box against a real broker: DLQ fixture records
//! with provenance headers are written with the rebound producer, the real
//! binary lists, shows and replays them, and destination topics are read
//! back and compared exactly.
//!
//! This module holds the fixtures and the bed; [`list`] has listing,
//! showing and the errors, [`replay`] the replays.

mod list;
mod replay;

use std::process::{Command, Output};
use std::time::Duration;

use rebound_core::epoch_ms as now_ms;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rebound_core::headers as h;
use rebound_core::{Header, Record};
use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_testkit::{create_topic, unique_name, TopicBed};
use serde_json::Value;

fn rebound() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rebound"));
    for (k, _) in std::env::vars() {
        if k.starts_with("REBOUND_") && k != "REBOUND_TANSU_BIN" {
            c.env_remove(k);
        }
    }
    c.env("LOG_LEVEL", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    rebound().args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "{args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

fn fails(args: &[&str], needle: &str) -> Output {
    let o = run(args);
    assert!(!o.status.success(), "{args:?} should fail:\n{}", stdout(&o));
    assert!(
        stderr(&o).contains(needle),
        "error of {args:?} should contain {needle:?}:\n{}",
        stderr(&o)
    );
    o
}

/// 2024-05-01T12:00:00.123Z
const T_A: i64 = 1_714_564_800_123;
/// 2024-04-28T08:30:00.000Z
const T_D: i64 = 1_714_293_000_000;
const LONG_ERROR: &str =
    "invalid JSON payload: expected value at line 1 column 1 while decoding the order body";

/// One DLQ fixture record.
struct Fixture {
    partition: i32,
    key: Option<Vec<u8>>,
    value: Vec<u8>,
    headers: Vec<Header>,
}

fn hdr(name: &str, value: impl AsRef<[u8]>) -> Header {
    Header {
        name: name.to_string(),
        value: Some(value.as_ref().to_vec()),
    }
}

#[allow(clippy::too_many_arguments)]
fn provenance(
    topic: &str,
    partition: i32,
    offset: i64,
    attempts: u32,
    kind: &str,
    message: &str,
    last_failure: i64,
) -> Vec<Header> {
    vec![
        hdr(h::ORIGINAL_TOPIC, topic),
        hdr(h::ORIGINAL_PARTITION, partition.to_string()),
        hdr(h::ORIGINAL_OFFSET, offset.to_string()),
        hdr(h::ORIGINAL_TIMESTAMP, (last_failure - 60_000).to_string()),
        hdr(h::CONSUMER_GROUP, "billing"),
        hdr(h::ATTEMPT, attempts.to_string()),
        hdr(h::ERROR_KIND, kind),
        hdr(h::ERROR_MESSAGE, message),
        hdr(h::FIRST_FAILURE, (last_failure - 30_000).to_string()),
        hdr(h::LAST_FAILURE, last_failure.to_string()),
    ]
}

/// Four records over two DLQ partitions, as `(dlq partition:offset, fixture)`:
/// A 0:0 old, B 0:1 ten minutes ago (binary key and header, long error),
/// C 1:0 a minute ago, D 1:1 oldest.
fn fixtures(original: &str) -> Vec<Fixture> {
    let now = now_ms();
    let mut a = vec![hdr("app.trace", "trace-a")];
    a.extend(provenance(
        original,
        0,
        10,
        3,
        "transient",
        "HTTP 503 Service Unavailable from sink",
        T_A,
    ));
    let mut b = vec![hdr("blob", [0x00, 0xfe])];
    b.extend(provenance(
        original,
        1,
        11,
        1,
        "permanent",
        LONG_ERROR,
        now - 600_000,
    ));
    let c = provenance(
        original,
        1,
        12,
        5,
        "throttled",
        "rate limited: 429",
        now - 60_000,
    );
    let d = provenance(
        original,
        0,
        13,
        2,
        "transient",
        "Timeout after 30s calling http://sink",
        T_D,
    );
    vec![
        Fixture {
            partition: 0,
            key: Some(b"k-a".to_vec()),
            value: br#"{"id":"a"}"#.to_vec(),
            headers: a,
        },
        Fixture {
            partition: 0,
            key: Some(vec![0xff, 0x00, 0x01]),
            value: vec![0x80, 0x81, b'b'],
            headers: b,
        },
        Fixture {
            partition: 1,
            key: Some(b"k-c".to_vec()),
            value: b"value-c".to_vec(),
            headers: c,
        },
        Fixture {
            partition: 1,
            key: None,
            value: b"value-d".to_vec(),
            headers: d,
        },
    ]
}

async fn write(bootstrap: &str, topic: &str, fixtures: &[Fixture]) {
    let producer = Producer::new(&ProducerConfig::new(bootstrap)).unwrap();
    for f in fixtures {
        let out = OutRecord {
            topic: topic.to_string(),
            partition: Some(f.partition),
            key: f.key.clone(),
            value: Some(f.value.clone()),
            headers: f.headers.clone(),
            timestamp: None,
        };
        producer.send(&out).await.unwrap();
    }
}

/// A broker with an original topic and its DLQ (two partitions each) holding
/// the four fixtures.
struct Bed {
    bed: TopicBed,
    original: String,
    dlq: String,
    fixtures: Vec<Fixture>,
}

impl Bed {
    async fn new() -> Bed {
        let bed = TopicBed::new("orders", 2).await;
        let original = bed.topic.clone();
        let dlq = bed.another_topic(&format!("{original}.dlq"), 2).await;
        let fixtures = fixtures(&original);
        write(bed.bootstrap(), &dlq, &fixtures).await;
        Bed {
            bed,
            original,
            dlq,
            fixtures,
        }
    }

    fn b(&self) -> &str {
        self.bed.bootstrap()
    }

    /// `dlq SUB --brokers B --topic DLQ` followed by `rest`.
    fn args<'a>(&'a self, sub: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["dlq", sub, "--brokers", self.b(), "--topic", &self.dlq];
        v.extend_from_slice(rest);
        v
    }

    fn list(&self, rest: &[&str]) -> Vec<Vec<String>> {
        rows(&ok(&self.args("list", rest)))
    }
}

/// Data rows of a comfy-table UTF-8 table (the header row excluded).
fn rows(table: &str) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = table
        .lines()
        .filter(|l| l.starts_with('│'))
        .map(|l| {
            l.trim_matches('│')
                .split(['│', '┆'])
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect();
    assert!(!rows.is_empty(), "no table in:\n{table}");
    rows.remove(0);
    rows
}

fn first_column(rows: &[Vec<String>]) -> Vec<&str> {
    rows.iter().map(|r| r[0].as_str()).collect()
}

fn is_rfc3339_utc_ms(s: &str) -> bool {
    let pattern = "dddd-dd-ddTdd:dd:dd.dddZ";
    s.len() == pattern.len()
        && s.bytes().zip(pattern.bytes()).all(|(c, p)| match p {
            b'd' => c.is_ascii_digit(),
            _ => c == p,
        })
}

/// Every record of `topic`, read with explicit assignment from the start
/// of each partition to its end (partition EOF: tansu's high watermark is
/// not exact after multi-record batches), sorted by partition and offset.
fn read_topic(bootstrap: &str, topic: &str) -> Vec<Record> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "cli-dlq-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .create()
        .unwrap();
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .unwrap();
    let parts: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    assert!(!parts.is_empty(), "{topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    for &p in &parts {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let mut open: std::collections::BTreeSet<i32> = parts.into_iter().collect();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !open.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "reading {topic}: no end of partitions {open:?} after {} records",
            out.len()
        );
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => out.push(Record {
                topic: m.topic().into(),
                partition: m.partition(),
                offset: m.offset(),
                timestamp: m.timestamp().to_millis(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|x| Header {
                                name: x.key.to_string(),
                                value: x.value.map(<[u8]>::to_vec),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(KafkaError::PartitionEOF(p))) => {
                open.remove(&p);
            }
            None => {}
            Some(Err(e)) => panic!("reading {topic}: {e}"),
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}
