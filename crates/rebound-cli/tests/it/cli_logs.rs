//! Logs of every command: `--log-format json` gives one JSON object per
//! line (the fatal error included), text logs carry no colour codes when
//! stderr is not a terminal, and a bad `--log-level` is named.

use std::process::Output;

use crate::common::rebound_with_log;

fn rebound(args: &[&str]) -> Output {
    rebound_with_log("debug").args(args).output().unwrap()
}

/// `dlq list` against a port nothing listens on: debug logs, then an error.
const UNREACHABLE: [&str; 8] = [
    "dlq",
    "list",
    "--brokers",
    "127.0.0.1:1",
    "--topic",
    "t.dlq",
    "--timeout",
    "1s",
];

#[test]
fn json_logs_are_one_object_per_line_ending_with_the_error() {
    let mut args = UNREACHABLE.to_vec();
    args.extend(["--log-format", "json"]);
    let out = rebound(&args);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(lines.len() >= 2, "{stderr}");
    assert!(lines
        .iter()
        .all(|l| l["level"].is_string() && l["timestamp"].is_string()));
    let last = lines.last().unwrap();
    assert_eq!(last["level"], "ERROR");
    let error = last["fields"]["error"].as_str().unwrap();
    assert!(
        error.starts_with("could not reach Kafka brokers at 127.0.0.1:1"),
        "{error}"
    );
}

#[test]
fn text_logs_to_a_pipe_carry_no_colour_codes() {
    let out = rebound(&UNREACHABLE);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("DEBUG"), "debug lines expected: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "escape codes in {stderr:?}");
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("error: could not reach"),
        "{stderr}"
    );
}

#[test]
fn a_bad_log_filter_is_named() {
    let out = crate::common::rebound()
        .env_remove("LOG_LEVEL")
        .args(["dlq", "list", "--brokers", "127.0.0.1:1", "--topic", "t"])
        .args(["--log-level", "rebound=loud"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: --log-level \"rebound=loud\" is not a valid filter"),
        "{stderr}"
    );
}

#[test]
fn no_log_filter_hides_the_fatal_error() {
    let out = crate::common::rebound()
        .env("LOG_LEVEL", "rebound_worker=debug")
        .args(UNREACHABLE)
        .args(["--log-format", "json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    let last: serde_json::Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "ERROR", "{stderr}");
    assert!(
        last["fields"]["error"]
            .as_str()
            .unwrap()
            .contains("could not reach"),
        "{stderr}"
    );
}
