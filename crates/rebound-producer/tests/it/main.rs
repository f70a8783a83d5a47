//! Integration tests of the producers, against real parts: one test
//! binary, one module per area (one link instead of one per file).

mod common;
mod crosscheck;
mod idempotence;
mod modes;
mod retry;
mod transactions;
mod typed;
