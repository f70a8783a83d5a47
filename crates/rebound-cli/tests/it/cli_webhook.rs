//! Standard Webhooks signatures of both HTTP senders — a `rebound run`
//! route and `rebound serve`'s task deliveries — verified by an independent
//! implementation (Python's `hmac`), with ids stable across retries.

use std::time::Duration;

use rebound_testkit::{eventually, Brokers};

use crate::cli_run::deliver::{each_once, route, topic_with};
use crate::cli_run::endpoint::{Endpoint, Request};
use crate::cli_run::process::Run;
use crate::common::{file_store, post_task, python, serve};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Checks every request's signature with Python's hmac and hashlib: the key
/// is the base64 after `whsec_`, the signed text `{id}.{timestamp}.{body}`.
fn python_verifies(requests: &[Request]) {
    const VERIFY: &str = r#"
import base64, hashlib, hmac, json, sys
secret, reqs = sys.argv[1], json.loads(sys.argv[2])
key = base64.b64decode(secret[len("whsec_"):])
for msg_id, ts, body, sig in reqs:
    mac = hmac.new(key, f"{msg_id}.{ts}.{body}".encode(), hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(mac).decode()
    if not hmac.compare_digest(expected, sig):
        sys.exit(f"bad signature for {msg_id}: {sig} != {expected}")
print(len(reqs))
"#;
    let list: Vec<[&str; 4]> = requests
        .iter()
        .map(|r| {
            [
                r.header("webhook-id").expect("webhook-id"),
                r.header("webhook-timestamp").expect("webhook-timestamp"),
                r.body.as_str(),
                r.header("webhook-signature").expect("webhook-signature"),
            ]
        })
        .collect();
    let out = python(VERIFY, &[SECRET, &serde_json::to_string(&list).unwrap()]);
    assert_eq!(out.trim(), requests.len().to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_deliveries_are_signed_with_the_record_as_a_stable_id() {
    let brokers = Brokers::start().unwrap();
    let n = 20;
    let topic = topic_with(&brokers, "signed", n).await;
    let (ep, url) = Endpoint::start().await;
    ep.answer(500);
    let run = Run::start_with_env(
        brokers.bootstrap(),
        &route(
            "signed",
            &topic,
            &url,
            "webhook_secret = \"${HOOK_SECRET}\"\nretry_attempts = 1000\nbreaker_failures = 0",
        ),
        &[("HOOK_SECRET", SECRET)],
    );
    eventually(Duration::from_secs(60), "failed first attempts", || async {
        ep.count() >= 4
    })
    .await;
    ep.answer(200);
    eventually(
        Duration::from_secs(60),
        "every record delivered",
        || async { ep.delivered().len() == n },
    )
    .await;
    run.stop().await;
    each_once(&ep, n);
    let all = ep.requests.lock().unwrap().clone();
    assert!(all.len() > n, "some records were retried");
    for r in &all {
        // The record's coordinates: the same id on every attempt.
        let (p, o) = r
            .id()
            .split_once('/')
            .map(|(p, o)| (p.to_string(), o.to_string()))
            .unwrap();
        assert_eq!(
            r.header("webhook-id"),
            Some(format!("{topic}-{p}-{o}").as_str())
        );
    }
    python_verifies(&all);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_deliveries_are_signed_with_the_task_id_on_every_attempt() {
    let (ep, url) = Endpoint::start().await;
    ep.answer(500);
    let dir = tempfile::tempdir().unwrap();
    let port = rebound_testkit::free_port().unwrap();
    let child = serve(
        port,
        &file_store(dir.path()),
        &[("REBOUND_WEBHOOK_SECRET", SECRET)],
    );
    let task = serde_json::json!({
        "id": "signed-1", "source": "cli-test", "destination_type": "http",
        "destination": {"url": url}, "max_retries": 3, "base_delay": 1,
        "message_data": "{\"hello\":1}"
    });
    post_task(port, &task).await;
    eventually(
        Duration::from_secs(20),
        "a failed first attempt",
        || async { ep.count() >= 1 },
    )
    .await;
    ep.answer(200);
    eventually(Duration::from_secs(20), "the delivery", || async {
        ep.delivered().len() == 1
    })
    .await;
    drop(child);
    let all = ep.requests.lock().unwrap().clone();
    assert!(all.len() >= 2, "retried at least once");
    for r in &all {
        assert_eq!(
            r.header("webhook-id"),
            Some("signed-1"),
            "the task id on every attempt"
        );
        assert_eq!(r.body, "{\"hello\":1}");
    }
    assert_ne!(
        all[0].header("x-message-key"),
        all[1].header("x-message-key")
    );
    python_verifies(&all);
}
