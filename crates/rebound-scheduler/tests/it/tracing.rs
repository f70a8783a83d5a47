//! Tracing of deliveries: a task created under a `traceparent` is delivered
//! in `POST` spans of that trace, and the destination gets their
//! `traceparent`; spans exported over OTLP to an in-process receiver.

use std::time::Duration;

use crate::common::{http_task, Recorder};
use crate::delivery_http::serve;
use rebound_testkit::otlp;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_continue_the_trace_the_task_was_created_under() {
    let receiver = otlp::Receiver::start().await;
    // Before serving: the HTTP destination keeps the tracer it finds.
    let provider = otlp::install(&receiver.endpoint(), "scheduler");
    let rec = Recorder::start().await;
    rec.script(&[500]);
    let served = serve().await;
    let base = served.base.clone();

    let task = http_task("tr-1", &rec.url("hook"), 2, 1);
    let create = |traceparent: String| {
        let (base, task) = (base.clone(), task.clone());
        async move {
            reqwest::Client::new()
                .post(format!("{base}/tasks"))
                .header("traceparent", traceparent)
                .json(&task)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(create(format!("00-{TRACE}-{PARENT}-01")).await, 201);
    // The same task under another trace is the same task.
    let other = "00-11111111111111111111111111111111-2222222222222222-01";
    assert_eq!(create(other.to_string()).await, 200);
    rec.wait_for(Duration::from_secs(20), "2 deliveries", |r| r.len() >= 2)
        .await;
    served.stop.cancel();
    served.handle.await.unwrap().unwrap();
    tokio::task::spawn_blocking(move || provider.force_flush().unwrap())
        .await
        .unwrap();

    let spans = receiver
        .wait_for(Duration::from_secs(10), |s| s.len() >= 2)
        .await;
    assert_eq!(
        otlp::tree(&spans, TRACE),
        "POST [client] !\nPOST [client]\n",
        "{spans:#?}"
    );
    assert_eq!(spans.len(), 2, "{spans:#?}");
    for s in &spans {
        assert_eq!(s.parent.as_deref(), Some(PARENT));
        assert_eq!(s.attributes["server.address"], "127.0.0.1");
    }
    let codes: Vec<&str> = spans
        .iter()
        .map(|s| s.attributes["http.response.status_code"].as_str())
        .collect();
    assert_eq!(codes, ["500", "200"]);
    for (r, s) in rec.received().iter().zip(&spans) {
        assert_eq!(
            r.header("traceparent"),
            format!("00-{TRACE}-{}-01", s.span_id)
        );
    }
}
