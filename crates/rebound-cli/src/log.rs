//! Logs on stderr: `--log-format text|json` for every command, colours only
//! when stderr is a terminal (a redirected `2>file` gets plain text).

use std::io::IsTerminal;

use anyhow::Context;
use tracing_subscriber::fmt::format::{Format, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields`,
    /// and `trace_id` and `span_id` when the line is written inside a span).
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
        // `json()` first: its field formatter goes with the JSON lines.
        LogFormat::Json => builder
            .json()
            .event_format(WithTraceId(Format::default().json()))
            .init(),
    }
    Ok(())
}

/// The JSON line format with the current span's trace and span ids.
struct WithTraceId<F>(F);

impl<S, N, F> FormatEvent<S, N> for WithTraceId<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some((trace_id, span_id)) = rebound_core::trace::current_ids() else {
            return self.0.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(
                writer,
                "{{\"trace_id\":\"{trace_id}\",\"span_id\":\"{span_id}\",{rest}"
            ),
            None => writer.write_str(&line),
        }
    }
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
