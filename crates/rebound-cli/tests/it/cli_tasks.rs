//! `rebound tasks` against a real `rebound serve` API on 127.0.0.1 with a
//! bearer token: create (one and a batch), list, get, cancel, and errors
//! that name the status and never the token.

use std::io::Write;
use std::process::{Output, Stdio};

use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::common::{rebound, text};

const TOKEN: &str = "s3cret-token-value";

/// A task that stays scheduled for an hour.
fn task(id: &str) -> Value {
    json!({"id": id, "source": "cli", "destination_type": "http",
           "destination": {"url": "http://127.0.0.1:9/hook"},
           "max_retries": 1, "base_delay": 60, "first_delay": 3600,
           "client_id": "acme", "message_data": "{}"})
}

fn tasks(base: &str, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = rebound()
        .args(["tasks", "--url", base, "--auth-token", token])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn json_lines(o: &Output) -> Vec<Value> {
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_are_created_listed_shown_and_cancelled_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let config = rebound_scheduler::ServeConfig {
        store_url: format!("file://{}", dir.path().display()),
        auth_token: Some(TOKEN.into()),
        ..rebound_scheduler::ServeConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let served = tokio::spawn(rebound_scheduler::serve::serve_on(
        config,
        listener,
        stop.clone(),
    ));
    let b = base.clone();
    let run = move |args: Vec<&'static str>, stdin: Option<String>| {
        let b = b.clone();
        tokio::task::spawn_blocking(move || tasks(&b, TOKEN, &args, stdin.as_deref()))
    };

    let one = run(vec!["create"], Some(task("t-1").to_string()))
        .await
        .unwrap();
    assert_eq!(
        text(&one.stdout).trim(),
        "Task t-1 scheduled successfully",
        "{}",
        text(&one.stderr)
    );
    let batch = json!([task("t-2"), task("t-3")]).to_string();
    let created = json_lines(
        &run(vec!["create", "--format", "json"], Some(batch))
            .await
            .unwrap(),
    );
    assert_eq!(created[0]["created"], 2, "{created:?}");

    let all = json_lines(&run(vec!["list", "--format", "json"], None).await.unwrap());
    let mut ids: Vec<&str> = all.iter().map(|t| t["id"].as_str().unwrap()).collect();
    ids.sort();
    assert_eq!(ids, ["t-1", "t-2", "t-3"]);
    assert!(all
        .iter()
        .all(|t| t["state"] == "scheduled" && t["client_id"] == "acme"));
    let two = json_lines(
        &run(vec!["list", "--limit", "2", "--format", "json"], None)
            .await
            .unwrap(),
    );
    assert_eq!(two.len(), 2);

    let cancelled = run(vec!["cancel", "t-1"], None).await.unwrap();
    assert_eq!(text(&cancelled.stdout).trim(), "Task t-1 cancelled");
    let got = json_lines(
        &run(vec!["get", "t-1", "--format", "json"], None)
            .await
            .unwrap(),
    );
    assert_eq!(
        (&got[0]["id"], &got[0]["state"]),
        (&json!("t-1"), &json!("cancelled"))
    );
    let scheduled = json_lines(
        &run(
            vec!["list", "--state", "scheduled", "--format", "json"],
            None,
        )
        .await
        .unwrap(),
    );
    assert_eq!(scheduled.len(), 2);

    let again = run(vec!["cancel", "t-1"], None).await.unwrap();
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("409 CONFLICT: task t-1 is already cancelled"),
        "{}",
        text(&again.stderr)
    );
    let missing = run(vec!["get", "nope"], None).await.unwrap();
    assert!(
        text(&missing.stderr).contains("404 NOT_FOUND: task nope not found"),
        "{}",
        text(&missing.stderr)
    );

    let b = base.clone();
    let denied = tokio::task::spawn_blocking(move || tasks(&b, "wrong-token", &["list"], None))
        .await
        .unwrap();
    assert!(!denied.status.success());
    let stderr = text(&denied.stderr);
    assert!(stderr.contains("401 UNAUTHORIZED"), "{stderr}");
    assert!(
        !stderr.contains("wrong-token") && !stderr.contains(TOKEN),
        "a token in {stderr}"
    );

    // A batch with a refused task: the others are created, the command
    // fails naming the refused one.
    let mut bad = task("t-bad");
    bad["max_retries"] = json!(1000);
    let batch = json!([task("t-4"), bad]).to_string();
    let partly = run(vec!["create"], Some(batch)).await.unwrap();
    assert!(!partly.status.success(), "{}", text(&partly.stdout));
    let err = text(&partly.stderr);
    assert!(
        err.contains("1 of 2 tasks refused: t-bad (VALIDATION_ERROR"),
        "{err}"
    );
    let got = json_lines(
        &run(vec!["get", "t-4", "--format", "json"], None)
            .await
            .unwrap(),
    );
    assert_eq!(got[0]["state"], "scheduled");

    stop.cancel();
    served.await.unwrap().unwrap();
}
