//! The one retry loop: try, and after a failure ask the caller whether the
//! error is worth another attempt, then wait out the [`Backoff`]'s delay (or
//! longer, when the other side asked for it with `Retry-After`).
//!
//! Every in-process retry in rebound goes through [`retry`]: the producer's
//! sends, the worker's retry layer, dead-letter writes and the exactly-once
//! pipeline's commit and abort. The scheduler's retries are durable (a due
//! time in its store), so it computes the same delays from the same
//! [`Backoff`] and honours [`retry_after`] there.

use std::future::Future;
use std::time::{Duration, SystemTime};

use crate::Backoff;

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Give up: the error is final.
    Stop,
    /// Try again after the backoff's delay.
    Retry,
    /// Try again after the backoff's delay or this one, whichever is longer
    /// (a server's `Retry-After`).
    RetryNoSooner(Duration),
}

/// One failed attempt, as the caller's judge sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The attempt that failed, from 1.
    pub attempt: u32,
    /// The backoff's delay before the next attempt.
    pub delay: Duration,
}

/// The last error of a retry loop that gave up, with the attempts made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaveUp<E> {
    /// The last attempt's error.
    pub error: E,
    /// Attempts made, the first included.
    pub attempts: u32,
}

/// Runs `attempt` until it succeeds, `judge` says [`Next::Stop`], or
/// `backoff` allows no further attempt (its `max_attempts` counts the first).
/// `judge` is the place to log and count a retry; it is not called for the
/// last failure when the backoff is exhausted.
pub async fn retry<T, E, F, Fut, J>(
    backoff: &Backoff,
    mut attempt: F,
    mut judge: J,
) -> Result<T, GaveUp<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    J: FnMut(&E, Failure) -> Next,
{
    let mut n = 1u32;
    loop {
        let error = match attempt().await {
            Ok(v) => return Ok(v),
            Err(e) => e,
        };
        let gave_up = |error| GaveUp { error, attempts: n };
        if !backoff.allows_attempt(n.saturating_add(1)) {
            return Err(gave_up(error));
        }
        let delay = backoff.delay(n);
        let wait = match judge(&error, Failure { attempt: n, delay }) {
            Next::Stop => return Err(gave_up(error)),
            Next::Retry => delay,
            Next::RetryNoSooner(at_least) => delay.max(at_least),
        };
        tokio::time::sleep(wait).await;
        n = n.saturating_add(1);
    }
}

/// The longest wait a `Retry-After` may ask for: the other side is often
/// a third party, and a day-long (or overflowing) answer must not park a
/// partition or a task for that long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The wait a `Retry-After` header value asks for: delay-seconds or an
/// HTTP-date (RFC 9110 §10.2.3), measured from `now`, at most
/// [`MAX_RETRY_AFTER`]. `None` for a value that is neither; a date in the
/// past is no wait.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(now).unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::Jitter;

    fn exact(max: u32) -> Backoff {
        Backoff::exponential(Duration::from_millis(100), Duration::from_secs(1))
            .with_jitter(Jitter::None)
            .with_max_attempts(Some(max))
    }

    #[tokio::test(start_paused = true)]
    async fn retries_up_to_the_bound_with_the_backoffs_delays() {
        let calls = Cell::new(0);
        let mut seen = Vec::new();
        let start = tokio::time::Instant::now();
        let r: Result<(), _> = retry(
            &exact(4),
            || {
                calls.set(calls.get() + 1);
                async { Err("down") }
            },
            |_, f| {
                seen.push((f.attempt, f.delay.as_millis()));
                Next::Retry
            },
        )
        .await;
        assert_eq!(
            r,
            Err(GaveUp {
                error: "down",
                attempts: 4
            })
        );
        assert_eq!(calls.get(), 4);
        assert_eq!(seen, vec![(1, 100), (2, 200), (3, 400)]);
        assert_eq!(start.elapsed(), Duration::from_millis(700));
    }

    #[tokio::test(start_paused = true)]
    async fn stop_ends_at_once_and_success_returns_the_value() {
        let r: Result<(), _> = retry(&exact(9), || async { Err(7) }, |_, _| Next::Stop).await;
        assert_eq!(
            r,
            Err(GaveUp {
                error: 7,
                attempts: 1
            })
        );
        let calls = Cell::new(0);
        let r: Result<u32, GaveUp<()>> = retry(
            &exact(9),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 3 {
                        Err(())
                    } else {
                        Ok(n)
                    }
                }
            },
            |_, _| Next::Retry,
        )
        .await;
        assert_eq!(r, Ok(3));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_lengthens_but_never_shortens_the_wait() {
        let start = tokio::time::Instant::now();
        let _: Result<(), _> = retry(
            &exact(3),
            || async { Err(()) },
            |_, f| match f.attempt {
                1 => Next::RetryNoSooner(Duration::from_secs(5)),
                _ => Next::RetryNoSooner(Duration::from_millis(1)),
            },
        )
        .await;
        assert_eq!(start.elapsed(), Duration::from_millis(5_000 + 200));
    }

    #[tokio::test(start_paused = true)]
    async fn unbounded_backoff_keeps_going() {
        let calls = Cell::new(0);
        let r: Result<(), GaveUp<()>> = retry(
            &exact(1).with_max_attempts(None),
            || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 50 {
                        Err(())
                    } else {
                        Ok(())
                    }
                }
            },
            |_, _| Next::Retry,
        )
        .await;
        assert_eq!((r, calls.get()), (Ok(()), 50));
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("31536000", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            retry_after("100000000000000000", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(retry_after("-5", now), None);
    }
}
