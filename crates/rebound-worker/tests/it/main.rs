//! Integration tests of the worker, its layers, readers and exactly-once pipeline, against real parts: one test
//! binary, one module per area (one link instead of one per file).

mod apache_kafka_churn;
mod apache_kafka_security;
mod common;
mod exactly_once;
mod exactly_once_kill;
mod failures;
mod group;
mod health;
mod ordering;
mod outage;
mod reader;
mod recovery;
mod tracing;
