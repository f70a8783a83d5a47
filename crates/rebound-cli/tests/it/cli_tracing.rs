//! Tracing as a black box: `rebound worker` and `rebound dlq replay` export
//! over OTLP (`OTEL_EXPORTER_OTLP_ENDPOINT`) to an in-process receiver. A
//! record that arrives with a trace context fails at the HTTP sink (twice: one in-place retry), is
//! dead-lettered, replayed and then delivered: one trace, the exact span
//! tree, the sink sees the record's trace id, JSON log lines carry it.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_testkit::{create_topic, eventually, free_port, otlp, read_all, unique_name, Brokers};

use crate::common::{rebound, rebound_with_log, serve_http, text};

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[derive(Default)]
struct Sink {
    fixed: AtomicBool,
    /// traceparent of each request, and whether it was answered 200.
    seen: Mutex<Vec<(String, bool)>>,
}

async fn hook(State(s): State<Arc<Sink>>, headers: HeaderMap) -> StatusCode {
    let tp = headers
        .get("traceparent")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let ok = s.fixed.load(Ordering::SeqCst);
    s.seen.lock().unwrap().push((tp, ok));
    if ok {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lettered_then_replayed_record_is_one_trace() {
    let receiver = otlp::Receiver::start().await;
    let brokers = Brokers::start().unwrap();
    let bootstrap = brokers.bootstrap().to_string();
    let topic = unique_name("orders");
    let dlq = format!("{topic}.dlq");
    create_topic(&bootstrap, &topic, 1).await.unwrap();
    create_topic(&bootstrap, &dlq, 1).await.unwrap();

    let sink = Arc::new(Sink::default());
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(sink.clone());
    let sink_url = format!("{}/hook", serve_http(app).await);

    // The record comes from an upstream service's span; no provider is
    // installed here, so it is sent with exactly that context.
    let producer = Producer::new(&ProducerConfig::new(&bootstrap)).unwrap();
    let mut rec = OutRecord::new(&topic, "value-secret").with_key("key-secret");
    rec.set_header("traceparent", format!("00-{TRACE}-{PARENT}-01"));
    producer.send(&rec).await.unwrap();

    let otel = |c: &mut std::process::Command, service: &str| {
        c.env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
            .env("OTEL_SERVICE_NAME", service)
            .env("OTEL_BSP_SCHEDULE_DELAY", "200");
    };
    let mut worker = rebound_with_log("info");
    otel(&mut worker, "worker");
    // No new trace is kept, yet this record's trace is recorded whole: a
    // sampled parent's children follow it.
    worker
        .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        .env("OTEL_TRACES_SAMPLER_ARG", "0");
    let worker = worker
        .args([
            "--log-format",
            "json",
            "worker",
            "--brokers",
            &bootstrap,
            "--topic",
            &topic,
            "--group",
            &unique_name("g"),
            "--http-sink",
            &sink_url,
            "--retry-attempts",
            "2",
            "--retry-base",
            "10ms",
            "--session-timeout",
            "6s",
            "--ops-addr",
            &format!("127.0.0.1:{}", free_port().unwrap()),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    eventually(Duration::from_secs(60), "the record dead-lettered", || {
        let b = bootstrap.clone();
        let d = dlq.clone();
        async move { read_all(&b, &d).map(|r| r.len() == 1).unwrap_or(false) }
    })
    .await;
    sink.fixed.store(true, Ordering::SeqCst);
    let mut replay = rebound_with_log("warn");
    otel(&mut replay, "replay");
    let out = replay
        .args([
            "dlq",
            "replay",
            "--brokers",
            &bootstrap,
            "--topic",
            &dlq,
            "--all",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "replay failed: {}", text(&out.stderr));
    eventually(
        Duration::from_secs(60),
        "the replayed record delivered",
        || {
            let n = sink.seen.lock().unwrap().iter().filter(|s| s.1).count();
            async move { n == 1 }
        },
    )
    .await;
    let pid = worker.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let out = worker.wait_with_output().unwrap();
    let logs = text(&out.stderr);
    assert!(out.status.success(), "worker failed: {logs}");

    let spans = receiver
        .wait_for(Duration::from_secs(10), |s| {
            s.iter().filter(|s| s.trace_id == TRACE).count() >= 8
        })
        .await;
    assert_eq!(
        otlp::tree(&spans, TRACE),
        format!(
            "process {topic} [consumer] !\n  \
               POST [client] !\n  \
               POST [client] !\n  \
               send {dlq} [producer]\n    \
                 process {dlq} [consumer]\n      \
                   send {topic} [producer]\n        \
                     process {topic} [consumer]\n          \
                       POST [client]\n"
        ),
        "{spans:#?}"
    );
    // The handling span is a child of the record's own span.
    let first = spans
        .iter()
        .find(|s| s.name == format!("process {topic}") && s.error.is_some())
        .unwrap();
    assert_eq!(first.parent.as_deref(), Some(PARENT));
    // Its second POST was an in-place retry.
    assert_eq!(first.events, ["retry"]);
    assert_eq!(first.service, "worker");
    let replayed = spans
        .iter()
        .find(|s| s.name == format!("process {dlq}"))
        .unwrap();
    assert_eq!(replayed.service, "replay");
    // The sink saw the trace: each POST carried its own client span's id.
    let posts: Vec<_> = spans.iter().filter(|s| s.name == "POST").collect();
    let seen = sink.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for (tp, _) in &seen {
        let (trace, span) = (&tp[3..35], &tp[36..52]);
        assert_eq!(trace, TRACE, "{tp}");
        assert!(
            posts.iter().any(|p| p.span_id == span),
            "{tp} is no POST span"
        );
    }
    otlp::assert_not_recorded(&spans, "secret");
    // The dead-letter log line was written inside the record's span.
    let line = logs
        .lines()
        .find(|l| l.contains("record dead-lettered"))
        .unwrap_or_else(|| panic!("no dead-letter line in {logs}"));
    assert!(
        line.contains(&format!("\"trace_id\":\"{TRACE}\"")),
        "{line}"
    );
}

#[test]
fn a_sampler_ratio_out_of_range_is_refused_naming_the_variable() {
    let out = rebound()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("OTEL_TRACES_SAMPLER", "parentbased_traceidratio")
        .env("OTEL_TRACES_SAMPLER_ARG", "2")
        .args(["topic", "list", "--brokers", "127.0.0.1:9"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("OTEL_TRACES_SAMPLER_ARG=\"2\": a ratio from 0 to 1 is expected"),
        "{err}"
    );
}
