//! `rebound consume`: print a topic's records.
//!
//! Without `--group` partitions are assigned explicitly and nothing is
//! committed; with it, the command is a member of that group, starts where
//! the group left off and commits what it has printed. Without `--follow`
//! it stops at the end of each partition as of starting.
//!
//! # Layout
//!
//! - `from`: `--from` values.
//! - `output`: the `pretty` and `json` formats.
//! - `pump`: the loop that prints (and commits).

mod from;
mod output;
mod pump;

use std::io::IsTerminal;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rebound_worker::reader::{GroupReader, PartitionReader, StartAt};
use tokio_util::sync::CancellationToken;

use crate::args;
use crate::security::Security;
use output::OutputFormat;
use pump::{Ended, Options, Source};

/// Flags of `rebound consume`.
#[derive(Debug, Args)]
pub struct ConsumeArgs {
    /// Kafka bootstrap servers, host:port[,host:port].
    #[arg(long, env = "REBOUND_BROKERS", value_parser = args::non_empty)]
    brokers: String,
    /// The topic to read.
    #[arg(long, env = "REBOUND_TOPIC", value_parser = args::topic)]
    topic: String,
    /// `pretty` for people, `json` for scripts (one object per line).
    #[arg(
        long,
        env = "REBOUND_CONSUME_FORMAT",
        value_enum,
        default_value = "pretty"
    )]
    format: OutputFormat,
    /// Where to start: beginning, end, an offset (42), an RFC 3339 time
    /// (2024-05-01T12:00:00Z) or epoch ms after @ (@1714564800000). With
    /// --group: only for partitions the group has not committed.
    #[arg(long, env = "REBOUND_CONSUME_FROM", default_value = "beginning",
          value_parser = from::start_at)]
    from: StartAt,
    /// Read only this partition (not with --group).
    #[arg(long, env = "REBOUND_CONSUME_PARTITION", conflicts_with = "group",
          value_parser = clap::value_parser!(i32).range(0..))]
    partition: Option<i32>,
    /// Consume as a member of this consumer group and commit what was printed.
    #[arg(long, env = "REBOUND_CONSUME_GROUP", value_parser = args::non_empty)]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(long, env = "REBOUND_CONSUME_COUNT",
          value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Keep waiting for new records (until Ctrl-C) instead of stopping at
    /// the end as of starting.
    #[arg(long, short)]
    follow: bool,
    /// Read only committed transactional records (isolation.level=read_committed).
    #[arg(long, env = "REBOUND_CONSUME_READ_COMMITTED")]
    read_committed: bool,
    /// How long to wait for the brokers, and for records before the end.
    #[arg(long, env = "REBOUND_CONSUME_TIMEOUT", default_value = "30s", value_parser = args::duration)]
    timeout: Duration,
    /// Session timeout of the group membership (with --group).
    #[arg(long, env = "REBOUND_SESSION_TIMEOUT", default_value = "10s", value_parser = args::duration)]
    session_timeout: Duration,
    /// No progress bar (it is shown only when stdout is redirected and
    /// stderr is a terminal).
    #[arg(long, short)]
    quiet: bool,
    /// TLS and SASL.
    #[command(flatten)]
    security: Security,
}

/// Opens the reader and prints until the end, --count, or a signal.
pub async fn run(a: ConsumeArgs) -> anyhow::Result<()> {
    let mut cfg = crate::security::reader_config(&a.brokers, &a.topic, &a.security.properties()?)
        .with_start(a.from)
        .with_follow(a.follow)
        .with_read_committed(a.read_committed)
        .with_timeout(a.timeout)
        .with_session_timeout(a.session_timeout);
    if let Some(p) = a.partition {
        cfg = cfg.with_partitions([p]);
    }
    let cancel = CancellationToken::new();
    crate::shutdown::on_signals(cancel.clone());
    let opts = Options {
        format: a.format,
        count: a.count,
        commit_every: Duration::from_secs(1),
    };
    let show_bar = !a.quiet && !std::io::stdout().is_terminal();
    let group = a.group.clone();
    let stop = cancel.clone();
    let (printed, ended) = tokio::task::spawn_blocking(move || {
        let (source, bar) = match &group {
            Some(g) => (
                Source::Group(GroupReader::subscribe(&cfg, g)?),
                bar(show_bar, None, cfg.topic()),
            ),
            None => {
                let r = PartitionReader::open(&cfg)?;
                let len = (!cfg.follows()).then(|| r.remaining());
                (Source::Manual(r), bar(show_bar, len, cfg.topic()))
            }
        };
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let result = pump::pump(source, &mut out, &opts, &stop, &bar);
        bar.finish_and_clear();
        result
    })
    .await
    .context("the reading thread failed")??;
    cancel.cancel();
    let committed = if a.group.is_some() { ", committed" } else { "" };
    let why = match ended {
        Ended::End => "end reached",
        Ended::Count => "count reached",
        Ended::Signal => "interrupted",
        Ended::OutputClosed => "output closed",
    };
    tracing::info!(records = printed, "{why}{committed}");
    Ok(())
}

fn bar(show: bool, len: Option<u64>, topic: &str) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            ProgressBar::new(n),
            "consuming {msg} [{bar:40}] {pos}/~{len} ({per_sec}, {elapsed})",
        ),
        None => (
            ProgressBar::new_spinner(),
            "consuming {msg} {spinner} {pos} records ({per_sec}, {elapsed})",
        ),
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(topic.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
