//! `rebound outbox`: create the outbox table, relay it to Kafka, show its state.
//!
//! - `init`: creates the table (idempotent); `--print` shows the DDL.
//! - `run`: the relay, with /healthz, /readyz and /metrics.
//! - `status`: pending rows, oldest pending age, failed rows, the active relay.

mod init;
mod run;
mod status;

use clap::{Args, Subcommand};
use rebound_outbox::TableName;

/// `rebound outbox …`.
#[derive(Debug, Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    command: OutboxCommand,
}

#[derive(Debug, Subcommand)]
enum OutboxCommand {
    /// Create the outbox table and the relay's objects (idempotent).
    Init(init::InitArgs),
    /// Relay the table to Kafka (one active instance per table; others wait).
    Run(Box<run::RunArgs>),
    /// Show the table's pending and failed rows and the active relay.
    Status(status::StatusArgs),
}

/// The database and table flags every outbox command takes.
#[derive(Debug, Args)]
pub struct TableArgs {
    /// postgres://USER:PASS@HOST/DB or sqlite://PATH.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// The outbox table.
    #[arg(long, env = "REBOUND_OUTBOX_TABLE", default_value = rebound_outbox::DEFAULT_TABLE,
          value_parser = table_name)]
    table: TableName,
}

fn table_name(s: &str) -> Result<TableName, String> {
    TableName::new(s).map_err(|e| e.to_string())
}

/// Runs `rebound outbox …`.
pub async fn run(a: OutboxArgs) -> anyhow::Result<()> {
    match a.command {
        OutboxCommand::Init(a) => init::run(a).await,
        OutboxCommand::Run(a) => run::run(*a).await,
        OutboxCommand::Status(a) => status::run(a).await,
    }
}
