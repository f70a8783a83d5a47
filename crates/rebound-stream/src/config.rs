//! [`StreamConfig`]: where the brokers and the state are, and the guarantee.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Result, StreamError};

/// The processing guarantee.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Guarantee {
    /// Output, changelog and state are written, then the input offsets
    /// committed: a crash can process records again (outputs repeated),
    /// never lose them.
    #[default]
    AtLeastOnce,
    /// Output, changelog writes and input offsets commit in one Kafka
    /// transaction; the local state file follows the commit. A
    /// `read_committed` reader sees each input's effect exactly once.
    ExactlyOnce,
}

/// How a stream application runs.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub(crate) brokers: String,
    pub(crate) state_dir: PathBuf,
    pub(crate) guarantee: Guarantee,
    /// Resolved by [`StreamConfigBuilder::build`] (the defaults depend on
    /// the guarantee).
    pub(crate) commit_interval: Duration,
    pub(crate) max_batch: usize,
    pub(crate) session_timeout: Duration,
    pub(crate) transaction_timeout: Duration,
    pub(crate) max_aborts: u32,
    pub(crate) max_abort_time: Duration,
    pub(crate) client_config: Vec<(String, String)>,
}

impl StreamConfig {
    /// Starts a configuration: brokers and state directory are required.
    pub fn builder() -> StreamConfigBuilder {
        StreamConfigBuilder {
            cfg: StreamConfig {
                brokers: String::new(),
                state_dir: PathBuf::new(),
                guarantee: Guarantee::AtLeastOnce,
                commit_interval: Duration::ZERO,
                max_batch: 0,
                session_timeout: Duration::from_secs(10),
                transaction_timeout: Duration::from_secs(60),
                max_aborts: 5,
                max_abort_time: Duration::from_secs(60),
                client_config: Vec::new(),
            },
            commit_interval: None,
            max_batch: None,
        }
    }

    /// The guarantee.
    pub fn guarantee(&self) -> Guarantee {
        self.guarantee
    }
}

/// At-least-once: how often state and input offsets commit by default.
/// Records are processed as they come, in chunks; only the commit waits
/// for the interval, so a longer one costs no output latency. A
/// cooperative revoke commits before the partitions go; what a longer
/// interval costs is the records processed again after a crash or a
/// lost partition (session timeout).
pub const ALO_COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// At-least-once: records per commit at most by default. It bounds the
/// keys held dirty in the write-back cache between commits (times the keys
/// one record writes: a hopping window writes several); outputs in flight
/// are bounded by the producer's queue (`queue.buffering.max.messages`).
pub const ALO_MAX_BATCH: usize = 50_000;
/// Exactly-once: how long a transaction collects records by default
/// (outputs become visible to `read_committed` readers at its commit).
pub const EOS_COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// Exactly-once: records per transaction at most by default.
pub const EOS_MAX_BATCH: usize = 10_000;
/// At-least-once: records processed at a time within a commit interval.
pub(crate) const CHUNK: usize = 10_000;

/// Builds a [`StreamConfig`].
#[derive(Debug, Clone)]
pub struct StreamConfigBuilder {
    cfg: StreamConfig,
    commit_interval: Option<Duration>,
    max_batch: Option<usize>,
}

impl StreamConfigBuilder {
    /// Bootstrap servers, `host:port[,host:port]`.
    pub fn with_brokers(mut self, brokers: impl Into<String>) -> Self {
        self.cfg.brokers = brokers.into();
        self
    }

    /// Directory of the local state (one file per input partition). One
    /// process at a time: a second one is refused.
    pub fn with_state_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cfg.state_dir = dir.into();
        self
    }

    /// At-least-once (default) or exactly-once.
    pub fn with_guarantee(mut self, g: Guarantee) -> Self {
        self.cfg.guarantee = g;
        self
    }

    /// How often state and input offsets commit. At-least-once (default
    /// [`ALO_COMMIT_INTERVAL`], 1 s): records are processed as they
    /// arrive and the commit follows every interval. Exactly-once
    /// (default [`EOS_COMMIT_INTERVAL`], 100 ms): how long a transaction
    /// collects records before they are processed and committed.
    pub fn with_commit_interval(mut self, d: Duration) -> Self {
        self.commit_interval = Some(d);
        self
    }

    /// Records per commit at most (default [`ALO_MAX_BATCH`], 50,000,
    /// at-least-once; [`EOS_MAX_BATCH`], 10,000, exactly-once).
    pub fn with_max_batch(mut self, n: usize) -> Self {
        self.max_batch = Some(n);
        self
    }

    /// Consumer group session timeout (default 10 s).
    pub fn with_session_timeout(mut self, d: Duration) -> Self {
        self.cfg.session_timeout = d;
        self
    }

    /// Broker-side transaction timeout in exactly-once mode (default 60 s).
    pub fn with_transaction_timeout(mut self, d: Duration) -> Self {
        self.cfg.transaction_timeout = d;
        self
    }

    /// Exactly-once: transactions aborted in a row (each batch read again,
    /// with a growing pause) before the application stops with the last
    /// cause, e.g. an output topic that refuses a record for good
    /// (default 5, at least 1). It stops only once
    /// [`with_max_abort_time`](Self::with_max_abort_time) has passed since
    /// the first of them too, so a broker restart or a coordinator move is
    /// waited out.
    pub fn with_max_aborts(mut self, n: u32) -> Self {
        self.cfg.max_aborts = n;
        self
    }

    /// Exactly-once: how long aborts in a row may go on before the
    /// application stops (with at least [`with_max_aborts`](Self::with_max_aborts)
    /// of them; default 60 s).
    pub fn with_max_abort_time(mut self, d: Duration) -> Self {
        self.cfg.max_abort_time = d;
        self
    }

    /// Any librdkafka property for every client (TLS, SASL).
    pub fn with_client_config(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.cfg.client_config.push((k.into(), v.into()));
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<StreamConfig> {
        let mut c = self.cfg;
        let alo = c.guarantee == Guarantee::AtLeastOnce;
        c.commit_interval = self.commit_interval.unwrap_or(if alo {
            ALO_COMMIT_INTERVAL
        } else {
            EOS_COMMIT_INTERVAL
        });
        c.max_batch = self
            .max_batch
            .unwrap_or(if alo { ALO_MAX_BATCH } else { EOS_MAX_BATCH });
        if c.brokers.trim().is_empty() {
            return Err(StreamError::config("brokers", "must not be empty"));
        }
        if c.state_dir.as_os_str().is_empty() {
            return Err(StreamError::config("state_dir", "must not be empty"));
        }
        if c.max_batch == 0 {
            return Err(StreamError::config("max_batch", "must be at least 1"));
        }
        if c.max_aborts == 0 {
            return Err(StreamError::config("max_aborts", "must be at least 1"));
        }
        if c.commit_interval.is_zero() {
            return Err(StreamError::config("commit_interval", "must be above zero"));
        }
        if c.guarantee == Guarantee::ExactlyOnce && c.transaction_timeout < c.commit_interval * 2 {
            return Err(StreamError::config(
                "transaction_timeout",
                "must be at least twice the commit interval",
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_settings_are_named() {
        let e = StreamConfig::builder()
            .with_state_dir("/tmp/x")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("brokers"), "{e}");
        let e = StreamConfig::builder()
            .with_brokers("b:1")
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("state_dir"), "{e}");
        let e = StreamConfig::builder()
            .with_brokers("b:1")
            .with_state_dir("/tmp/x")
            .with_max_batch(0)
            .build()
            .unwrap_err();
        assert!(e.to_string().contains("max_batch"), "{e}");
    }

    #[test]
    fn defaults_follow_the_guarantee() {
        let b = StreamConfig::builder()
            .with_brokers("b:1")
            .with_state_dir("/tmp/x");
        let alo = b.clone().build().unwrap();
        assert_eq!(
            (alo.commit_interval, alo.max_batch),
            (ALO_COMMIT_INTERVAL, ALO_MAX_BATCH)
        );
        let eos = b
            .clone()
            .with_guarantee(Guarantee::ExactlyOnce)
            .build()
            .unwrap();
        assert_eq!(
            (eos.commit_interval, eos.max_batch),
            (EOS_COMMIT_INTERVAL, EOS_MAX_BATCH)
        );
        let set = b
            .with_commit_interval(Duration::from_millis(7))
            .with_max_batch(3)
            .build()
            .unwrap();
        assert_eq!(
            (set.commit_interval, set.max_batch),
            (Duration::from_millis(7), 3)
        );
    }
}
