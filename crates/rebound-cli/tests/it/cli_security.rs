//! TLS and SASL from the command line, on Apache Kafka's SSL and
//! SASL_PLAINTEXT listeners: a real TLS handshake checked against the run's
//! CA, PLAIN and SCRAM-SHA-512 logins, and passwords that never reach the
//! output, not even at debug level or when the login fails.

use rebound_testkit::apache_kafka::{PLAIN_USER, SCRAM_USER};
use rebound_testkit::{unique_name, KafkaBroker};

use crate::common::{rebound_with_log, text};

fn run(args: &[&str], password: Option<&str>) -> std::process::Output {
    let mut c = rebound_with_log("debug");
    if let Some(p) = password {
        c.env("REBOUND_SASL_PASSWORD", p);
    }
    c.args(args).output().unwrap()
}

fn ok(args: &[&str], password: Option<&str>) -> String {
    let o = run(args, password);
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        o.status.success(),
        "rebound {args:?} failed: {}",
        text(&o.stderr)
    );
    for secret in [PLAIN_USER.1, SCRAM_USER.1] {
        assert!(
            !all.contains(secret),
            "the password {secret:?} was printed:\n{all}"
        );
    }
    text(&o.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_command_works_over_tls_and_sasl_without_printing_secrets() {
    let kafka = KafkaBroker::start().unwrap();
    let ca = kafka.tls().ca_pem.display().to_string();
    let (tls, sasl) = (
        kafka.ssl_bootstrap().to_string(),
        kafka.sasl_bootstrap().to_string(),
    );
    let topic = unique_name("secured");

    // Admin over TLS.
    let tls_flags = ["--brokers", &tls, "--ssl-ca-location", &ca];
    let create: Vec<&str> = ["topic", "create", "--topic", &topic, "--partitions", "2"]
        .into_iter()
        .chain(tls_flags)
        .collect();
    ok(&create, None);

    // Produce over SASL/PLAIN (password from the environment).
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "k1\tone\nk2\ttwo\nk3\tthree\n").unwrap();
    let input = input.to_str().unwrap();
    ok(
        &[
            "produce",
            "--brokers",
            &sasl,
            "--topic",
            &topic,
            "--sasl-username",
            PLAIN_USER.0,
            "--quiet",
            input,
        ],
        Some(PLAIN_USER.1),
    );

    // Consume over SASL/SCRAM-SHA-512, as a group, so lag has a commit to show.
    let group = unique_name("secure-group");
    let scram = [
        "--brokers",
        &sasl,
        "--sasl-mechanism",
        "SCRAM-SHA-512",
        "--sasl-username",
        SCRAM_USER.0,
    ];
    let consume: Vec<&str> = [
        "consume", "--topic", &topic, "--group", &group, "--format", "json", "--quiet",
    ]
    .into_iter()
    .chain(scram)
    .collect();
    let out = ok(&consume, Some(SCRAM_USER.1));
    let mut values: Vec<String> = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["value"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    values.sort();
    assert_eq!(values, ["one", "three", "two"]);

    // Lag over TLS: the group is caught up.
    let lag: Vec<&str> = [
        "lag", "--group", &group, "--topic", &topic, "--format", "json",
    ]
    .into_iter()
    .chain(tls_flags)
    .collect();
    let total: i64 = ok(&lag, None)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["lag"]
                .as_i64()
                .unwrap()
        })
        .sum();
    assert_eq!(total, 0);

    // Every setting from the environment alone: REBOUND_KAFKA_CONFIG, its
    // properties separated by `;`, carries the whole SASL login.
    let config = format!(
        "security.protocol=SASL_PLAINTEXT;sasl.mechanism=PLAIN;sasl.username={};sasl.password={}",
        PLAIN_USER.0, PLAIN_USER.1
    );
    let o = rebound_with_log("debug")
        .env("REBOUND_KAFKA_CONFIG", &config)
        .args(["topic", "list", "--brokers", &sasl])
        .output()
        .unwrap();
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{all}");
    assert!(text(&o.stdout).contains(&topic), "{all}");
    assert!(
        !all.contains(PLAIN_USER.1),
        "the password was printed:\n{all}"
    );

    // A wrong password: a clear authentication error, and no password shown.
    let wrong = "not-the-password-9431";
    let list: Vec<&str> = ["dlq", "list", "--topic", &topic, "--timeout", "10s"]
        .into_iter()
        .chain(scram)
        .collect();
    let o = run(&list, Some(wrong));
    assert!(!o.status.success());
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(
        all.contains("Authentication failed") || all.contains("Invalid username or password"),
        "{all}"
    );
    assert!(
        !all.contains(wrong),
        "the wrong password was printed:\n{all}"
    );
}

#[test]
fn missing_sasl_or_tls_settings_are_named_before_connecting() {
    let o = run(
        &[
            "topic",
            "list",
            "--brokers",
            "127.0.0.1:1",
            "--sasl-username",
            "bob",
        ],
        None,
    );
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("--sasl-password"),
        "{}",
        text(&o.stderr)
    );
    let o = run(
        &[
            "lag",
            "--brokers",
            "127.0.0.1:1",
            "--ssl-ca-location",
            "/no/ca.pem",
        ],
        None,
    );
    assert!(
        text(&o.stderr).contains("--ssl-ca-location /no/ca.pem: no such file"),
        "{}",
        text(&o.stderr)
    );
}
