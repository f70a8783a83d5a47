//! The start-up check every consumer of this crate makes: do the brokers
//! answer, and do the topics exist? A check that fails says why in
//! librdkafka's own words ("SASL authentication error: Authentication
//! failed: Invalid username or password", "SSL handshake failed: ..."),
//! not only "broker transport failure".
//!
//! The check runs on a short-lived probe client made from the caller's
//! settings: librdkafka queues its logs and errors for the next poll, which a
//! client that has not subscribed yet never makes, so the probe polls them
//! itself between metadata requests.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::ClientContext;

use crate::error::{Error, Result};

/// Fails with [`Error::Unreachable`] when no broker answers within
/// `timeout`, and [`Error::UnknownTopic`] for a missing topic.
pub(crate) fn check_cluster(
    config: &ClientConfig,
    brokers: &str,
    topics: &[String],
    timeout: Duration,
) -> Result<()> {
    let probe: BaseConsumer<LastError> =
        config
            .create_with_context(LastError::default())
            .map_err(|source| Error::Kafka {
                context: "creating the consumer",
                source,
            })?;
    let deadline = Instant::now() + timeout;
    let md = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match probe.fetch_metadata(None, left.min(Duration::from_secs(1))) {
            Ok(md) => break md,
            Err(source) if Instant::now() >= deadline => {
                // Serve what librdkafka queued: its logs say why.
                let _ = probe.poll(Duration::ZERO);
                return Err(Error::Unreachable {
                    brokers: brokers.to_string(),
                    timeout,
                    last_error: probe.context().describe(),
                    source: Box::new(source),
                });
            }
            Err(_) => {
                let _ = probe.poll(Duration::ZERO);
            }
        }
    };
    for t in topics {
        let found = md
            .topics()
            .iter()
            .any(|mt| mt.name() == t && mt.error().is_none() && !mt.partitions().is_empty());
        if !found {
            return Err(Error::UnknownTopic {
                topic: t.clone(),
                brokers: brokers.to_string(),
            });
        }
    }
    Ok(())
}

/// A client context that keeps the last error-level line librdkafka
/// logged, to say why brokers did not answer (the probe's, the readers').
#[derive(Default)]
pub(crate) struct LastError(Mutex<Option<String>>);

impl LastError {
    /// librdkafka's last error line, or "no broker answered".
    pub(crate) fn describe(&self) -> String {
        self.0
            .lock()
            .expect("last error")
            .clone()
            .unwrap_or_else(|| "no broker answered".to_string())
    }
}

impl ClientContext for LastError {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        use RDKafkaLogLevel as L;
        if matches!(level, L::Emerg | L::Alert | L::Critical | L::Error) {
            *self.0.lock().expect("last error") = Some(log_message.to_string());
        }
        tracing::debug!(fac, "librdkafka: {log_message}");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::debug!("librdkafka: {error}: {reason}");
    }
}

impl ConsumerContext for LastError {}
