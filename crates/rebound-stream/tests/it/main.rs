//! Integration tests of rebound-stream against the test kit's broker.

mod aggregate;
mod apache_kafka_rekey;
mod common;
mod eos;
mod eos_fail;
mod join;
mod kill;
mod rebalance;
mod repartition;
mod stateless;
mod windows;
