//! `rebound produce`: send records to a topic from lines of a file or stdin.
//!
//! Without `--skip-bad` the whole input is read and checked first: if any
//! line is bad, every bad line is reported with its number and nothing is
//! sent. With `--skip-bad` lines are sent as they are read; bad ones are
//! reported, counted as skipped and not sent. Either way the exit code is
//! non-zero when a line was bad or a record failed to send.
//!
//! # Layout
//!
//! - `parse`: the line formats (`kv`, `value`, `json`).
//! - `input`: reading lines, numbering them, `--header`s.
//! - `send`: in-flight sends, `--rate`, the progress bar, the summary.

mod input;
mod parse;
mod send;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rebound_core::Header;
use rebound_producer::Producer;
use rebound_worker::reader::{spans, ReaderError};
use tokio::sync::mpsc;

use crate::args;
use crate::security::Security;
use input::{Line, Shape};
use parse::InputFormat;

/// Flags of `rebound produce`.
#[derive(Debug, Args)]
pub struct ProduceArgs {
    /// Kafka bootstrap servers, host:port[,host:port].
    #[arg(long, env = "REBOUND_BROKERS", value_parser = args::non_empty)]
    brokers: String,
    /// The topic to send to (it must exist, unless --create-topic).
    #[arg(long, env = "REBOUND_TOPIC", value_parser = args::topic)]
    topic: String,
    /// Create the topic first when it does not exist (with --partitions).
    #[arg(long)]
    create_topic: bool,
    /// Partition count of a topic --create-topic creates.
    #[arg(long, default_value_t = 1, requires = "create_topic",
          value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
    /// Input file; `-` or nothing reads stdin.
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
    /// Line format: `kv` is KEY<TAB>VALUE (empty key: none), `value` is the
    /// whole line as the value, `json` is one object per line with `key`,
    /// `value` (JSON, sent as written; a string is sent as its text; null:
    /// tombstone),
    /// `headers` ({"name": "value"}), `partition`, `timestamp` (epoch ms).
    #[arg(long, env = "REBOUND_PRODUCE_FORMAT", value_enum, default_value = "kv")]
    format: InputFormat,
    /// A header added to every record: NAME=VALUE (repeatable).
    #[arg(long = "header", value_name = "NAME=VALUE", value_parser = input::header_arg)]
    headers: Vec<Header>,
    /// At most this many records per second.
    #[arg(long, env = "REBOUND_PRODUCE_RATE", value_parser = rate)]
    rate: Option<f64>,
    /// Report bad lines, skip them and send the rest (exit code still
    /// non-zero). Without it, a bad line means nothing is sent.
    #[arg(long, env = "REBOUND_PRODUCE_SKIP_BAD")]
    skip_bad: bool,
    /// No progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long, short)]
    quiet: bool,
    /// How long to wait for the brokers, and for each acknowledgement.
    #[arg(long, env = "REBOUND_PRODUCE_TIMEOUT", default_value = "30s", value_parser = args::duration)]
    timeout: Duration,
    /// TLS and SASL.
    #[command(flatten)]
    security: Security,
}

/// The slowest `--rate`: one record a day. Below it the pacing delay of a
/// record (its number / rate) does not fit a `Duration` for long.
const MIN_RATE: f64 = 1.0 / 86_400.0;

fn rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r >= MIN_RATE => Ok(r),
        _ => Err(format!(
            "{s:?} is not a number of records per second of at least {MIN_RATE:.6} (one a day)"
        )),
    }
}

/// Checks the topic, reads the input and sends it.
pub async fn run(a: ProduceArgs) -> anyhow::Result<()> {
    let input = input::open(a.file.as_ref())?;
    let props = a.security.properties()?;
    if a.create_topic {
        rebound_producer::admin::ensure_topic(&a.brokers, &props, &a.topic, a.partitions).await?;
    }
    let partitions = {
        let cfg =
            crate::security::reader_config(&a.brokers, &a.topic, &props).with_timeout(a.timeout);
        match tokio::task::spawn_blocking(move || spans(&cfg))
            .await
            .context("the metadata thread failed")?
        {
            Ok(spans) => spans.len(),
            Err(e @ ReaderError::UnknownTopic { .. }) => anyhow::bail!(
                "{e} (create it with --create-topic [--partitions N], or rebound topic create)"
            ),
            Err(e) => return Err(e.into()),
        }
    };
    let shape = Shape {
        topic: a.topic.clone(),
        format: a.format,
        headers: a.headers.clone(),
        partitions,
    };
    let (tx, mut rx) = mpsc::channel::<Line>(4096);
    let reading = tokio::task::spawn_blocking(move || input::read_lines(input, &shape, &tx));
    let producer = Producer::new(
        &crate::security::producer_config(&a.brokers, &props).with_delivery_timeout(a.timeout),
    )?;
    let summary = if a.skip_bad {
        let bar = bar(a.quiet, None, &a.topic);
        let lines = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
        let s = send::send_all(&producer, lines, a.rate, &bar).await;
        bar.finish_and_clear();
        reading.await.context("the input thread failed")??;
        s
    } else {
        let mut lines = Vec::new();
        while let Some(line) = rx.recv().await {
            lines.push(line);
        }
        reading.await.context("the input thread failed")??;
        let bad: Vec<&Line> = lines.iter().filter(|l| l.record.is_err()).collect();
        if !bad.is_empty() {
            for l in &bad {
                if let Err(why) = &l.record {
                    eprintln!("line {}: {why}", l.number);
                }
            }
            bail!(
                "{} of {} lines are bad; nothing sent (--skip-bad sends the good ones)",
                bad.len(),
                lines.len()
            );
        }
        let bar = bar(a.quiet, Some(lines.len() as u64), &a.topic);
        let s = send::send_all(&producer, futures::stream::iter(lines), a.rate, &bar).await;
        bar.finish_and_clear();
        s
    };
    println!(
        "sent {}, failed {}, skipped {}",
        summary.sent, summary.failed, summary.skipped
    );
    if summary.failed > 0 || summary.skipped > 0 {
        bail!(
            "{} records failed to send and {} bad lines were skipped",
            summary.failed,
            summary.skipped
        );
    }
    Ok(())
}

fn bar(quiet: bool, len: Option<u64>, topic: &str) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let (bar, template) = match len {
        Some(n) => (
            ProgressBar::new(n),
            "producing to {msg} [{bar:40}] {pos}/{len} ({per_sec}, {elapsed})",
        ),
        None => (
            ProgressBar::new_spinner(),
            "producing to {msg} {spinner} {pos} sent ({per_sec}, {elapsed})",
        ),
    };
    bar.set_style(
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(topic.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_positive_and_at_least_one_a_day() {
        assert_eq!(rate("200"), Ok(200.0));
        assert_eq!(rate("0.5"), Ok(0.5));
        assert!(rate("0.0001").is_ok());
        for bad in ["0", "-1", "nan", "inf", "fast", "1e-30", "0.00001"] {
            let e = rate(bad).unwrap_err();
            assert!(e.contains("records per second"), "{bad}: {e}");
        }
        // What the pacing computes for a late record at the slowest rate fits.
        let _ = Duration::from_secs_f64(1e9 / MIN_RATE);
    }
}
