//! Retry in place: transient and throttled failures are tried again after a
//! backoff, up to the policy's attempt limit; permanent failures and the
//! last failure pass through to the next layer (or freeze the partition).

use std::future::Future;

use rebound_core::{Backoff, ErrorKind, GaveUp, HandlerError, HandlerResult, Next, Record};
use tracing::debug;

use super::Layer;
use crate::Handler;

/// Builds [`Retry`] handlers from a backoff policy.
#[derive(Debug, Clone)]
pub struct RetryLayer {
    backoff: Backoff,
}

impl RetryLayer {
    /// Retries with `backoff` (its `max_attempts` counts the first attempt).
    pub fn new(backoff: Backoff) -> Self {
        RetryLayer { backoff }
    }
}

impl<H: Handler> Layer<H> for RetryLayer {
    type Handler = Retry<H>;
    fn layer(&self, inner: H) -> Retry<H> {
        Retry {
            inner,
            backoff: self.backoff.clone(),
        }
    }
}

/// A handler that retries its inner handler in place.
#[derive(Debug, Clone)]
pub struct Retry<H> {
    inner: H,
    backoff: Backoff,
}

impl<H: Handler> Handler for Retry<H> {
    async fn handle(&self, record: &Record) -> HandlerResult {
        retry_in_place(&self.backoff, record, || self.inner.handle(record)).await
    }
}

/// Runs `attempt` until it succeeds, fails with a kind that is not
/// retriable, or `backoff` allows no further attempt; sleeps `backoff`'s
/// delay (or a throttled error's `retry_after`, if longer) in between. The
/// returned error carries the number of attempts made.
pub async fn retry_in_place<T, F, Fut>(
    backoff: &Backoff,
    record: &Record,
    attempt_once: F,
) -> Result<T, HandlerError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, HandlerError>>,
{
    rebound_core::retry(backoff, attempt_once, |err, f| {
        if !err.kind.is_retriable() {
            return Next::Stop;
        }
        debug!(
            topic = %record.topic, partition = record.partition, offset = record.offset,
            attempt = f.attempt, delay = ?f.delay, retry_after = ?err.retry_after, error = %err,
            "retrying in place"
        );
        rebound_core::trace::retry_event(f.attempt, f.delay, err);
        match (err.kind, err.retry_after) {
            (ErrorKind::Throttled, Some(after)) => Next::RetryNoSooner(after),
            _ => Next::Retry,
        }
    })
    .await
    .map_err(
        |GaveUp {
             mut error,
             attempts,
         }| {
            error.attempts = attempts;
            error
        },
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use rebound_core::{HandlerError, Jitter};

    use super::*;
    use crate::handler_fn;

    fn failing(times: u32, kind: ErrorKind, calls: Arc<AtomicU32>) -> impl Handler {
        handler_fn(move |_: &Record| {
            let calls = calls.clone();
            async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if n <= times {
                    Err(HandlerError::new(kind, format!("failure {n}")))
                } else {
                    Ok(())
                }
            }
        })
    }

    fn policy(max: u32) -> RetryLayer {
        RetryLayer::new(
            Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1))
                .with_jitter(Jitter::None)
                .with_max_attempts(Some(max)),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn transient_failures_are_retried_with_backoff() {
        let calls = Arc::new(AtomicU32::new(0));
        let h = policy(5).layer(failing(3, ErrorKind::Transient, calls.clone()));
        let start = tokio::time::Instant::now();
        h.handle(&Record::new("t", 0, 0)).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // 100 + 200 + 400 ms of backoff.
        assert_eq!(start.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded_and_the_last_error_passes_through() {
        let calls = Arc::new(AtomicU32::new(0));
        let h = policy(3).layer(failing(10, ErrorKind::Transient, calls.clone()));
        let err = h.handle(&Record::new("t", 0, 0)).await.unwrap_err();
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        assert_eq!(err.message, "failure 3");
        assert_eq!(err.attempts, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_are_not_retried() {
        let calls = Arc::new(AtomicU32::new(0));
        let h = policy(5).layer(failing(1, ErrorKind::Permanent, calls.clone()));
        assert!(h.handle(&Record::new("t", 0, 0)).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
