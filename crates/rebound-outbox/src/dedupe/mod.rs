//! The dedupe (inbox) layer: a worker [`Layer`] that drops a record whose
//! id was already handled.
//!
//! **How it combines with the relay.** The relay publishes at least once:
//! a crash re-publishes at most the batch in flight, every copy with the
//! same `rebound.outbox.id`. Keyed rows keep their key, so the copies land
//! in the same partition, and with the worker in key or partition order the
//! copies of one id are never handled concurrently. The layer looks the id
//! up before calling the handler and records it after the handler
//! succeeded:
//!
//! - a copy of an id already recorded is acknowledged without handling;
//! - a failed handling records nothing (the retry layers or the next copy
//!   handle it again);
//! - **the window that remains**: a crash (or a failed write to the store)
//!   after the handler's effect and before the id is recorded handles that
//!   record once more. To close it, make the mark commit with the effect:
//!   when the handler writes to the same PostgreSQL database, call
//!   [`claim_pg`] inside the handler's own transaction — the effect and the
//!   mark then commit or roll back together (exactly once), and the layer
//!   is not needed.
//!
//! Ids are kept for the store's retention window; a copy arriving after
//! its id was purged is handled again, so the window must exceed the
//! longest redelivery delay (relay downtime plus consumer lag).
//!
//! - `store`: [`DedupeStore`] on PostgreSQL or SQLite.

mod store;

use std::sync::Arc;

use rebound_core::{headers, HandlerError, HandlerResult, Record};
use rebound_worker::{Handler, Layer};
use tracing::debug;

pub use store::{claim_pg, DedupeStore};

/// Where a record's id is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSource {
    /// A header (by default `rebound.outbox.id`).
    Header(String),
    /// The record key.
    Key,
}

impl Default for IdSource {
    fn default() -> Self {
        IdSource::Header(headers::OUTBOX_ID.to_string())
    }
}

impl IdSource {
    fn id(&self, rec: &Record) -> Option<String> {
        match self {
            IdSource::Header(name) => rec.header_str(name).map(str::to_string),
            IdSource::Key => rec.key_str().map(str::to_string),
        }
    }
}

/// Builds [`Dedupe`] handlers.
#[derive(Debug, Clone)]
pub struct DedupeLayer {
    store: Arc<DedupeStore>,
    id: IdSource,
}

impl DedupeLayer {
    /// Dedupes by the `rebound.outbox.id` header in `store`.
    pub fn new(store: Arc<DedupeStore>) -> Self {
        DedupeLayer {
            store,
            id: IdSource::default(),
        }
    }

    /// Reads the id from `source` instead.
    pub fn with_id(mut self, source: IdSource) -> Self {
        self.id = source;
        self
    }
}

impl<H: Handler> Layer<H> for DedupeLayer {
    type Handler = Dedupe<H>;
    fn layer(&self, inner: H) -> Dedupe<H> {
        Dedupe {
            inner,
            store: self.store.clone(),
            id: self.id.clone(),
        }
    }
}

/// A handler that skips records whose id was already handled.
#[derive(Debug)]
pub struct Dedupe<H> {
    inner: H,
    store: Arc<DedupeStore>,
    id: IdSource,
}

fn store_error(e: crate::Error) -> HandlerError {
    HandlerError::transient(format!("dedupe store: {}", rebound_core::DisplayChain(&e)))
}

impl<H: Handler> Handler for Dedupe<H> {
    async fn handle(&self, record: &Record) -> HandlerResult {
        // A record without an id cannot be a relay duplicate: handled as is.
        let Some(id) = self.id.id(record) else {
            return self.inner.handle(record).await;
        };
        if self.store.seen(&id).await.map_err(store_error)? {
            debug!(topic = %record.topic, offset = record.offset, id, "duplicate dropped");
            return Ok(());
        }
        self.inner.handle(record).await?;
        self.store.mark(&id).await.map_err(store_error)
    }
}
