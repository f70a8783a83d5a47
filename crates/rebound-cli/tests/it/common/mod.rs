//! Shared by the CLI tests: the binary with a clean environment.
#![allow(dead_code)]

use std::process::Command;

/// The `rebound` binary without the caller's `REBOUND_*` settings (the
/// tansu path stays), logging at `level`.
pub fn rebound_with_log(level: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rebound"));
    for (k, _) in std::env::vars() {
        if k.starts_with("REBOUND_") && k != "REBOUND_TANSU_BIN" {
            c.env_remove(k);
        }
    }
    c.env("LOG_LEVEL", level);
    c
}

/// [`rebound_with_log`] at `warn`.
pub fn rebound() -> Command {
    rebound_with_log("warn")
}

/// Output bytes as text (lossy).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}
