//! Integration tests of the `rebound` binary, run as a user runs it, against real parts: one test
//! binary, one module per area (one link instead of one per file).

mod cli_consume;
mod cli_demo;
mod cli_dlq;
mod cli_group;
mod cli_lag;
mod cli_logs;
mod cli_outbox;
mod cli_produce;
mod cli_run;
mod cli_security;
mod cli_serve;
mod cli_tasks;
mod cli_topic;
mod cli_tracing;
mod cli_webhook;
mod cli_worker;
mod common;
mod dlq_replay;
