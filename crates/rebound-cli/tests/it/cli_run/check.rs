//! `rebound run --check`: every error of a broken file with its line and
//! field, nothing connected to (the brokers named do not exist).

use crate::common::{rebound, text};

const KAFKA: &str = "[kafka]\nbrokers = \"127.0.0.1:1\"\n\n";

const ROUTE: &str = r#"[[route]]
name = "orders"
topic = "orders"
group = "orders-http"
http_sink = "http://127.0.0.1:1/hook"
"#;

/// `rebound run --check` on `body` (with `env`): success and the output.
fn check(body: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, body).unwrap();
    let out = rebound()
        .args(["run", "--check", path.to_str().unwrap()])
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let all = text(&out.stdout) + &text(&out.stderr);
    (
        out.status.success(),
        all.replace(path.to_str().unwrap(), "p.toml"),
    )
}

/// Insists `body` is refused with exactly these `line: field: message` errors
/// (each a prefix of its line after `p.toml:`).
fn refused(body: &str, expected: &[&str]) {
    let (ok, out) = check(body, &[]);
    assert!(!ok, "should be refused:\n{body}\n{out}");
    let lines: Vec<&str> = out
        .lines()
        .map(|l| l.trim_start_matches("error: "))
        .map(|l| {
            l.strip_prefix("p.toml:")
                .unwrap_or_else(|| panic!("{l:?} names no file"))
        })
        .map(str::trim_start)
        .collect();
    assert_eq!(lines.len(), expected.len(), "{out}");
    for (got, want) in lines.iter().zip(expected) {
        assert!(
            got.starts_with(want),
            "expected {want:?}, got {got:?}\n{out}"
        );
    }
}

#[test]
fn a_good_file_passes_without_connecting() {
    let two = format!("{KAFKA}{ROUTE}\n{}", ROUTE.replace("orders", "payments"));
    let (ok, out) = check(&two, &[]);
    assert!(ok, "{out}");
    assert!(out.contains("p.toml: OK (2 routes)"), "{out}");
    // `[kafka] connect_timeout` is a duration as the routes' are: a number
    // is seconds.
    for timeout in ["30", "\"30s\"", "\"1m\""] {
        let kafka = KAFKA.replace("\n\n", &format!("\nconnect_timeout = {timeout}\n\n"));
        let (ok, out) = check(&format!("{kafka}{ROUTE}"), &[]);
        assert!(ok, "connect_timeout = {timeout}: {out}");
    }
}

#[test]
fn every_error_of_every_route_is_reported_with_line_and_field() {
    // route[0]: a value out of range and an unknown field; route[1]: three bad
    // values, a status both dropped and dead-lettered, a duplicate name.
    let body = format!(
        "{KAFKA}{}max_in_flight = 0\nmax_inflight = 3\n\n{}http_timeout = \"soon\"\nordering = \"random\"\nretry_tiers = [\"10s\", \"often\"]\ndrop_statuses = [404]\ndlq_statuses = [404]\n",
        ROUTE,
        ROUTE.replace("topic = \"orders\"", "topic = \"no spaces\""),
    );
    refused(
        &body,
        &[
            "9: route[0].max_in_flight: must be at least 1",
            "10: route[0].max_inflight: unknown field `max_inflight`",
            "13: route[1].name: \"orders\" is the name of an earlier route",
            "14: route[1].topic: \"no spaces\" is not a valid topic name",
            "17: route[1].http_timeout: \"soon\" is not a duration",
            "18: route[1].ordering: unknown variant `random`",
            "19: route[1].retry_tiers: \"often\" is not a duration",
            "21: route[1].dlq_statuses: 404 is also in drop_statuses",
        ],
    );
}

#[test]
fn missing_settings_sections_and_syntax_errors_are_named() {
    refused(
        &format!("{KAFKA}[[route]]\nname = \"x\"\ntopic = \"t\"\n"),
        &[
            "4: route[0].group: missing",
            "4: route[0].http_sink: missing",
        ],
    );
    refused(ROUTE, &["kafka: missing section [kafka]"]);
    refused(
        &format!("[kafka]\nbrokers = \"\"\nlinger = 5\n\n{ROUTE}"),
        &[
            "2: kafka.brokers: must not be empty",
            "3: kafka.linger: unknown field",
        ],
    );
    refused(&format!("{KAFKA}{ROUTE}topic = \"again\"\n"), &["9: "]);
    refused(KAFKA, &["route: no [[route]] tables"]);
}

#[test]
fn environment_variables_are_interpolated_and_an_unset_one_is_named() {
    let body = format!("{KAFKA}{ROUTE}webhook_secret = \"${{HOOK_SECRET}}\"\n");
    refused(
        &body,
        &["9: ${HOOK_SECRET}: the environment variable is not set"],
    );
    let (ok, out) = check(&body, &[("HOOK_SECRET", "whsec_c2VjcmV0")]);
    assert!(ok, "{out}");
    // A set variable is checked like any value; the secret is never echoed.
    let (ok, out) = check(&body, &[("HOOK_SECRET", "s3cret")]);
    assert!(!ok);
    assert!(
        out.contains("9: route[0].webhook_secret: a webhook secret must start with whsec_"),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "{out}");
}
