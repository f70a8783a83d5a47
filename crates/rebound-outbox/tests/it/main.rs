//! Outbox integration tests on real PostgreSQL, SQLite and the broker.
//! One test binary; each test uses its own table and topics.

mod bad_rows;
mod basic;
mod common;
mod concurrent;
mod dedupe;
mod kill;
mod standby;
mod wakeup;
