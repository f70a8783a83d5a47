//! Integration tests of the scheduler, against real parts: one test
//! binary, one module per area (one link instead of one per file).

mod backoff;
mod common;
mod crash;
mod delivery_guard;
mod delivery_http;
mod delivery_kafka;
mod file_store;
mod http_api;
mod layers;
mod redis_instances;
mod redis_modes;
mod redo_log;
mod store_contract;
mod tracing;
