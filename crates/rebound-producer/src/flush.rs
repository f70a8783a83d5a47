//! Flushing without rdkafka's 100 ms step.
//!
//! rust-rdkafka's `flush` calls `rd_kafka_flush(0)` and, while records are
//! in flight, `poll(100 ms)` on the calling thread — and `poll` only returns
//! at its deadline. With a polling thread already serving the delivery
//! reports, every flush (and every transaction commit, which flushes first)
//! therefore took at least 100 ms. Here the polling thread keeps serving
//! reports and the caller only waits for the count of outstanding records to
//! reach zero, calling `rd_kafka_flush(0)` every millisecond: each call tells
//! the broker threads to send lingering batches now.

use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::producer::{Producer as _, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use crate::delivery::DeliveryContext;

const STEP: Duration = Duration::from_millis(1);

/// One non-blocking step: `Ok(true)` when nothing is outstanding,
/// `Ok(false)` to wait a step more, an error when `deadline` has passed.
fn step(p: &ThreadedProducer<DeliveryContext>, deadline: Instant) -> KafkaResult<bool> {
    match p.flush(Duration::ZERO) {
        Ok(()) if p.in_flight_count() == 0 => Ok(true),
        Ok(()) | Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => {
            if Instant::now() >= deadline {
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
            } else {
                Ok(false)
            }
        }
        Err(e) => Err(e),
    }
}

/// Waits (blocking the thread) until every record is reported or `timeout` passes.
pub(crate) fn flush_blocking(
    p: &ThreadedProducer<DeliveryContext>,
    timeout: Duration,
) -> KafkaResult<()> {
    let deadline = Instant::now() + timeout;
    while !step(p, deadline)? {
        std::thread::sleep(STEP);
    }
    Ok(())
}

/// Waits (asynchronously) until every record is reported or `timeout` passes.
pub(crate) async fn flush_async(
    p: &ThreadedProducer<DeliveryContext>,
    timeout: Duration,
) -> KafkaResult<()> {
    let deadline = Instant::now() + timeout;
    while !step(p, deadline)? {
        tokio::time::sleep(STEP).await;
    }
    Ok(())
}
