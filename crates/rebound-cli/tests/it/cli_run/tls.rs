//! An `https://` sink, as the README's example has it: delivered over TLS,
//! the endpoint's certificate verified against the trusted roots (the
//! system's, or those OpenSSL's `SSL_CERT_FILE` names). An endpoint whose
//! certificate is not trusted gets nothing, and its records wait.

use std::time::Duration;

use rebound_testkit::{eventually, eventually_or, Brokers};

use super::deliver::{each_once, route, topic_with};
use super::endpoint::Endpoint;
use super::process::Run;

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
