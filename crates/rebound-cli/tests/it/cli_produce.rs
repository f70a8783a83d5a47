//! `rebound produce` as a black box against a real broker: kv, value and
//! JSON lines from a file and from stdin are read back exactly; bad lines
//! are reported by number and, without --skip-bad, nothing is sent.

use std::io::Write;
use std::process::{Output, Stdio};

use crate::common::{rebound, text};
use rebound_testkit::{read_all, unique_name, ReadRecord, TopicBed};

/// Runs `rebound produce` with `args`, feeding `stdin` when given.
fn produce(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = rebound()
        .arg("produce")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "produce failed:\n{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// The topic bed plus a directory for input files.
struct Bed {
    bed: TopicBed,
    dir: std::path::PathBuf,
}

impl std::ops::Deref for Bed {
    type Target = TopicBed;
    fn deref(&self) -> &TopicBed {
        &self.bed
    }
}

impl Bed {
    async fn new(partitions: i32) -> Bed {
        let bed = TopicBed::new("produce", partitions).await;
        let dir = std::env::temp_dir().join(unique_name("produce-input"));
        std::fs::create_dir_all(&dir).unwrap();
        Bed { bed, dir }
    }

    fn file(&self, name: &str, content: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, content).unwrap();
        path.to_string_lossy().into_owned()
    }

    fn args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec!["--brokers", self.bootstrap(), "--topic", &self.topic];
        v.extend_from_slice(extra);
        v
    }

    fn read(&self) -> Vec<ReadRecord> {
        read_all(self.bootstrap(), &self.topic).unwrap()
    }
}

/// partition, offset, key, value, headers.
type Row = (
    i32,
    i64,
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, String)>,
);

fn s(b: &Option<Vec<u8>>) -> Option<String> {
    b.as_ref().map(|b| String::from_utf8(b.clone()).unwrap())
}

fn headers(r: &ReadRecord) -> Vec<(String, String)> {
    r.headers
        .iter()
        .map(|(n, v)| (n.clone(), s(v).unwrap()))
        .collect()
}

/// `(key, value)` of each record, per partition in offset order, keys
/// grouped: records of one key are in one partition and in input order.
fn by_key(recs: &[ReadRecord]) -> std::collections::BTreeMap<Option<String>, (i32, Vec<String>)> {
    let mut m = std::collections::BTreeMap::new();
    for r in recs {
        let e = m
            .entry(s(&r.key))
            .or_insert_with(|| (r.partition, Vec::new()));
        assert_eq!(e.0, r.partition, "one key, one partition");
        e.1.push(s(&r.value).unwrap());
    }
    m
}

#[tokio::test]
async fn kv_from_a_file_and_values_from_stdin_read_back_exactly() {
    let bed = Bed::new(3).await;
    let mut input = String::new();
    for i in 0..60 {
        input.push_str(&format!("user-{}\tevent {i}\twith tab\n", i % 7));
    }
    input.push_str("\tno key\r\n");
    let file = bed.file("kv.txt", &input);
    let o = produce(
        &bed.args(&[&file, "--header", "source=cli", "--header", "run=1=one"]),
        None,
    );
    assert_eq!(ok(&o), "sent 61, failed 0, skipped 0\n");
    let recs = bed.read();
    assert_eq!(recs.len(), 61);
    for r in &recs {
        assert_eq!(
            headers(r),
            vec![
                ("source".to_string(), "cli".to_string()),
                ("run".to_string(), "1=one".to_string())
            ]
        );
    }
    let keys = by_key(&recs);
    assert_eq!(keys.len(), 8);
    for k in 0..7 {
        let want: Vec<String> = (0..60)
            .filter(|i| i % 7 == k)
            .map(|i| format!("event {i}\twith tab"))
            .collect();
        assert_eq!(keys[&Some(format!("user-{k}"))].1, want);
    }
    assert_eq!(keys[&None].1, vec!["no key".to_string()]);
    // The key partitioner spread the keys.
    let parts: std::collections::BTreeSet<i32> = keys.values().map(|(p, _)| *p).collect();
    assert!(parts.len() > 1, "{parts:?}");

    // Plain values from stdin (`-`), in order on one partition topic.
    let bed = Bed::new(1).await;
    let o = produce(&bed.args(&["--format", "value", "-"]), Some("a\tb\n\nlast"));
    assert_eq!(ok(&o), "sent 3, failed 0, skipped 0\n");
    let recs = bed.read();
    let got: Vec<(Option<String>, Option<String>, i64)> = recs
        .iter()
        .map(|r| (s(&r.key), s(&r.value), r.offset))
        .collect();
    assert_eq!(
        got,
        vec![
            (None, Some("a\tb".into()), 0),
            (None, Some(String::new()), 1),
            (None, Some("last".into()), 2)
        ]
    );
}

#[tokio::test]
async fn json_lines_from_stdin_and_a_file_keep_keys_values_headers_and_partitions() {
    let bed = Bed::new(3).await;
    let input = [
        r#"{"key": "k1", "value": {"n": 1, "tags": ["a"]}, "headers": {"h": "x"}, "partition": 2}"#,
        r#"{"key": null, "value": "plain text", "partition": 0}"#,
        r#"{"key": "k3", "value": 42, "headers": {"h": "y", "e": ""}, "partition": 1, "timestamp": 1714564800000}"#,
        r#"{"key": "k4", "value": null, "partition": 2}"#,
        r#"{"key_base64": "wyg=", "value_base64": "AAE=", "partition": 0}"#,
    ]
    .join("\n");
    let o = produce(
        &bed.args(&["--format", "json", "--header", "via=json"]),
        Some(&input),
    );
    assert_eq!(ok(&o), "sent 5, failed 0, skipped 0\n");
    let recs = bed.read();
    let got: Vec<Row> = recs
        .iter()
        .map(|r| {
            (
                r.partition,
                r.offset,
                r.key.clone(),
                r.value.clone(),
                headers(r),
            )
        })
        .collect();
    let hv = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        got,
        vec![
            (
                0,
                0,
                None,
                Some(b"plain text".to_vec()),
                hv(&[("via", "json")])
            ),
            (
                0,
                1,
                Some(vec![0xc3, 0x28]),
                Some(vec![0, 1]),
                hv(&[("via", "json")])
            ),
            (
                1,
                0,
                Some(b"k3".to_vec()),
                Some(b"42".to_vec()),
                hv(&[("e", ""), ("h", "y"), ("via", "json")])
            ),
            (
                2,
                0,
                Some(b"k1".to_vec()),
                // A JSON value is sent as written.
                Some(br#"{"n": 1, "tags": ["a"]}"#.to_vec()),
                hv(&[("h", "x"), ("via", "json")])
            ),
            (2, 1, Some(b"k4".to_vec()), None, hv(&[("via", "json")])),
        ]
    );

    // The same lines from a file go to the same partitions, after them.
    let file = bed.file("in.jsonl", &input);
    let o = produce(&bed.args(&["--format", "json", "--quiet", &file]), None);
    assert_eq!(ok(&o), "sent 5, failed 0, skipped 0\n");
    let per_partition: Vec<usize> = (0..3)
        .map(|p| bed.read().iter().filter(|r| r.partition == p).count())
        .collect();
    assert_eq!(per_partition, vec![4, 2, 4]);
}

#[tokio::test]
async fn bad_lines_are_named_and_nothing_is_sent() {
    let bed = Bed::new(2).await;
    let kv = "a\t1\nno tab here\nb\t2\nalso bad\n";
    let o = produce(&bed.args(&[]), Some(kv));
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("line 2: missing TAB between key and value\n"),
        "{err}"
    );
    assert!(
        err.contains("line 4: missing TAB between key and value\n"),
        "{err}"
    );
    assert!(
        !err.contains("line 1:") && !err.contains("line 3:"),
        "{err}"
    );
    assert!(err.contains("2 of 4 lines are bad; nothing sent"), "{err}");
    assert!(bed.read().is_empty());

    let json = [
        r#"{"key": "a", "value": 1}"#,
        r#"{"key": "b", "value": }"#,
        r#"{"key": "c", "value": 1, "partition": 5}"#,
        r#"{"key": 7, "value": 1}"#,
        r#"["not", "an", "object"]"#,
    ]
    .join("\n");
    let file = bed.file("bad.jsonl", &json);
    let o = produce(&bed.args(&["--format", "json", &file]), None);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("line 2: invalid JSON: expected value at line 1 column 23"),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "line 3: field partition: {} has no partition 5 (it has 2)",
            bed.topic
        )),
        "{err}"
    );
    assert!(
        err.contains("line 4: field key: expected a string or null, found a number"),
        "{err}"
    );
    assert!(
        err.contains("line 5: expected a JSON object, found an array"),
        "{err}"
    );
    assert!(bed.read().is_empty());
    assert_eq!(text(&o.stdout), "");
}

#[tokio::test]
async fn skip_bad_sends_the_good_lines_and_reports_the_rest() {
    let bed = Bed::new(1).await;
    let kv = "a\t1\nno tab here\nb\t2\n\nc\t3\n";
    let o = produce(&bed.args(&["--skip-bad", "--rate", "200"]), Some(kv));
    assert!(
        !o.status.success(),
        "skipped lines make the exit code non-zero"
    );
    assert_eq!(text(&o.stdout), "sent 3, failed 0, skipped 2\n");
    let err = text(&o.stderr);
    assert!(
        err.contains("line 2: missing TAB between key and value (skipped)"),
        "{err}"
    );
    assert!(
        err.contains("line 4: missing TAB between key and value (skipped)"),
        "{err}"
    );
    assert!(
        err.contains("0 records failed to send and 2 bad lines were skipped"),
        "{err}"
    );
    let got: Vec<(Option<String>, Option<String>)> = bed
        .read()
        .iter()
        .map(|r| (s(&r.key), s(&r.value)))
        .collect();
    assert_eq!(
        got,
        vec![
            (Some("a".into()), Some("1".into())),
            (Some("b".into()), Some("2".into())),
            (Some("c".into()), Some("3".into()))
        ]
    );
}

#[tokio::test]
async fn a_missing_topic_or_file_is_named() {
    let bed = Bed::new(1).await;
    let o = produce(
        &[
            "--brokers",
            bed.bootstrap(),
            "--topic",
            "nope",
            "--timeout",
            "5s",
        ],
        Some("a\tb\n"),
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("topic nope does not exist"),
        "{}",
        text(&o.stderr)
    );
    let o = produce(&bed.args(&["/no/such/file"]), None);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("cannot open /no/such/file"),
        "{}",
        text(&o.stderr)
    );
    let o = produce(&bed.args(&["--header", "novalue"]), Some(""));
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("\"novalue\" is not NAME=VALUE"),
        "{}",
        text(&o.stderr)
    );
}
