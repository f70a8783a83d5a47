//! `rebound serve` as a black box: a task created over HTTP is delivered
//! to a real HTTP endpoint after its delay, and SIGTERM stops the service.

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;

type Got = Arc<Mutex<Vec<(Option<String>, String, Instant)>>>;

async fn hook(State(got): State<Got>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let key = headers
        .get("x-message-key")
        .map(|v| v.to_str().unwrap().to_string());
    got.lock().unwrap().push((
        key,
        String::from_utf8(body.to_vec()).unwrap(),
        Instant::now(),
    ));
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_delivers_a_task_after_its_delay_and_stops_on_sigterm() {
    let got: Got = Default::default();
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(got.clone());
    let hook_url = format!("{}/hook", crate::common::serve_http(app).await);

    let dir = std::env::temp_dir().join(format!("rebound-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = rebound_testkit::free_port().unwrap();
    let addr = format!("127.0.0.1:{port}");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rebound"));
    for (k, _) in std::env::vars() {
        if k.starts_with("REBOUND_") || k.starts_with("REDIS_") || k == "HTTP_ADDR" {
            cmd.env_remove(k);
        }
    }
    // Rebound's own form of the address: `:PORT` (every interface).
    let mut child = cmd
        .env("HTTP_ADDR", format!(":{port}"))
        .args(["serve", "--kafka-brokers", "127.0.0.1:1"])
        .arg("--store")
        .arg(format!("file://{}", dir.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let created = loop {
        let body = serde_json::json!({
            "id": "task-1", "source": "cli-test", "destination_type": "http",
            "destination": {"url": hook_url}, "max_retries": 2, "base_delay": 30,
            "message_data": "{\"hello\":1}"
        });
        match client
            .post(format!("http://{addr}/tasks"))
            .json(&body)
            .send()
            .await
        {
            Ok(r) => break (Instant::now(), r.status(), r.text().await.unwrap()),
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(e) => panic!("serve never answered: {e}"),
        }
    };
    assert_eq!(created.1, 201, "{}", created.2);
    assert_eq!(
        created.2,
        r#"{"message":"Task task-1 scheduled successfully"}"#
    );
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the task was never delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (key, body, at) = got.lock().unwrap()[0].clone();
    assert_eq!(body, "{\"hello\":1}");
    // As Rebound: the first delivery is made at once, as attempt 0.
    assert_eq!(key.as_deref(), Some("task-1|0"));
    assert!(
        at.duration_since(created.0) < Duration::from_secs(15),
        "the first delivery waited for base_delay (30 s)"
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exited with {status}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The SSRF guard from the environment, in the forms the library reads:
/// `REBOUND_BLOCK_PRIVATE_DESTINATIONS=1` and a list with spaces. A private
/// destination not on the list is refused (the task is dead at once); one
/// on it is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ssrf_guard_is_set_from_the_environment() {
    use crate::cli_run::endpoint::Endpoint;
    use crate::common::{file_store, post_task, serve, task, task_state};

    let (allowed, allowed_url) = Endpoint::start().await;
    let (blocked, blocked_url) = Endpoint::start().await;
    let addr = |url: &str| {
        url.trim_start_matches("http://")
            .trim_end_matches("/hook")
            .to_string()
    };
    let list = format!("127.0.0.1:9, {}", addr(&allowed_url));
    let dir = tempfile::tempdir().unwrap();
    let port = rebound_testkit::free_port().unwrap();
    let env = [
        ("REBOUND_BLOCK_PRIVATE_DESTINATIONS", "1"),
        ("REBOUND_ALLOWED_DESTINATIONS", list.as_str()),
    ];
    let _serve = serve(port, &file_store(dir.path()), &env);
    post_task(port, &task("blocked", &blocked_url)).await;
    post_task(port, &task("allowed", &allowed_url)).await;
    let ended = rebound_testkit::eventually_or(Duration::from_secs(30), || async {
        task_state(port, "blocked").await.0 == "dead"
            && task_state(port, "allowed").await.0 == "delivered"
    })
    .await;
    let states = (
        task_state(port, "blocked").await,
        task_state(port, "allowed").await,
    );
    assert!(ended, "{states:?}");
    assert_eq!((blocked.count(), allowed.count()), (0, 1));
}
