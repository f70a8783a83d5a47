//! [`RelayConfig`]: which table, which brokers, and how the relay behaves.

use std::sync::Arc;
use std::time::Duration;

use rebound_producer::ProducerConfig;

use crate::error::Result;
use crate::health::RelayHealth;
use crate::metrics::RelayMetrics;
use crate::table::{DatabaseUrl, TableName};

/// What one batch did, for observers (logging, tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReport {
    /// When the batch's first record was queued, epoch ms.
    pub started_ms: i64,
    /// When its outcome was committed to the database, epoch ms.
    pub finished_ms: i64,
    /// Rows published.
    pub published: usize,
    /// Rows marked failed.
    pub failed: usize,
    /// Rows left pending to try again.
    pub retried: usize,
}

/// A callback run after each batch.
pub type BatchObserver = Arc<dyn Fn(&BatchReport) + Send + Sync>;

/// Settings of a relay. Defaults: table `rebound_outbox`, batches of 1,000
/// rows, a 1 s polling fallback, a 1 s standby check, published rows
/// deleted at once, no dead-letter topic.
#[derive(Clone)]
pub struct RelayConfig {
    pub(crate) database: DatabaseUrl,
    pub(crate) table: TableName,
    pub(crate) producer: ProducerConfig,
    pub(crate) batch_size: usize,
    pub(crate) poll_interval: Duration,
    pub(crate) standby_interval: Duration,
    pub(crate) retry_delay: Duration,
    pub(crate) retention: Duration,
    pub(crate) stats_interval: Duration,
    pub(crate) dead_letter_topic: Option<String>,
    pub(crate) metrics: Arc<RelayMetrics>,
    pub(crate) health: Arc<RelayHealth>,
    pub(crate) on_batch: Option<BatchObserver>,
}

impl std::fmt::Debug for RelayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayConfig")
            .field("database", &self.database)
            .field("table", &self.table)
            .field("batch_size", &self.batch_size)
            .field("retention", &self.retention)
            .field("dead_letter_topic", &self.dead_letter_topic)
            .finish_non_exhaustive()
    }
}

impl RelayConfig {
    /// A relay from `database_url` (`postgres://…` or `sqlite://PATH`) to
    /// the brokers of `producer` (idempotent, `acks=all` by default: keep it so).
    pub fn new(database_url: &str, producer: ProducerConfig) -> Result<Self> {
        Ok(RelayConfig {
            database: DatabaseUrl::parse(database_url)?,
            table: TableName::default(),
            producer,
            batch_size: 1000,
            poll_interval: Duration::from_secs(1),
            standby_interval: Duration::from_secs(1),
            retry_delay: Duration::from_millis(500),
            retention: Duration::ZERO,
            stats_interval: Duration::from_secs(5),
            dead_letter_topic: None,
            metrics: Arc::new(RelayMetrics::new()),
            health: Arc::new(RelayHealth::default()),
            on_batch: None,
        })
    }

    /// The outbox table (default `rebound_outbox`).
    pub fn with_table(mut self, table: TableName) -> Self {
        self.table = table;
        self
    }

    /// Rows per batch: a crash re-publishes at most one batch.
    pub fn with_batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// How often an idle relay looks for rows without a notification
    /// (PostgreSQL wakes on commit; SQLite polls at least every 50 ms).
    pub fn with_poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every;
        self
    }

    /// How often a standby tries to become active.
    pub fn with_standby_interval(mut self, every: Duration) -> Self {
        self.standby_interval = every;
        self
    }

    /// Keep published rows this long before deleting them (zero: delete
    /// in the batch that published them).
    pub fn with_retention(mut self, keep: Duration) -> Self {
        self.retention = keep;
        self
    }

    /// Also send rows that can never be published to `topic`, with
    /// `rebound.original.topic`, `rebound.error.kind` and
    /// `rebound.error.message` headers.
    pub fn with_dead_letter_topic(mut self, topic: impl Into<String>) -> Self {
        self.dead_letter_topic = Some(topic.into());
        self
    }

    /// Counts into `metrics` (to share the process's registry).
    pub fn with_metrics(mut self, metrics: Arc<RelayMetrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Reports health into `health`.
    pub fn with_health(mut self, health: Arc<RelayHealth>) -> Self {
        self.health = health;
        self
    }

    /// Calls `f` after each batch.
    pub fn with_batch_observer(mut self, f: BatchObserver) -> Self {
        self.on_batch = Some(f);
        self
    }

    /// How often the table gauges are refreshed.
    pub fn with_stats_interval(mut self, every: Duration) -> Self {
        self.stats_interval = every;
        self
    }

    /// The relay's metrics.
    pub fn metrics(&self) -> &Arc<RelayMetrics> {
        &self.metrics
    }

    /// The relay's health.
    pub fn health(&self) -> &Arc<RelayHealth> {
        &self.health
    }
}
