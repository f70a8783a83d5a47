//! `rebound dlq` as a black box against a real broker: DLQ fixture records
//! with provenance headers are written with the rebound producer, the real
//! binary lists, shows and replays them, and destination topics are read
//! back and compared exactly.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_shows_every_record_with_its_provenance_and_filters_work() {
    let bed = Bed::new().await;
    let o = &bed.original;

    let all = bed.list(&[]);
    assert_eq!(all.len(), 4, "{all:?}");
    assert_eq!(
        all[0],
        vec![
            "0:0".to_string(),
            "k-a".into(),
            "transient".into(),
            "HTTP 503 Service Unavailable from sink".into(),
            "3".into(),
            "2024-05-01T12:00:00.123Z".into(),
            format!("{o}/0/10"),
        ]
    );
    let cut: String = LONG_ERROR.chars().take(59).collect::<String>() + "…";
    assert_eq!(
        all[1][..5],
        ["0:1", "base64:/wAB", "permanent", cut.as_str(), "1"]
    );
    assert!(is_rfc3339_utc_ms(&all[1][5]), "{:?}", all[1]);
    assert_eq!(all[1][6], format!("{o}/1/11"));
    assert_eq!(
        all[2][..5],
        ["1:0", "k-c", "throttled", "rate limited: 429", "5"]
    );
    assert!(is_rfc3339_utc_ms(&all[2][5]), "{:?}", all[2]);
    assert_eq!(
        all[3],
        vec![
            "1:1".to_string(),
            "-".into(),
            "transient".into(),
            "Timeout after 30s calling http://sink".into(),
            "2".into(),
            "2024-04-28T08:30:00.000Z".into(),
            format!("{o}/0/13"),
        ]
    );

    // --grep: substring of the error message, case-insensitive.
    assert_eq!(first_column(&bed.list(&["--grep", "http 503"])), ["0:0"]);
    assert_eq!(first_column(&bed.list(&["--grep", "HTTP"])), ["0:0", "1:1"]);
    assert_eq!(first_column(&bed.list(&["--grep", "TIMEOUT"])), ["1:1"]);
    let none = ok(&bed.args("list", &["--grep", "no such error"]));
    assert_eq!(none.trim(), "no records");

    // --since / --until on the last failure: relative, RFC 3339, epoch ms.
    assert_eq!(first_column(&bed.list(&["--since", "1h"])), ["0:1", "1:0"]);
    assert_eq!(
        first_column(&bed.list(&[
            "--since",
            "2024-04-30T00:00:00Z",
            "--until",
            "1714600000000"
        ])),
        ["0:0"]
    );
    assert_eq!(
        first_column(&bed.list(&["--until", "2024-04-29T00:00:00+02:00"])),
        ["1:1"]
    );
    assert_eq!(
        first_column(&bed.list(&["--since", &T_A.to_string(), "--until", "5m"])),
        ["0:0", "0:1"]
    );

    // --limit keeps the first records by partition and offset.
    assert_eq!(
        first_column(&bed.list(&["--limit", "3"])),
        ["0:0", "0:1", "1:0"]
    );
    assert_eq!(
        first_column(&bed.list(&["--limit", "1", "--grep", "http"])),
        ["0:0"]
    );

    // Bad filters fail at once, naming the flag.
    for (flag, bad) in [
        ("--since", "yesterday"),
        ("--until", "2024-13-01T00:00:00Z"),
        ("--limit", "0"),
        ("--format", "xml"),
        ("--grep", ""),
    ] {
        fails(&bed.args("list", &[flag, bad]), flag);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_json_round_trips_every_header() {
    let bed = Bed::new().await;
    let out = ok(&bed.args("list", &["--format", "json"]));
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4, "{out}");
    let coords = [(0, 0), (0, 1), (1, 0), (1, 1)];
    for ((j, f), (p, off)) in lines.iter().zip(&bed.fixtures).zip(coords) {
        assert_eq!(j["dlq_topic"], bed.dlq.as_str());
        assert_eq!(
            (j["partition"].as_i64(), j["offset"].as_i64()),
            (Some(p), Some(off))
        );
        let bytes = |name: &str| -> Option<Vec<u8>> {
            match (&j[name], &j[format!("{name}_base64").as_str()]) {
                (Value::String(s), Value::Null) => Some(s.as_bytes().to_vec()),
                (Value::Null, Value::String(b)) => Some(B64.decode(b).unwrap()),
                (Value::Null, Value::Null) => None,
                other => panic!("{name}: {other:?}"),
            }
        };
        assert_eq!(bytes("key"), f.key, "{j}");
        assert_eq!(bytes("value"), Some(f.value.clone()), "{j}");
        let headers: Vec<Header> = j["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|hj| {
                let value = match (&hj["value"], &hj["value_base64"]) {
                    (Value::String(s), Value::Null) => Some(s.as_bytes().to_vec()),
                    (Value::Null, Value::String(b)) => Some(B64.decode(b).unwrap()),
                    other => panic!("header {hj}: {other:?}"),
                };
                Header {
                    name: hj["name"].as_str().unwrap().to_string(),
                    value,
                }
            })
            .collect();
        assert_eq!(headers, f.headers, "{j}");
        assert_eq!(j["original"]["topic"], bed.original.as_str());
    }
    assert_eq!(lines[0]["error_kind"], "transient");
    assert_eq!(lines[0]["attempts"], 3);
    assert_eq!(lines[0]["last_failure"], "2024-05-01T12:00:00.123Z");
    assert_eq!(lines[0]["last_failure_ms"], T_A);
    assert_eq!(lines[0]["consumer_group"], "billing");
    assert_eq!(lines[0]["original"]["offset"], 10);
    assert_eq!(lines[1]["headers"][0]["value_base64"], "AP4=");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_prints_one_record_with_all_headers() {
    let bed = Bed::new().await;
    let out = ok(&bed.args("show", &["--offset", "0:1"]));
    let f = &bed.fixtures[1];
    assert!(out.contains(&format!("topic:     {}\n", bed.dlq)), "{out}");
    assert!(out.contains("offset:    0:1\n"), "{out}");
    assert!(out.contains("key:       base64:/wAB\n"), "{out}");
    assert!(out.contains("value:     base64:gIFi\n"), "{out}");
    assert!(
        out.contains(&format!("headers:   {}\n", f.headers.len())),
        "{out}"
    );
    let ts_line = out.lines().find(|l| l.starts_with("timestamp: ")).unwrap();
    assert!(
        is_rfc3339_utc_ms(ts_line["timestamp: ".len()..].split(' ').next().unwrap()),
        "{ts_line}"
    );
    let expected: Vec<Vec<String>> = f
        .headers
        .iter()
        .map(|hd| {
            let v = hd.value.as_deref().unwrap();
            let shown = match std::str::from_utf8(v) {
                Ok(s) => s.to_string(),
                Err(_) => format!("base64:{}", B64.encode(v)),
            };
            vec![hd.name.clone(), shown]
        })
        .collect();
    assert_eq!(rows(&out), expected);
    assert_eq!(expected[0], ["blob", "base64:AP4="]);

    // Bad --offset values fail naming the flag.
    fails(&bed.args("show", &["--offset", "x:1"]), "--offset");
    fails(&bed.args("show", &["--offset", "1:-1"]), "--offset");
    let o = fails(&bed.args("show", &["--offset", "1"]), "--offset");
    assert!(stderr(&o).contains("has 2 partitions"), "{}", stderr(&o));
    fails(
        &bed.args("show", &["--offset", "0:99"]),
        &format!("--offset 0:99: {} has no record at 0:99", bed.dlq),
    );
    fails(&bed.args("show", &["--offset", "7:0"]), "no partition 7");
}

/// Checks that `got` is `f` replayed: same key, value, headers in order,
/// plus one `rebound.replayed` header (last) within `[from, to]`.
fn assert_replayed(got: &Record, f: &Fixture, from: i64, to: i64) {
    assert_eq!(got.key, f.key);
    assert_eq!(got.value.as_deref(), Some(f.value.as_slice()));
    let (last, rest) = got.headers.split_last().unwrap();
    assert_eq!(rest, f.headers.as_slice());
    assert_eq!(last.name, h::REPLAYED);
    let at: i64 = std::str::from_utf8(last.value.as_deref().unwrap())
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (from..=to).contains(&at),
        "replayed at {at}, not in {from}..={to}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_all_puts_every_record_back_exactly_once() {
    let bed = Bed::new().await;
    assert!(read_topic(bed.b(), &bed.original).is_empty());
    let before = now_ms();
    let out = ok(&bed.args("replay", &["--all"]));
    let after = now_ms();
    assert_eq!(
        out.lines().last().unwrap(),
        format!("sent 4 ({}: 4), skipped 0, failed 0", bed.original)
    );
    let got = read_topic(bed.b(), &bed.original);
    assert_eq!(got.len(), 4, "{got:?}");
    for f in &bed.fixtures {
        let matching: Vec<&Record> = got
            .iter()
            .filter(|r| r.value.as_deref() == Some(f.value.as_slice()))
            .collect();
        assert_eq!(matching.len(), 1, "{:?}", f.value);
        assert_replayed(matching[0], f, before, after);
        // Back in its original partition.
        let original_partition: i32 = f
            .headers
            .iter()
            .find(|x| x.name == h::ORIGINAL_PARTITION)
            .map(|x| {
                std::str::from_utf8(x.value.as_deref().unwrap())
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .unwrap();
        assert_eq!(matching[0].partition, original_partition);
    }
    // The DLQ itself is unchanged.
    assert_eq!(read_topic(bed.b(), &bed.dlq).len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_to_another_topic_sends_exactly_the_selection() {
    let bed = Bed::new().await;
    let dest = unique_name("elsewhere");
    create_topic(bed.b(), &dest, 1).await.unwrap();
    let select = ["--to", dest.as_str(), "--offsets", "0:1,1:0"];

    // --dry-run prints the plan and sends nothing.
    let dry: Vec<&str> = select.iter().copied().chain(["--dry-run"]).collect();
    let out = ok(&bed.args("replay", &dry));
    assert!(
        out.starts_with(&format!(
            "dry run: would send 2 records from {} ({dest}: 2)\n",
            bed.dlq
        )),
        "{out}"
    );
    let plan = rows(&out);
    assert_eq!(first_column(&plan), ["0:1", "1:0"]);
    assert_eq!(
        plan[1][..4],
        [
            "1:0",
            "k-c",
            dest.as_str(),
            &format!("{}/1/12", bed.original)
        ]
    );
    assert_eq!(
        out.lines().last().unwrap(),
        "dry run: nothing sent (would send 2, would skip 0)"
    );
    assert!(read_topic(bed.b(), &dest).is_empty());

    let before = now_ms();
    let out = ok(&bed.args("replay", &select));
    let after = now_ms();
    assert_eq!(
        out.lines().last().unwrap(),
        format!("sent 2 ({dest}: 2), skipped 0, failed 0")
    );
    let got = read_topic(bed.b(), &dest);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_replayed(&got[0], &bed.fixtures[1], before, after);
    assert_replayed(&got[1], &bed.fixtures[2], before, after);
    assert!(read_topic(bed.b(), &bed.original).is_empty());

    // A selection that matches nothing fails, names it, and sends nothing.
    fails(
        &bed.args("replay", &["--to", &dest, "--grep", "no such error"]),
        "--grep \"no such error\" matched no record",
    );
    fails(
        &bed.args("replay", &["--to", &dest, "--offsets", "0:1,0:99"]),
        &format!("--offsets 0:1,0:99: {} has no record at 0:99", bed.dlq),
    );
    assert_eq!(read_topic(bed.b(), &dest).len(), 2);

    // Exactly one of --offsets / --grep / --all.
    fails(&bed.args("replay", &["--to", &dest]), "--offsets");
    fails(
        &bed.args("replay", &["--all", "--grep", "x"]),
        "cannot be used with",
    );
    fails(&bed.args("replay", &["--offsets", "0:x"]), "--offsets");
    fails(&bed.args("replay", &["--all", "--to", "bad topic"]), "--to");
}

/// An original topic (two partitions) and its DLQ (one partition), with the
/// first two fixtures (not yet written), both for DLQ partition 0.
async fn two_fixtures_on_one_partition() -> (TopicBed, String, Vec<Fixture>) {
    let bed = TopicBed::new("orders", 2).await;
    let dlq = bed.another_topic(&format!("{}.dlq", bed.topic), 1).await;
    let mut fixtures = fixtures(&bed.topic);
    fixtures.truncate(2);
    for f in &mut fixtures {
        f.partition = 0;
    }
    (bed, dlq, fixtures)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_reports_records_without_an_original_topic_and_sends_the_rest() {
    let (bed, dlq, mut fixtures) = two_fixtures_on_one_partition().await;
    let (brokers, original) = (&bed.brokers, bed.topic.clone());
    fixtures[1].headers.retain(|x| x.name != h::ORIGINAL_TOPIC);
    write(brokers.bootstrap(), &dlq, &fixtures).await;

    let before = now_ms();
    let o = run(&[
        "dlq",
        "replay",
        "--brokers",
        brokers.bootstrap(),
        "--topic",
        &dlq,
        "--all",
    ]);
    let after = now_ms();
    assert!(!o.status.success(), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("skipped 0:1: no rebound.original.topic header"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stdout(&o).lines().last().unwrap(),
        format!("sent 1 ({original}: 1), skipped 1, failed 0")
    );
    let got = read_topic(brokers.bootstrap(), &original);
    assert_eq!(got.len(), 1);
    assert_replayed(&got[0], &fixtures[0], before, after);
}

#[test]
fn flags_are_read_from_the_environment_and_a_missing_flag_is_named() {
    // No broker needed: the flag error comes first.
    let o = rebound()
        .args(["dlq", "show", "--offset", "0:1"])
        .env("REBOUND_BROKERS", "127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--topic"), "{}", stderr(&o));
    let o = rebound()
        .args(["dlq", "list", "--topic", "t.dlq"])
        .env("REBOUND_BROKERS", "127.0.0.1:1")
        .env("REBOUND_DLQ_LIMIT", "0")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--limit"), "{}", stderr(&o));
}

#[test]
fn an_unreachable_broker_fails_with_one_clear_line() {
    let args = [
        "dlq",
        "list",
        "--brokers",
        "127.0.0.1:1",
        "--topic",
        "t.dlq",
        "--timeout",
        "2s",
    ];
    let o = fails(
        &args,
        "could not reach Kafka brokers at 127.0.0.1:1 within 2s",
    );
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dlq_topic_that_does_not_exist_is_named() {
    let brokers = rebound_testkit::Brokers::start().unwrap();
    let missing = unique_name("nothing.dlq");
    let args = [
        "dlq",
        "list",
        "--brokers",
        brokers.bootstrap(),
        "--topic",
        &missing,
    ];
    fails(&args, &format!("topic {missing} does not exist"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_exits_non_zero_naming_records_that_failed_to_send() {
    let (bed, dlq, mut fixtures) = two_fixtures_on_one_partition().await;
    let (brokers, original) = (&bed.brokers, bed.topic.clone());
    // The first record names a partition its original topic does not have.
    for x in &mut fixtures[0].headers {
        if x.name == h::ORIGINAL_PARTITION {
            x.value = Some(b"7".to_vec());
        }
    }
    write(brokers.bootstrap(), &dlq, &fixtures).await;

    let args = [
        "dlq",
        "replay",
        "--brokers",
        brokers.bootstrap(),
        "--topic",
        &dlq,
        "--all",
        "--timeout",
        "5s",
    ];
    let o = fails(&args, "1 of 2 records failed to send: 0:0");
    assert!(
        stderr(&o).contains(&format!("failed 0:0 -> {original}: ")),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        stdout(&o).lines().last().unwrap(),
        format!("sent 1 ({original}: 1), skipped 0, failed 1")
    );
    let got = read_topic(brokers.bootstrap(), &original);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value.as_deref(), Some(fixtures[1].value.as_slice()));
}
