//! Retrying a send: retriable errors wait out the backoff's delay and try
//! again, up to its bound; final errors return at once.

use std::future::Future;

use rebound_core::{Backoff, GaveUp, Next};

use crate::error::ProduceError;
use crate::metrics::ProducerMetrics;

/// Runs `attempt` until it succeeds, fails finally, or `backoff` allows no
/// more attempts (`None`: one attempt). The error returned carries the
/// number of attempts made.
pub(crate) async fn retrying<T, F, Fut>(
    backoff: Option<&Backoff>,
    metrics: &ProducerMetrics,
    mut attempt: F,
) -> Result<T, ProduceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ProduceError>>,
{
    let Some(backoff) = backoff else {
        return attempt().await.map_err(|mut e| {
            e.attempts = 1;
            e
        });
    };
    rebound_core::retry(backoff, attempt, |e, f| {
        if !e.retriable {
            return Next::Stop;
        }
        tracing::debug!(error = %rebound_core::DisplayChain(e), attempt = f.attempt, "retrying send");
        metrics.record_retry();
        Next::Retry
    })
    .await
    .map_err(|GaveUp { mut error, attempts }| {
        error.attempts = attempts;
        error
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;
    use std::cell::Cell;
    use std::time::Duration;

    fn err(code: RDKafkaErrorCode) -> ProduceError {
        ProduceError::new("t", KafkaError::MessageProduction(code))
    }

    fn backoff(max: u32) -> Backoff {
        Backoff::exponential(Duration::from_millis(10), Duration::from_millis(40))
            .with_max_attempts(Some(max))
    }

    #[tokio::test(start_paused = true)]
    async fn retriable_errors_are_retried_up_to_the_bound() {
        let m = ProducerMetrics::new();
        let calls = Cell::new(0);
        let r: Result<(), _> = retrying(Some(&backoff(4)), &m, || {
            calls.set(calls.get() + 1);
            async { Err(err(RDKafkaErrorCode::MessageTimedOut)) }
        })
        .await;
        let e = r.unwrap_err();
        assert_eq!((calls.get(), e.attempts, m.retries()), (4, 4, 3));
        assert!(e.to_string().contains("4 attempts"), "{e}");
    }

    #[tokio::test(start_paused = true)]
    async fn final_errors_are_not_retried() {
        let m = ProducerMetrics::new();
        let calls = Cell::new(0);
        let r: Result<(), _> = retrying(Some(&backoff(4)), &m, || {
            calls.set(calls.get() + 1);
            async { Err(err(RDKafkaErrorCode::MessageSizeTooLarge)) }
        })
        .await;
        assert_eq!(
            (calls.get(), r.unwrap_err().attempts, m.retries()),
            (1, 1, 0)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn success_after_a_retry() {
        let m = ProducerMetrics::new();
        let calls = Cell::new(0);
        let r = retrying(Some(&backoff(4)), &m, || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 2 {
                    Err(err(RDKafkaErrorCode::NotLeaderForPartition))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 2);
        assert_eq!(m.retries(), 1);
    }
}
