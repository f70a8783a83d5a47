//! `https://` destinations of both HTTP senders — a `rebound run` route
//! (as the README's example has it) and `rebound serve`'s tasks: delivered
//! over TLS, the endpoint's certificate verified against the trusted roots
//! (the system's, or those OpenSSL's `SSL_CERT_FILE` names). An endpoint
//! whose certificate is not trusted gets nothing. And `rebound serve` on a
//! Redis that speaks only TLS (`rediss://`), verified the same way.

use std::time::Duration;

use rebound_testkit::{eventually, eventually_or, free_port, Brokers};

use super::deliver::{each_once, route, topic_with};
use super::endpoint::Endpoint;
use super::process::Run;
use crate::common::{file_store, post_task, serve, serve_to, task, task_state};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_delivers_https_tasks_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let tls = rebound_testkit::tls::generate(dir.path()).unwrap();
    let (ep, url) = Endpoint::start_tls(&tls).await;

    // The test's authority is not among the system's roots: the attempt
    // fails, and the task (no retries) is dead with the reason.
    let (store, port) = (tempfile::tempdir().unwrap(), free_port().unwrap());
    let untrusted = serve(port, &file_store(store.path()), &[]);
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
    let _trusted = serve(port, &file_store(store.path()), &[("SSL_CERT_FILE", ca)]);
    post_task(port, &task("trusted", &url)).await;
    eventually(Duration::from_secs(30), "delivered over TLS", || async {
        task_state(port, "trusted").await.0 == "delivered"
    })
    .await;
    let got = ep.requests.lock().unwrap().clone();
    assert_eq!(got.len(), 1, "one delivery");
    assert_eq!(got[0].body, "{\"hello\":1}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_its_tasks_in_redis_over_verified_tls() {
    let dir = tempfile::tempdir().unwrap();
    let tls = rebound_testkit::tls::generate(dir.path()).unwrap();
    let redis_port = free_port().unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let redis = std::process::Command::new("redis-server")
        .args(["--port", "0", "--bind", "127.0.0.1", "--save", ""])
        .args([
            "--tls-port",
            &redis_port.to_string(),
            "--tls-auth-clients",
            "no",
        ])
        .args(["--tls-cert-file", &path(&tls.cert_pem())])
        .args(["--tls-key-file", &path(&tls.key_pem())])
        .args(["--tls-ca-cert-file", &path(&tls.ca_pem)])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server on PATH");
    let _redis = rebound_testkit::KillOnDrop(redis);
    let redis_cli = |args: &[&str]| {
        let out = std::process::Command::new("redis-cli")
            .args([
                "--tls",
                "--cacert",
                &path(&tls.ca_pem),
                "-p",
                &redis_port.to_string(),
            ])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let up = eventually_or(Duration::from_secs(10), || async {
        redis_cli(&["ping"]).contains("PONG")
    })
    .await;
    assert!(up, "redis-server with TLS did not start");
    let store = format!("rediss://127.0.0.1:{redis_port}?prefix=t");

    // The test's authority is not trusted: `serve` stops at start, naming
    // the refused certificate.
    let port = free_port().unwrap();
    let log = dir.path().join("untrusted.log");
    let stderr = std::fs::File::create(&log).unwrap();
    let mut untrusted = serve_to(port, &store, &[], stderr.into());
    let stopped = eventually_or(Duration::from_secs(30), || {
        let status = untrusted.try_wait().unwrap();
        async move { status.is_some() }
    })
    .await;
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(stopped, "still running on an untrusted Redis:\n{said}");
    assert!(!untrusted.wait().unwrap().success(), "{said}");
    assert!(said.contains("certificate verify failed"), "{said}");

    let (ep, url) = Endpoint::start().await;
    let ca = tls.ca_pem.to_str().unwrap();
    let port = free_port().unwrap();
    let _trusted = serve(port, &store, &[("SSL_CERT_FILE", ca)]);
    post_task(port, &task("over-tls", &url)).await;
    eventually(Duration::from_secs(30), "delivered", || async {
        task_state(port, "over-tls").await.0 == "delivered"
    })
    .await;
    assert_eq!(ep.count(), 1);
    assert!(
        redis_cli(&["exists", "{t}:task:over-tls"]).contains('1'),
        "the task is in the TLS Redis"
    );
}
