//! Logs on stderr: `--log-format text|json` for every command, colours only
//! when stderr is a terminal (a redirected `2>file` gets plain text).

use std::io::IsTerminal;

use anyhow::Context;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`).
    Json,
}

/// Installs the global subscriber. An unreadable filter is an error naming
/// the flag, not a silent fallback.
pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("--log-level {filter:?} is not a valid filter"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

/// Reports the error a command ended with: `error: ...` with each cause
/// once, or, in JSON, one more line with `level` `ERROR` and the `error`.
/// Written directly, so no `--log-level` filter can hide it.
pub fn fatal(e: &anyhow::Error, format: LogFormat) {
    let chain = rebound_core::DisplayChain(e.as_ref()).to_string();
    match format {
        LogFormat::Text => eprintln!("error: {chain}"),
        LogFormat::Json => eprintln!(
            "{}",
            serde_json::json!({
                "timestamp": jiff::Timestamp::now().to_string(),
                "level": "ERROR",
                "fields": {"message": "command failed", "error": chain},
                "target": "rebound",
            })
        ),
    }
}
