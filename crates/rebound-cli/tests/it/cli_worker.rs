//! `rebound worker` as a black box: flag validation, an unreachable broker,
//! and Kafka → HTTP delivery against a real broker and a real HTTP server.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use rebound_testkit::{create_topic, free_port, produce_records, unique_name, Brokers, TestRecord};

fn rebound() -> Command {
    crate::common::rebound_with_log("info")
}

const GOOD: &[&str] = &[
    "worker",
    "--brokers",
    "127.0.0.1:1",
    "--topic",
    "orders",
    "--group",
    "g",
    "--http-sink",
    "http://127.0.0.1:1/hook",
];

fn with(overrides: &[(&str, &str)]) -> Vec<String> {
    let mut args: Vec<String> = GOOD.iter().map(|s| s.to_string()).collect();
    for (flag, value) in overrides {
        match args.iter().position(|a| a == flag) {
            Some(i) => args[i + 1] = value.to_string(),
            None => {
                args.push(flag.to_string());
                args.push(value.to_string());
            }
        }
    }
    args
}

fn fails_naming(args: Vec<String>, flag: &str) {
    let out = rebound().args(&args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(
        stderr.contains(flag),
        "error for {args:?} should name {flag}: {stderr}"
    );
}

#[test]
fn bad_flags_fail_at_once_naming_the_flag() {
    fails_naming(with(&[("--ordering", "random")]), "--ordering");
    fails_naming(with(&[("--max-in-flight", "0")]), "--max-in-flight");
    fails_naming(with(&[("--topic", "")]), "--topic");
    fails_naming(with(&[("--topic", "no spaces")]), "--topic");
    fails_naming(with(&[("--http-sink", "not a url")]), "--http-sink");
    fails_naming(with(&[("--http-sink", "ftp://host/x")]), "--http-sink");
    fails_naming(with(&[("--drain-timeout", "soon")]), "--drain-timeout");
    fails_naming(
        with(&[("--max-buffered-bytes", "lots")]),
        "--max-buffered-bytes",
    );
    fails_naming(
        with(&[("--max-buffered-bytes", "0")]),
        "--max-buffered-bytes",
    );
}

#[test]
fn flags_are_read_from_the_environment() {
    let out = rebound()
        .args([
            "worker",
            "--topic",
            "t",
            "--group",
            "g",
            "--http-sink",
            "http://127.0.0.1:1/",
        ])
        .env("REBOUND_BROKERS", "127.0.0.1:1")
        .env("REBOUND_MAX_IN_FLIGHT", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--max-in-flight"), "{stderr}");
}

#[test]
fn an_unreachable_broker_fails_clearly_after_a_bounded_wait() {
    let started = Instant::now();
    let out = rebound()
        .args(with(&[
            ("--connect-timeout", "2s"),
            ("--ops-addr", "127.0.0.1:0"),
        ]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("could not reach Kafka brokers at 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_taken_ops_address_fails_before_touching_kafka() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = rebound()
        .args(with(&[("--connect-timeout", "20s"), ("--ops-addr", &addr)]))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    // The broker (127.0.0.1:1) is unreachable too: naming the address, not
    // the broker, shows the port was checked before any Kafka call.
    assert!(
        stderr.contains(&format!("--ops-addr {addr}: cannot listen")),
        "{stderr}"
    );
    assert!(!stderr.contains("could not reach"), "{stderr}");
}

/// One successful delivery: topic header, key header, key-base64 header, body.
type Delivery = (String, Option<String>, Option<String>, String);

#[derive(Default)]
struct Sink {
    /// "partition/offset" → successful deliveries
    got: Mutex<HashMap<String, Vec<Delivery>>>,
    attempts: Mutex<HashMap<String, usize>>,
}

async fn hook(State(s): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let h = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_string());
    let id = format!(
        "{}/{}",
        h("x-rebound-partition").unwrap_or_default(),
        h("x-rebound-offset").unwrap_or_default()
    );
    let attempt = {
        let mut a = s.attempts.lock().unwrap();
        let n = a.entry(id.clone()).or_default();
        *n += 1;
        *n
    };
    let body = String::from_utf8(body.to_vec()).unwrap();
    let index: usize = body.parse().unwrap();
    // Every tenth record fails on its first attempt.
    if index.is_multiple_of(10) && attempt == 1 {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    s.got.lock().unwrap().entry(id).or_default().push((
        h("x-rebound-topic").unwrap_or_default(),
        h("x-rebound-key"),
        h("x-rebound-key-base64"),
        body,
    ));
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_delivers_every_record_to_the_http_sink_and_stops_on_sigterm() {
    let brokers = Brokers::start().unwrap();
    let topic = unique_name("orders");
    create_topic(brokers.bootstrap(), &topic, 2).await.unwrap();
    let n = 200usize;
    let key = |i: usize| -> Vec<u8> {
        if i.is_multiple_of(3) {
            vec![0xff, 0x00, i as u8]
        } else {
            format!("k{i}").into_bytes()
        }
    };
    produce_records(
        brokers.bootstrap(),
        &topic,
        (0..n).map(|i| TestRecord {
            partition: Some((i % 2) as i32),
            key: Some(key(i)),
            value: i.to_string().into_bytes(),
        }),
    )
    .unwrap();

    let sink = Arc::new(Sink::default());
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(sink.clone());
    let sink_url = format!("{}/hook", crate::common::serve_http(app).await);

    let ops = format!("127.0.0.1:{}", free_port().unwrap());
    let mut child = rebound()
        .args([
            "worker",
            "--brokers",
            brokers.bootstrap(),
            "--topic",
            &topic,
            "--group",
            &unique_name("g"),
            "--http-sink",
            &sink_url,
            "--ordering",
            "key",
            "--max-in-flight",
            "16",
            "--retry-base",
            "20ms",
            "--session-timeout",
            "6s",
            "--ops-addr",
            &ops,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut was_ready = false;
    while sink.got.lock().unwrap().len() < n {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "timed out: {} delivered; worker stderr:\n{}",
                sink.got.lock().unwrap().len(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if !was_ready {
            if let Ok(r) = client.get(format!("http://{ops}/readyz")).send().await {
                was_ready = r.status() == 200;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // On a fast broker every record can be delivered before the first poll
    // of /readyz: it must still say ready while the worker runs.
    for _ in 0..100 {
        if was_ready {
            break;
        }
        if let Ok(r) = client.get(format!("http://{ops}/readyz")).send().await {
            was_ready = r.status() == 200;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = client
        .get(format!("http://{ops}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rebound_records_processed_total"),
        "{metrics}"
    );
    // One registry: the DLQ producer's metrics are on the same page.
    assert!(
        metrics.contains("rebound_producer_records_sent_total"),
        "{metrics}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&exit.stderr);
    assert!(
        exit.status.success(),
        "worker exit {:?}: {stderr}",
        exit.status
    );
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    assert!(was_ready, "/readyz never answered 200");

    let got = sink.got.lock().unwrap();
    assert_eq!(got.len(), n, "every record delivered");
    for i in 0..n {
        let id = format!("{}/{}", i % 2, i / 2);
        let deliveries = got
            .get(&id)
            .unwrap_or_else(|| panic!("record {id} missing"));
        assert_eq!(
            deliveries.len(),
            1,
            "record {id} delivered successfully more than once"
        );
        let (t, k, k64, body) = &deliveries[0];
        assert_eq!(t, &topic);
        assert_eq!(body, &i.to_string());
        if i.is_multiple_of(3) {
            assert_eq!(k, &None);
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(k64.as_ref().unwrap())
                .unwrap();
            assert_eq!(decoded, key(i));
        } else {
            assert_eq!(k.as_deref(), Some(format!("k{i}").as_str()));
        }
    }
    let attempts = sink.attempts.lock().unwrap();
    assert!(
        (0..n)
            .filter(|i| i.is_multiple_of(10))
            .all(|i| attempts[&format!("{}/{}", i % 2, i / 2)] == 2),
        "failed first attempts were retried once"
    );
}
