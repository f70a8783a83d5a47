//! The SSRF guard on real servers: with `block_private_destinations`, a
//! task to a loopback or private address — written as an IP, as a name
//! (`localhost`), or reached through a redirect — is refused without a
//! request reaching it and goes to its dead destination at once, not
//! retried. The dead destination and the redirector are exempted by exact
//! address (`REBOUND_ALLOWED_DESTINATIONS`).

use std::time::Duration;

use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::routing::any;
use axum::Router;
use rebound_scheduler::deliver::guard::Guard;
use rebound_scheduler::deliver::HttpOptions;
use rebound_scheduler::envelope::DeadLetter;
use serde_json::Value;

use crate::common::{http_task, Recorder};
use crate::delivery_http::{post, serve_with};

/// A server answering `/?to=URL` with a 307 to `URL`; its address.
async fn redirector() -> std::net::SocketAddr {
    async fn go(
        Query(q): Query<std::collections::HashMap<String, String>>,
    ) -> impl axum::response::IntoResponse {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, q["to"].clone())],
        )
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/", any(go));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn task_state(base: &str, id: &str) -> Value {
    reqwest::get(format!("{base}/tasks/{id}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_destinations_are_refused_by_address_name_and_redirect_and_dead_lettered_at_once() {
    let target = Recorder::start().await;
    let dead = Recorder::start().await;
    let hop = redirector().await;
    let s = serve_with(HttpOptions {
        secret: None,
        guard: Some(Guard {
            allow: vec![dead.addr, hop],
        }),
    })
    .await;
    let port = target.addr.port();
    let via = |to: &str| {
        format!(
            "http://{hop}/?to={}",
            url::form_urlencoded::byte_serialize(to.as_bytes()).collect::<String>()
        )
    };
    let cases = [
        ("loopback-ip", target.url("hook"), "loopback"),
        (
            "private-ip",
            "http://10.255.255.1:9/hook".to_string(),
            "private",
        ),
        (
            "link-local-ip",
            "http://169.254.169.254/latest".to_string(),
            "link-local",
        ),
        (
            "ipv6-loopback",
            format!("http://[::1]:{port}/hook"),
            "loopback",
        ),
        ("name", format!("http://localhost:{port}/hook"), "loopback"),
        ("redirect-ip", via(&target.url("hook")), "loopback"),
        (
            "redirect-name",
            via(&format!("http://localhost:{port}/hook")),
            "loopback",
        ),
        (
            "redirect-private",
            via("http://192.168.0.1/hook"),
            "private",
        ),
    ];
    for (id, url, _) in &cases {
        // Five retries allowed: a refusal must not use them.
        let mut task = http_task(id, url, 5, 1);
        task["dead_destination"] = serde_json::json!({"url": dead.url("dead")});
        assert_eq!(post(&s.base, &task).await.0, 201, "{id}");
    }
    dead.wait_for(Duration::from_secs(20), "every task dead-lettered", |r| {
        r.len() >= cases.len()
    })
    .await;
    assert!(
        target.received().is_empty(),
        "no request reached the private endpoint"
    );
    for (id, _, why) in &cases {
        let env: DeadLetter = dead
            .received()
            .iter()
            .map(|r| serde_json::from_slice::<DeadLetter>(&r.body).unwrap())
            .find(|e| e.id == *id)
            .unwrap_or_else(|| panic!("{id} not dead-lettered"));
        assert_eq!(env.attempts, 1, "{id}: refused once, not retried");
        assert!(
            env.error.contains(&format!("{why} address")) && env.error.contains("refused"),
            "{id}: {}",
            env.error
        );
        let state = task_state(&s.base, id).await;
        assert_eq!(state["state"], "dead", "{id}: {state}");
    }
    s.stop.cancel();
    s.handle.await.unwrap().unwrap();
}

#[tokio::test]
async fn without_the_guard_a_loopback_destination_is_delivered() {
    let target = Recorder::start().await;
    let s = serve_with(HttpOptions::default()).await;
    assert_eq!(
        post(&s.base, &http_task("open", &target.url("hook"), 0, 1))
            .await
            .0,
        201
    );
    target
        .wait_for(Duration::from_secs(20), "the delivery", |r| r.len() == 1)
        .await;
    s.stop.cancel();
    s.handle.await.unwrap().unwrap();
}
