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

/// One non-blocking step: `Ok(true)` when nothing is outstanding.
fn flushed(p: &ThreadedProducer<DeliveryContext>) -> KafkaResult<bool> {
    match p.flush(Duration::ZERO) {
        Ok(()) => Ok(p.in_flight_count() == 0),
        Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)) => Ok(false),
        Err(e) => Err(e),
    }
}

fn timed_out() -> KafkaError {
    KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut)
}

/// Waits (blocking the thread) until every record is reported or `timeout` passes.
pub(crate) fn flush_blocking(
    p: &ThreadedProducer<DeliveryContext>,
    timeout: Duration,
) -> KafkaResult<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if flushed(p)? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(timed_out());
        }
        std::thread::sleep(STEP);
    }
}

/// Waits (asynchronously) until every record is reported or `timeout` passes.
pub(crate) async fn flush_async(
    p: &ThreadedProducer<DeliveryContext>,
    timeout: Duration,
) -> KafkaResult<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if flushed(p)? {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(timed_out());
        }
        tokio::time::sleep(STEP).await;
    }
}
