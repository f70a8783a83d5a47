//! The relay: pending rows to Kafka, one batch at a time, by the table's
//! one active instance.
//!
//! **Guarantee.** At least once: a row is deleted (or stamped published)
//! only after Kafka acknowledged it, in one database transaction per batch,
//! so a crash re-publishes at most the batch in flight. Rows of one key are
//! published in their commit order (see [`crate::pg::ddl`]; SQLite: id
//! order is commit order) to one partition (murmur2, idempotent producer).
//! No row is skipped: there is no "last id seen" cursor; a row is pending
//! until it is published or failed, and becomes visible when its
//! transaction commits, however late.
//!
//! **One active instance per table.** PostgreSQL: a session advisory lock
//! held by the one connection that also fetches and marks the rows, checked
//! before each batch; a standby tries to take it every
//! `standby_interval`. A relay process that dies loses its session and so
//! the lock at once (measured: the standby's first batch 210 ms after a
//! SIGKILL). The one window: if the session is cut while the process lives
//! (an administrator terminates the backend, a network cut), the batch it
//! had in flight is still delivered while the standby starts; its `finish`
//! then fails and it stops, so at most one batch overlaps, as duplicates
//! (per-key order across that batch is not guaranteed). SQLite: a lease row
//! renewed before each batch; a batch that takes longer than the lease (5 s)
//! could overlap the next holder's first batch in the same way. A graceful
//! stop releases the lock or lease, so a standby takes over at its next try;
//! after a crash, a SQLite standby waits for the lease to expire.
//!
//! - `config`: [`RelayConfig`].
//! - `publish`: one batch to Kafka.
//! - `topics`: which topics exist.

mod config;
mod publish;
mod topics;

use std::time::{Duration, Instant};

use rebound_core::{epoch_ms, DisplayChain};
use rebound_producer::Producer;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

pub use config::{BatchObserver, BatchReport, RelayConfig};
use publish::Publisher;
use topics::Topics;

use crate::error::{Error, Result};
use crate::store::Store;

/// A relay for one table.
pub struct Relay {
    config: RelayConfig,
    publisher: Publisher,
}

impl Relay {
    /// Creates the producer (no connection is made yet).
    pub fn new(config: RelayConfig) -> Result<Self> {
        let producer = Producer::new(&config.producer).map_err(Error::Producer)?;
        let publisher = Publisher {
            topics: Topics::new(
                config.producer.brokers(),
                config.producer.client_properties(),
            ),
            dead_letter: config.dead_letter_topic.clone(),
            producer,
        };
        Ok(Relay { config, publisher })
    }

    /// Runs until `stop` is cancelled: waits as a standby while another
    /// instance is active, publishes while this one is. Database and lock
    /// failures are logged and retried (a new session, standby first);
    /// the batch in flight when `stop` is cancelled is finished first.
    pub async fn run(mut self, stop: CancellationToken) -> Result<()> {
        while !stop.is_cancelled() {
            match self.session(&stop).await {
                Ok(()) => break,
                Err(e) => {
                    self.config.metrics.active.set(0);
                    self.config.metrics.batch_errors.inc();
                    let why = DisplayChain(&e).to_string();
                    warn!(table = %self.config.table, error = %why, "relay session ended; reconnecting");
                    self.config.health.failed(why);
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.retry_delay) => {}
                        _ = stop.cancelled() => {}
                    }
                }
            }
        }
        self.config.health.set_stopping();
        self.config.metrics.active.set(0);
        let _ = self
            .publisher
            .producer
            .flush_async(Duration::from_secs(10))
            .await;
        Ok(())
    }

    /// One database session: standby until the lock is ours, then batches.
    async fn session(&mut self, stop: &CancellationToken) -> Result<()> {
        let cfg = self.config.clone();
        let mut store = Store::connect(&cfg.database, &cfg.table).await?;
        loop {
            if stop.is_cancelled() {
                return Ok(());
            }
            if store.try_acquire().await? {
                break;
            }
            cfg.health.looped(true, false);
            tokio::select! {
                _ = tokio::time::sleep(cfg.standby_interval) => {}
                _ = stop.cancelled() => return Ok(()),
            }
        }
        info!(table = %cfg.table, "active relay");
        cfg.metrics.active.set(1);
        self.active(&mut store, stop).await?;
        // Stopping: hand over at once rather than when the lock or lease lapses.
        if let Err(e) = store.release().await {
            debug!(error = %DisplayChain(&e), "releasing the relay lock failed");
        }
        Ok(())
    }

    /// Batches until `stop` (`Ok`) or a database or lock failure (`Err`).
    async fn active(&mut self, store: &mut Store, stop: &CancellationToken) -> Result<()> {
        let cfg = self.config.clone();
        let mut last_stats: Option<Instant> = None;
        let mut last_purge = Instant::now();
        loop {
            if stop.is_cancelled() {
                return Ok(());
            }
            store.check_active().await?;
            if last_stats.is_none_or(|t| t.elapsed() >= cfg.stats_interval) {
                cfg.metrics.observe(&store.stats().await?);
                last_stats = Some(Instant::now());
            }
            if last_purge.elapsed() >= Duration::from_secs(60) {
                store.purge(cfg.retention).await?;
                last_purge = Instant::now();
            }
            let fetch_started = Instant::now();
            let rows = store.fetch(cfg.batch_size).await?;
            let fetched = fetch_started.elapsed();
            cfg.health.looped(true, true);
            if rows.is_empty() {
                tokio::select! {
                    _ = store.wait_for_rows(cfg.poll_interval) => {}
                    _ = stop.cancelled() => return Ok(()),
                }
                continue;
            }
            let started_ms = epoch_ms();
            let publish_started = Instant::now();
            let (mut done, waiting) = self.publisher.publish(&rows, &cfg.metrics).await;
            done.set_done_txids(&rows, rows.len() >= cfg.batch_size);
            let published = publish_started.elapsed();
            store.finish(&done, cfg.retention).await?;
            debug!(
                rows = rows.len(),
                fetch_ms = fetched.as_millis() as u64,
                publish_ms = published.as_millis() as u64,
                finish_ms = (publish_started.elapsed() - published).as_millis() as u64,
                "batch"
            );
            cfg.metrics.published.inc_by(done.published.len() as u64);
            if let Some(f) = &cfg.on_batch {
                f(&BatchReport {
                    started_ms,
                    finished_ms: epoch_ms(),
                    published: done.published.len(),
                    failed: done.failed.len(),
                    retried: waiting,
                });
            }
            if waiting > 0 {
                cfg.metrics.batch_errors.inc();
                warn!(table = %cfg.table, rows = waiting, "rows not delivered; trying again");
                tokio::select! {
                    _ = tokio::time::sleep(cfg.retry_delay) => {}
                    _ = stop.cancelled() => return Ok(()),
                }
            }
        }
    }
}

/// Creates the outbox table in `database_url` (idempotent).
pub async fn init(database_url: &str, table: &crate::TableName) -> Result<()> {
    let url = crate::DatabaseUrl::parse(database_url)?;
    Store::connect(&url, table).await?.init().await
}
