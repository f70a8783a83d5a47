//! Outbox integration tests.
