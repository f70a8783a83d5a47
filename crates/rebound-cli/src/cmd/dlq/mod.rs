//! `rebound dlq`: inspect and replay a dead-letter topic.
//!
//! # Layout
//!
//! - `list`, `show`, `replay`: one file per subcommand.
//! - `read`: reads a topic from its start to its end without a consumer
//!   group (explicit assignment, watermarks, no commits).
//! - `entry`: a DLQ record seen through its provenance headers; how bytes are
//!   shown (UTF-8, else base64).
//! - `select`: `partition:offset` references and the grep / time filter.
//! - `table`: the tables `list` and `replay --dry-run` print.
//! - `time`: RFC 3339 output and `--since` / `--until` input.

pub(crate) mod entry;
mod list;
pub(crate) mod read;
mod replay;
mod select;
mod show;
mod table;

use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::args;
use crate::security::Security;
use read::TopicReader;

/// Flags of `rebound dlq`.
#[derive(Debug, Args)]
pub struct DlqArgs {
    #[command(subcommand)]
    command: DlqCommand,
}

#[derive(Debug, Subcommand)]
enum DlqCommand {
    /// List the records of a DLQ topic: where they came from and why they failed.
    List(list::ListArgs),
    /// Print one DLQ record with all its headers, key and value.
    Show(show::ShowArgs),
    /// Produce DLQ records again to their original topic (or to --to).
    ///
    /// Key, value and headers are kept and `rebound.replayed` is added.
    /// Exits non-zero when a record failed to send or was skipped for want
    /// of a destination; the others are still sent.
    Replay(replay::ReplayArgs),
}

/// Where the DLQ is; shared by every `dlq` subcommand.
#[derive(Debug, Clone, Args)]
pub struct Source {
    /// Kafka bootstrap servers, host:port[,host:port].
    #[arg(long, env = "REBOUND_BROKERS", value_parser = args::non_empty)]
    brokers: String,
    /// The dead-letter topic (by convention `<topic>.dlq`).
    #[arg(long, env = "REBOUND_DLQ_TOPIC", value_parser = args::topic)]
    topic: String,
    /// How long to wait for the brokers, for records while reading, and for
    /// each acknowledgement while replaying.
    #[arg(long, env = "REBOUND_DLQ_TIMEOUT", default_value = "30s", value_parser = args::duration)]
    timeout: Duration,
    /// TLS and SASL.
    #[command(flatten)]
    security: Security,
}

impl Source {
    /// Opens a reader of the DLQ topic on a blocking thread and runs `f` there.
    async fn with_reader<T, F>(&self, f: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&TopicReader) -> anyhow::Result<T> + Send + 'static,
    {
        let (brokers, topic, timeout) = (self.brokers.clone(), self.topic.clone(), self.timeout);
        let props = self.security.properties()?;
        tokio::task::spawn_blocking(move || {
            let reader = TopicReader::open(&brokers, &props, &topic, timeout)?;
            f(&reader)
        })
        .await
        .context("the reading thread failed")?
    }
}

/// Runs one `dlq` subcommand.
pub async fn run(a: DlqArgs) -> anyhow::Result<()> {
    match a.command {
        DlqCommand::List(a) => list::run(a).await,
        DlqCommand::Show(a) => show::run(a).await,
        DlqCommand::Replay(a) => replay::run(a).await,
    }
}
