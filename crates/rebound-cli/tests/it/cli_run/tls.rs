//! `https://` destinations of both HTTP senders — a `rebound run` route
//! (as the README's example has it) and `rebound serve`'s tasks: delivered
//! over TLS, the endpoint's certificate verified against the trusted roots
//! (the system's, or those OpenSSL's `SSL_CERT_FILE` names). An endpoint
//! whose certificate is not trusted gets nothing.

use std::time::Duration;

use rebound_testkit::{eventually, eventually_or, free_port, Brokers};

use super::deliver::{each_once, route, topic_with};
use super::endpoint::Endpoint;
use super::process::Run;
use crate::common::{post_task, serve};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_sink_gets_every_record_once_over_verified_tls() {
    let brokers = Brokers::start().unwrap();
    let n = 40;
    let topic = topic_with(&brokers, "tls", n).await;
    let dir = tempfile::tempdir().unwrap();
    let tls = rebound_testkit::tls::generate(dir.path()).unwrap();
    let (ep, url) = Endpoint::start_tls(&tls).await;
    // Retried in place: a refused certificate commits no record.
    let routes = route("tls", &topic, &url, "retry_attempts = 1000000");

    // The test's authority is not among the system's roots.
    let untrusted = Run::start(brokers.bootstrap(), &routes);
    let refused = eventually_or(Duration::from_secs(60), || async {
        untrusted.log().contains("certificate verify failed")
    })
    .await;
    assert!(
        refused,
        "the refused certificate is logged:\n{}",
        untrusted.log()
    );
    assert_eq!(ep.count(), 0, "a request got past the refused handshake");
    untrusted.stop().await;

    let ca = tls.ca_pem.to_str().unwrap();
    let run = Run::start_with_env(brokers.bootstrap(), &routes, &[("SSL_CERT_FILE", ca)]);
    eventually(
        Duration::from_secs(60),
        "every record delivered over TLS",
        || async { ep.delivered().len() == n },
    )
    .await;
    let log = run.stop().await;
    assert!(!log.contains("certificate verify failed"), "{log}");
    each_once(&ep, n);
}

/// A task to `url`, delivered once (no retry).
fn task(id: &str, url: &str) -> serde_json::Value {
    serde_json::json!({
        "id": id, "source": "cli-test", "destination_type": "http",
        "destination": {"url": url}, "max_retries": 0, "base_delay": 1,
        "message_data": "{\"hello\":1}"
    })
}

/// The task's state and last error, as `GET /tasks/{id}` shows them.
async fn task_state(port: u16, id: &str) -> (String, String) {
    let url = format!("http://127.0.0.1:{port}/tasks/{id}");
    let Ok(r) = reqwest::get(url).await else {
        return Default::default();
    };
    let t: serde_json::Value = r.json().await.unwrap_or_default();
    let field = |f: &str| t[f].as_str().unwrap_or_default().to_string();
    (field("state"), field("last_error"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_delivers_https_tasks_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let tls = rebound_testkit::tls::generate(dir.path()).unwrap();
    let (ep, url) = Endpoint::start_tls(&tls).await;

    // The test's authority is not among the system's roots: the attempt
    // fails, and the task (no retries) is dead with the reason.
    let (store, port) = (tempfile::tempdir().unwrap(), free_port().unwrap());
    let untrusted = serve(port, store.path(), &[]);
    post_task(port, &task("untrusted", &url)).await;
    let dead = eventually_or(Duration::from_secs(30), || async {
        task_state(port, "untrusted").await.0 == "dead"
    })
    .await;
    let (state, last_error) = task_state(port, "untrusted").await;
    assert!(dead, "state {state}, last error {last_error}");
    assert!(
        last_error.contains("certificate verify failed"),
        "{last_error}"
    );
    assert_eq!(ep.count(), 0, "a request got past the refused handshake");
    drop(untrusted);

    let ca = tls.ca_pem.to_str().unwrap();
    let (store, port) = (tempfile::tempdir().unwrap(), free_port().unwrap());
    let _trusted = serve(port, store.path(), &[("SSL_CERT_FILE", ca)]);
    post_task(port, &task("trusted", &url)).await;
    eventually(Duration::from_secs(30), "delivered over TLS", || async {
        task_state(port, "trusted").await.0 == "delivered"
    })
    .await;
    let got = ep.requests.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one delivery");
    assert_eq!(got[0].body, "{\"hello\":1}");
}
