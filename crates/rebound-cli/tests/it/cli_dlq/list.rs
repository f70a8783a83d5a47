//! `rebound dlq list` and `show`, and how bad flags and brokers fail.

use super::*;

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
    // ... and says why, in librdkafka's words.
    assert!(stderr(&o).contains("Connection refused"), "{}", stderr(&o));
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
