//! What to read: brokers, topic, partitions, where to start and stop.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// Where a partition is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    /// The first offset still stored.
    #[default]
    Beginning,
    /// The end as of opening: only records written later (with follow).
    End,
    /// This offset (records below it are not read).
    Offset(i64),
    /// The first record whose timestamp is at or after these epoch ms.
    Timestamp(i64),
}

impl fmt::Display for StartAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartAt::Beginning => f.write_str("beginning"),
            StartAt::End => f.write_str("end"),
            StartAt::Offset(o) => write!(f, "offset {o}"),
            StartAt::Timestamp(t) => write!(f, "timestamp {t} ms"),
        }
    }
}

/// One partition chosen explicitly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chosen {
    pub start: StartAt,
    /// Exclusive end offset, when bounded by the caller.
    pub stop: Option<i64>,
}

/// What a reader reads. Build with [`ReaderConfig::new`] and `with_*`.
#[derive(Debug, Clone)]
pub struct ReaderConfig {
    pub(crate) brokers: String,
    pub(crate) topic: String,
    pub(crate) start: StartAt,
    /// Explicit partitions; empty: every partition of the topic.
    pub(crate) chosen: BTreeMap<i32, Chosen>,
    pub(crate) follow: bool,
    pub(crate) read_committed: bool,
    pub(crate) timeout: Duration,
    pub(crate) session_timeout: Duration,
    pub(crate) client_config: rebound_core::ClientProperties,
}

impl ReaderConfig {
    /// Every partition of `topic` from the beginning to the end as of
    /// opening; `read_uncommitted`; 30 s timeout.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        ReaderConfig {
            brokers: brokers.into(),
            topic: topic.into(),
            start: StartAt::Beginning,
            chosen: BTreeMap::new(),
            follow: false,
            read_committed: false,
            timeout: Duration::from_secs(30),
            session_timeout: Duration::from_secs(10),
            client_config: rebound_core::ClientProperties::default(),
        }
    }

    /// Where each partition starts unless chosen with its own start. For a
    /// [`GroupReader`](super::GroupReader): where partitions the group has
    /// no committed offset for start.
    pub fn with_start(mut self, start: StartAt) -> Self {
        self.start = start;
        for c in self.chosen.values_mut() {
            c.start = start;
        }
        self
    }

    /// Reads only these partitions (from the start set by [`with_start`](Self::with_start)).
    pub fn with_partitions(mut self, partitions: impl IntoIterator<Item = i32>) -> Self {
        for p in partitions {
            self.chosen.insert(
                p,
                Chosen {
                    start: self.start,
                    stop: None,
                },
            );
        }
        self
    }

    /// Reads `partition` from `start` up to the exclusive offset `end` (or
    /// to the end of the partition, whichever comes first; `None`: to the
    /// end). Adds to the partitions read.
    pub fn with_range(mut self, partition: i32, start: StartAt, end: Option<i64>) -> Self {
        self.chosen.insert(partition, Chosen { start, stop: end });
        self
    }

    /// Keeps waiting for new records at the end instead of stopping there.
    pub fn with_follow(mut self, follow: bool) -> Self {
        self.follow = follow;
        self
    }

    /// `isolation.level=read_committed`: records of open or aborted
    /// transactions are not read, and the end is the last stable offset.
    pub fn with_read_committed(mut self, on: bool) -> Self {
        self.read_committed = on;
        self
    }

    /// How long to wait for the brokers, and for records while some
    /// partition is unfinished (not while following).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Session timeout of a [`GroupReader`](super::GroupReader)'s group
    /// membership (default 10 s).
    pub fn with_session_timeout(mut self, timeout: Duration) -> Self {
        self.session_timeout = timeout;
        self
    }

    /// Any librdkafka consumer property. The reader's own settings (no
    /// auto-commit, partition EOF, isolation level) win over these.
    pub fn with_client_config(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.client_config.insert(key.into(), value.into());
        self
    }

    /// The topic read.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Whether the reader follows the end.
    pub fn follows(&self) -> bool {
        self.follow
    }
}
