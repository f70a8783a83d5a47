//! The `rebound` binary: one CLI that runs and operates rebound.
//!
//! # Layout
//!
//! - `cmd/`: one module per subcommand (`demo`, `worker`, `run/`, `dlq/`, `serve`,
//!   `produce/`, `consume/`, `topic`, `lag/`, `group/`, `tasks`, `outbox/`).
//! - `route`: one Kafka → HTTP route: its settings (the flags of `worker`, a
//!   `[[route]]` of `run`), its failure stack and the function that starts it.
//! - `pipeline`: `run`'s config file: `${ENV}`, parsing and errors with file, line and field.
//! - `ops`: the `/healthz`, `/readyz`, `/metrics` server every service
//!   exposes (worker, outbox relay).
//! - `sink`, `sink_policy`: the HTTP sink of a route; statuses, signature, rate limit.
//! - `local_broker`: starts the local test broker for `demo` when no `--brokers` is given.
//! - `security`: TLS and SASL flags for every command that talks to Kafka.
//! - `cluster`: the cluster flags of `topic`, `group`, `lag` and their clients.
//! - `args`: shared flag parsers (durations, URLs, topic names).
//! - `log`: `--log-level` and `--log-format` for every command.
//! - `telemetry`: trace export over OTLP from the `OTEL_*` variables.

mod args;
mod cluster;
mod cmd;
mod local_broker;
mod log;
mod ops;
mod pipeline;
mod route;
mod security;
mod shutdown;
mod sink;
mod sink_policy;
mod telemetry;
mod time;

use clap::{Parser, Subcommand};

/// Reliable Kafka processing: workers, retries, dead letters, scheduling.
#[derive(Debug, Parser)]
#[command(name = "rebound", version, about)]
struct Cli {
    /// Log filter (tracing env-filter syntax), e.g. `info` or `rebound_worker=debug`.
    /// Default: `warn` for `demo`, `produce` and `consume` (they draw progress
    /// bars), `info` otherwise.
    #[arg(long, env = "LOG_LEVEL", global = true)]
    log_level: Option<String>,
    /// Log lines as `text` or `json` (one object per line), on stderr.
    #[arg(long, env = "LOG_FORMAT", global = true, value_enum, default_value_t)]
    log_format: log::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show rebound working on this machine: local broker, sample records,
    /// a worker with a flaky handler in each ordering mode, and a summary.
    Demo(cmd::demo::DemoArgs),
    /// Consume a topic in a consumer group and POST each record to an HTTP sink.
    Worker(Box<cmd::worker::WorkerArgs>),
    /// Run the Kafka-to-HTTP routes of a config file (`--check` validates it).
    Run(cmd::run::RunArgs),
    /// Inspect and replay a dead-letter topic.
    Dlq(cmd::dlq::DlqArgs),
    /// Serve the delayed-retry scheduler (HTTP API wire-compatible with Rebound).
    Serve(cmd::serve::ServeArgs),
    /// Send records to a topic from a file or stdin (kv, value or JSON lines).
    Produce(cmd::produce::ProduceArgs),
    /// Print a topic's records (pretty or JSON lines), with or without a group.
    Consume(cmd::consume::ConsumeArgs),
    /// Create, list, describe and delete topics.
    Topic(cmd::topic::TopicArgs),
    /// How far consumer groups are behind, in records and seconds.
    Lag(cmd::lag::LagArgs),
    /// List and describe consumer groups; reset their offsets.
    Group(cmd::group::GroupArgs),
    /// List, show, cancel and create the scheduler's tasks (via `rebound serve`).
    Tasks(cmd::tasks::TasksArgs),
    /// The transactional outbox: create the table, relay it to Kafka, show its state.
    Outbox(cmd::outbox::OutboxArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Demo(_) | Command::Produce(_) | Command::Consume(_) => "warn",
        _ => "info",
    };
    if let Err(e) = log::init(
        cli.log_level.as_deref().unwrap_or(default_level),
        cli.log_format,
    ) {
        eprintln!("error: {}", rebound_core::DisplayChain(e.as_ref()));
        return std::process::ExitCode::FAILURE;
    }
    let telemetry = match telemetry::init() {
        Ok(t) => t,
        Err(e) => {
            log::fatal(&e, cli.log_format);
            return std::process::ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli_format = cli.log_format;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(a) => cmd::demo::run(a).await,
            Command::Worker(a) => cmd::worker::run(*a).await,
            Command::Run(a) => cmd::run::run(a).await,
            Command::Dlq(a) => cmd::dlq::run(a).await,
            Command::Serve(a) => cmd::serve::run(a).await,
            Command::Produce(a) => cmd::produce::run(a).await,
            Command::Consume(a) => cmd::consume::run(a).await,
            Command::Topic(a) => cmd::topic::run(a).await,
            Command::Lag(a) => cmd::lag::run(a).await,
            Command::Group(a) => cmd::group::run(a).await,
            Command::Tasks(a) => cmd::tasks::run(a).await,
            Command::Outbox(a) => cmd::outbox::run(a).await,
        }
    });
    // Before the runtime goes: the exporter's last batch.
    telemetry.shutdown();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            log::fatal(&e, cli_format);
            std::process::ExitCode::FAILURE
        }
    }
}
