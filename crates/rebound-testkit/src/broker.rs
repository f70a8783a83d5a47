//! Which broker a test gets: tansu (default), Apache Kafka, or an external
//! cluster.

use crate::apache_kafka::KafkaBroker;
use crate::{LocalBroker, Result};

/// Brokers for a test: an external Kafka named by `REBOUND_TEST_BROKERS`, a
/// local tansu (the default), or Apache Kafka itself; whatever was started is
/// stopped when this is dropped.
#[derive(Debug)]
pub enum Brokers {
    /// An external cluster.
    External(String),
    /// A tansu broker owned by this value.
    Local(LocalBroker),
    /// An Apache Kafka broker owned by this value.
    Kafka(KafkaBroker),
}

/// Which broker [`Brokers::start`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// tansu (fast to start; the default).
    Tansu,
    /// Apache Kafka (`REBOUND_TEST_BROKER=kafka`).
    Kafka,
}

impl BrokerKind {
    /// `REBOUND_TEST_BROKER`: `tansu` (or unset) or `kafka`.
    ///
    /// # Panics
    /// On any other value, naming the variable: a typo must not silently run
    /// the suite on the wrong broker.
    pub fn from_env() -> BrokerKind {
        match std::env::var("REBOUND_TEST_BROKER")
            .as_deref()
            .map(str::trim)
        {
            Err(_) | Ok("") | Ok("tansu") => BrokerKind::Tansu,
            Ok("kafka") => BrokerKind::Kafka,
            Ok(other) => panic!("REBOUND_TEST_BROKER={other:?}: expected `tansu` or `kafka`"),
        }
    }
}

impl Brokers {
    /// `REBOUND_TEST_BROKERS` when set, else a fresh broker of the kind
    /// `REBOUND_TEST_BROKER` names (tansu by default).
    pub fn start() -> Result<Self> {
        if let Some(b) = external() {
            return Ok(Brokers::External(b));
        }
        match BrokerKind::from_env() {
            BrokerKind::Tansu => LocalBroker::start().map(Brokers::Local).map_err(Into::into),
            BrokerKind::Kafka => KafkaBroker::start().map(Brokers::Kafka),
        }
    }

    /// For tests whose meaning needs Apache Kafka's semantics: the external
    /// cluster of `REBOUND_TEST_BROKERS` when set (it must be Apache Kafka or
    /// as faithful), else a fresh [`KafkaBroker`].
    pub fn kafka() -> Result<Self> {
        match external() {
            Some(b) => Ok(Brokers::External(b)),
            None => KafkaBroker::start().map(Brokers::Kafka),
        }
    }

    /// The bootstrap list.
    pub fn bootstrap(&self) -> &str {
        match self {
            Brokers::External(b) => b,
            Brokers::Local(l) => l.bootstrap(),
            Brokers::Kafka(k) => k.bootstrap(),
        }
    }

    /// OS process id of a broker this value started.
    pub fn pid(&self) -> Option<u32> {
        match self {
            Brokers::External(_) => None,
            Brokers::Local(l) => Some(l.pid()),
            Brokers::Kafka(k) => Some(k.pid()),
        }
    }
}

fn external() -> Option<String> {
    std::env::var("REBOUND_TEST_BROKERS")
        .ok()
        .filter(|b| !b.trim().is_empty())
}
