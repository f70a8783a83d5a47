//! `rebound outbox` as a black box: `init --print` shows the DDL, `init`
//! creates the table, `run` relays it to a real broker (bad rows failed)
//! with /readyz and /metrics, `status --json` reports it, SIGTERM stops it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{rebound, text};
use rebound_testkit::{create_topic, database_url, free_port, read_all, unique_name, Brokers};

fn status(table: &str) -> serde_json::Value {
    let out = rebound()
        .args([
            "outbox",
            "status",
            "--json",
            "--database-url",
            &database_url(),
            "--table",
            table,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn init_print_shows_the_ddl_without_a_database() {
    let out = rebound()
        .args([
            "outbox",
            "init",
            "--print",
            "--database-url",
            "postgres://nowhere/db",
            "--table",
            "orders_outbox",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let ddl = text(&out.stdout);
    assert!(
        ddl.contains("CREATE TABLE IF NOT EXISTS \"orders_outbox\""),
        "{ddl}"
    );
    assert!(ddl.contains("CREATE CONSTRAINT TRIGGER"), "{ddl}");
    let out = rebound()
        .args(["outbox", "init", "--database-url", "mysql://h/db"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("unsupported database URL"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn run_relays_the_table_and_status_reports_it() {
    let brokers = Brokers::start().unwrap();
    let topic = unique_name("cli-outbox");
    create_topic(brokers.bootstrap(), &topic, 2).await.unwrap();
    let table = unique_name("cli_obx").replace('-', "_");
    let db = database_url();
    let out = rebound()
        .args(["outbox", "init", "--database-url", &db, "--table", &table])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let insert = format!(
        "INSERT INTO \"{table}\" (topic, key, payload, headers) VALUES \
         ('{topic}', 'a', 'one', '{{\"h\":\"1\"}}'), ('{topic}', 'a', 'two', NULL), \
         ('{topic}', 'b', 'bad', '[1]')"
    );
    let psql = std::process::Command::new("psql")
        .args([db.as_str(), "-qc", &insert])
        .output()
        .unwrap();
    assert!(psql.status.success(), "{}", text(&psql.stderr));

    let ops = format!("127.0.0.1:{}", free_port().unwrap());
    let relay = rebound()
        .args(["outbox", "run", "--database-url", &db, "--table", &table])
        .args(["--brokers", brokers.bootstrap(), "--ops-addr", &ops])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = status(&table);
        if s["pending"] == 0 && s["failed"] == 1 {
            assert!(
                s["latest_failed"][0]["error"]
                    .as_str()
                    .unwrap()
                    .contains("malformed headers"),
                "{s}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "not relayed: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let ready = reqwest::get(format!("http://{ops}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let metrics = reqwest::get(format!("http://{ops}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("rebound_outbox_published_total 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rebound_outbox_failed_total{reason=\"headers\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rebound_producer_records_delivered_total"),
        "{metrics}"
    );
    assert!(metrics.contains("rebound_outbox_active 1"), "{metrics}");

    let pid = relay.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let out = relay.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let recs = read_all(brokers.bootstrap(), &topic).unwrap();
    let values: Vec<_> = recs
        .iter()
        .map(|r| text(r.value.as_deref().unwrap()))
        .collect();
    assert_eq!(values, ["one", "two"], "key a in commit order");
    assert_eq!(recs[0].header("h"), Some("1"));
}
