//! `rebound consume` as a black box against a real broker: records with
//! keys, headers, binary and JSON values and known timestamps are printed
//! exactly, in pretty and JSON form, from an offset or a time, up to a
//! count; a group commits what it printed; --follow sees later records.

use std::io::{BufRead, BufReader};
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::{rebound, text};
use rebound_core::Header;
use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_testkit::{create_topic, unique_name, TopicBed, FAST_SESSION_TIMEOUT_MS};
use serde_json::{json, Value};

/// 2024-05-01T12:00:00.000Z
const T0: i64 = 1_714_564_800_000;

/// The topic bed plus a producer whose sends share batches.
struct Bed {
    bed: TopicBed,
    producer: Producer,
}

impl std::ops::Deref for Bed {
    type Target = TopicBed;
    fn deref(&self) -> &TopicBed {
        &self.bed
    }
}

impl Bed {
    async fn new(partitions: i32) -> Bed {
        let bed = TopicBed::new("consume", partitions).await;
        let producer = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
        Bed { bed, producer }
    }

    /// Sends `recs` together (they share batches); returns (partition, offset) of each.
    async fn send(&self, recs: Vec<OutRecord>) -> Vec<(i32, i64)> {
        let sends = recs.iter().map(|r| self.producer.send(r));
        futures::future::join_all(sends)
            .await
            .into_iter()
            .map(|d| {
                let d = d.unwrap();
                (d.partition, d.offset)
            })
            .collect()
    }

    /// Record `i` of a wave: partition `i % parts`, key `k{i}`, value
    /// `{tag}-{i}`, header `i`, time `ts + i * 1000`.
    fn wave(&self, tag: &str, n: usize, parts: i32, ts: i64) -> Vec<OutRecord> {
        (0..n)
            .map(|i| OutRecord {
                topic: self.topic.clone(),
                partition: Some(i as i32 % parts),
                key: Some(format!("k{i}").into_bytes()),
                value: Some(format!("{tag}-{i}").into_bytes()),
                headers: vec![Header {
                    name: "i".into(),
                    value: Some(i.to_string().into_bytes()),
                }],
                timestamp: Some(ts + i as i64 * 1000),
            })
            .collect()
    }

    fn consume(&self, extra: &[&str]) -> Output {
        rebound()
            .args([
                "consume",
                "--brokers",
                self.bootstrap(),
                "--topic",
                &self.topic,
            ])
            .args(["--timeout", "20s"])
            .args(extra)
            .output()
            .unwrap()
    }

    fn ok(&self, extra: &[&str]) -> String {
        let o = self.consume(extra);
        assert!(
            o.status.success(),
            "consume {extra:?} failed:\n{}\n{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    /// JSON output as `(partition, offset, value)`, sorted.
    fn values(&self, extra: &[&str]) -> Vec<(i64, i64, String)> {
        let mut args = vec!["--format", "json"];
        args.extend_from_slice(extra);
        let mut v: Vec<(i64, i64, String)> = self
            .ok(&args)
            .lines()
            .map(|l| {
                let j: Value = serde_json::from_str(l).unwrap();
                (
                    j["partition"].as_i64().unwrap(),
                    j["offset"].as_i64().unwrap(),
                    j["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        v.sort();
        v
    }
}

fn want(items: &[(i64, i64, &str)]) -> Vec<(i64, i64, String)> {
    items
        .iter()
        .map(|&(p, o, v)| (p, o, v.to_string()))
        .collect()
}

#[tokio::test]
async fn pretty_and_json_print_every_field() {
    let bed = Bed::new(2).await;
    let mut recs = bed.wave("a", 2, 2, T0);
    recs.push(OutRecord {
        topic: bed.topic.clone(),
        partition: Some(1),
        key: None,
        value: Some(br#"{"n": [1, 2]}"#.to_vec()),
        headers: vec![
            Header {
                name: "bin".into(),
                value: Some(vec![0xff, 0x00]),
            },
            Header {
                name: "null".into(),
                value: None,
            },
        ],
        timestamp: Some(T0 + 123),
    });
    recs.push(OutRecord {
        topic: bed.topic.clone(),
        partition: Some(1),
        key: Some(vec![0xc3, 0x28]),
        value: None,
        headers: vec![],
        timestamp: Some(T0 + 5000),
    });
    bed.send(recs).await;

    // One partition at a time, so the order is the offset order.
    assert_eq!(
        bed.ok(&["--partition", "1"]),
        "partition 1  offset 0  2024-05-01T12:00:01.000Z\n  key: k1\n  headers: i=1\n  value: a-1\n\
         partition 1  offset 1  2024-05-01T12:00:00.123Z\n  key: (none)\n  headers: bin=base64:/wA=, null=(null)\n  value: {\"n\": [1, 2]}\n\
         partition 1  offset 2  2024-05-01T12:00:05.000Z\n  key: base64:wyg=\n  headers: (none)\n  value: (null)\n"
    );
    let lines: Vec<Value> = bed
        .ok(&["--format", "json", "--partition", "1"])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let t = bed.topic.as_str();
    assert_eq!(
        lines,
        vec![
            json!({"topic": t, "partition": 1, "offset": 0, "timestamp": T0 + 1000, "key": "k1",
                   "value": "a-1", "headers": [{"name": "i", "value": "1"}]}),
            json!({"topic": t, "partition": 1, "offset": 1, "timestamp": T0 + 123, "key": null,
                   "value": {"n": [1, 2]},
                   "headers": [{"name": "bin", "value_base64": "/wA="}, {"name": "null", "value": null}]}),
            json!({"topic": t, "partition": 1, "offset": 2, "timestamp": T0 + 5000,
                   "key_base64": "wyg=", "value": null, "headers": []}),
        ]
    );
    // All partitions.
    let all = bed.ok(&["--format", "json"]);
    assert_eq!(all.lines().count(), 4);
    assert!(all.contains(r#""value":"a-0""#), "{all}");
}

#[tokio::test]
async fn from_an_offset_a_time_and_up_to_a_count() {
    let bed = Bed::new(2).await;
    bed.send(bed.wave("a", 10, 2, T0)).await;
    // Record i: partition i % 2, offset i / 2, time T0 + i s.
    assert_eq!(
        bed.values(&["--from", "3"]),
        want(&[(0, 3, "a-6"), (0, 4, "a-8"), (1, 3, "a-7"), (1, 4, "a-9")])
    );
    assert_eq!(
        bed.values(&["--from", "2", "--partition", "1"]),
        want(&[(1, 2, "a-5"), (1, 3, "a-7"), (1, 4, "a-9")])
    );
    assert_eq!(
        bed.values(&["--from", "2024-05-01T12:00:07Z"]),
        want(&[(0, 4, "a-8"), (1, 3, "a-7"), (1, 4, "a-9")])
    );
    assert_eq!(
        bed.values(&["--from", "2024-05-01T14:00:06.500+02:00"]),
        want(&[(0, 4, "a-8"), (1, 3, "a-7"), (1, 4, "a-9")])
    );
    let at = format!("@{}", T0 + 8000);
    assert_eq!(
        bed.values(&["--from", &at]),
        want(&[(0, 4, "a-8"), (1, 4, "a-9")])
    );
    assert_eq!(bed.values(&["--from", "end"]), vec![]);
    assert_eq!(
        bed.values(&["--partition", "0", "--count", "2"]),
        want(&[(0, 0, "a-0"), (0, 1, "a-2")])
    );
    // Bad input is named.
    let o = bed.consume(&["--from", "soon"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("\"soon\" is not a start"),
        "{}",
        text(&o.stderr)
    );
    let o = bed.consume(&["--partition", "9"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains(&format!(
            "topic {} has no partition 9 (it has 2)",
            bed.topic
        )),
        "{}",
        text(&o.stderr)
    );
}

#[tokio::test]
async fn a_group_commits_what_it_printed() {
    let bed = Bed::new(2).await;
    bed.send(bed.wave("a", 6, 2, T0)).await;
    let group = unique_name("cli-group");
    let session = format!("{}ms", FAST_SESSION_TIMEOUT_MS);
    let args = [
        "--group",
        group.as_str(),
        "--session-timeout",
        session.as_str(),
    ];
    assert_eq!(
        bed.values(&args),
        want(&[
            (0, 0, "a-0"),
            (0, 1, "a-2"),
            (0, 2, "a-4"),
            (1, 0, "a-1"),
            (1, 1, "a-3"),
            (1, 2, "a-5")
        ])
    );
    bed.send(bed.wave("b", 3, 2, T0 + 60_000)).await;
    assert_eq!(
        bed.values(&args),
        want(&[(0, 3, "b-0"), (0, 4, "b-2"), (1, 3, "b-1")])
    );
    // Nothing new: nothing printed. Without a group, everything is still there.
    assert_eq!(bed.values(&args), vec![]);
    assert_eq!(bed.values(&[]).len(), 9);
    // --count with a group commits only what was printed.
    let group2 = unique_name("cli-group-count");
    let args2 = [
        "--group",
        group2.as_str(),
        "--session-timeout",
        session.as_str(),
    ];
    let mut with_count = args2.to_vec();
    with_count.extend(["--count", "4"]);
    let first = bed.values(&with_count);
    assert_eq!(first.len(), 4);
    let rest = bed.values(&args2);
    assert_eq!(rest.len(), 5);
    let mut all: Vec<_> = first.into_iter().chain(rest).collect();
    all.sort();
    assert_eq!(all, bed.values(&[]));
    // --partition and --group do not mix.
    let o = bed.consume(&["--group", "g", "--partition", "0"]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("cannot be used with"),
        "{}",
        text(&o.stderr)
    );
}

/// `| head` with a group: records written to the output buffer but never
/// taken by the closed pipe must not be committed, or the group skips them.
#[tokio::test]
async fn a_group_commits_nothing_a_closed_output_did_not_take() {
    let bed = Bed::new(1).await;
    // 1 KiB values: several fit in the output buffer before a write reaches
    // the (closed) pipe.
    let mut recs = bed.wave("a", 40, 1, T0);
    for r in &mut recs {
        r.value.as_mut().unwrap().extend([b'x'; 1024]);
    }
    bed.send(recs).await;
    let group = unique_name("cli-group-closed");
    let session = format!("{}ms", FAST_SESSION_TIMEOUT_MS);
    let args = [
        "--group",
        group.as_str(),
        "--session-timeout",
        session.as_str(),
    ];
    let mut child = rebound()
        .args([
            "consume",
            "--brokers",
            bed.bootstrap(),
            "--topic",
            &bed.topic,
        ])
        .args(["--format", "json", "--timeout", "20s"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Nobody reads: the pipe is closed before anything is written.
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    // The group committed nothing: every record is still there for it.
    assert_eq!(bed.values(&args).len(), 40);
}

#[tokio::test]
async fn follow_prints_records_written_after_it_started() {
    let bed = Bed::new(2).await;
    bed.send(bed.wave("a", 4, 2, T0)).await;
    let mut child = rebound()
        .args([
            "consume",
            "--brokers",
            bed.bootstrap(),
            "--topic",
            &bed.topic,
        ])
        .args(["--format", "json", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let value = |l: &str| -> String {
        let j: Value = serde_json::from_str(l).unwrap();
        j["value"].as_str().unwrap().to_string()
    };
    let take = |n: usize| -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut got = Vec::new();
        while got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => got.push(value(&l)),
                Err(e) => panic!("after {got:?}: {e}"),
            }
        }
        got.sort();
        got
    };
    assert_eq!(take(4), vec!["a-0", "a-1", "a-2", "a-3"]);
    // It is reading (it printed what was there) and keeps going.
    bed.send(bed.wave("b", 2, 2, T0 + 60_000)).await;
    assert_eq!(take(2), vec!["b-0", "b-1"]);
    assert_eq!(child.try_wait().unwrap(), None, "--follow keeps running");
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap();
}

#[tokio::test]
async fn json_output_is_produce_input() {
    let bed = Bed::new(2).await;
    let mut recs = bed.wave("a", 6, 2, T0);
    recs[1].value = Some(br#"{"n":[1,2]}"#.to_vec());
    recs[2].key = Some(vec![0xff]);
    recs[3].value = None;
    // JSON that a parse and re-encode would change: spaces, key order,
    // number spelling, and a value over two lines.
    recs[4].value = Some(br#"{"b": 2.50, "a": [1, 1e3]}"#.to_vec());
    recs[5].value = Some(b"[1,\n 2]".to_vec());
    bed.send(recs).await;
    let copy = unique_name("copy");
    create_topic(bed.bootstrap(), &copy, 2).await.unwrap();
    let lines = bed.ok(&["--format", "json"]);
    let mut child = rebound()
        .args(["produce", "--brokers", bed.bootstrap(), "--topic", &copy])
        .args(["--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), lines.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let strip = |recs: Vec<rebound_testkit::ReadRecord>| {
        recs.into_iter()
            .map(|r| (r.partition, r.offset, r.key, r.value, r.headers))
            .collect::<Vec<_>>()
    };
    let original = strip(rebound_testkit::read_all(bed.bootstrap(), &bed.topic).unwrap());
    assert_eq!(original.len(), 6);
    assert_eq!(
        strip(rebound_testkit::read_all(bed.bootstrap(), &copy).unwrap()),
        original
    );
}
