//! Rebound's delivery schedule on core's [`Backoff`]: after failed delivery
//! *n* the next one comes `base_delay · 2^(n-1)` later, where the base is each
//! task's own `base_delay`; no jitter and, in effect, no cap (both can be set
//! on the template).

use std::time::Duration;

use rebound_core::{Backoff, Jitter};

/// The longest delay the schedule ever yields (about 136 years): "no cap"
/// that still fits epoch milliseconds.
const NO_CAP: Duration = Duration::from_secs(u32::MAX as u64);

/// Rebound's schedule: doubling, no jitter, no cap, no bound on attempts
/// (`max_retries` bounds them). The base is set per task by [`delay`].
pub fn rebound() -> Backoff {
    Backoff::exponential(Duration::ZERO, NO_CAP)
        .with_jitter(Jitter::None)
        .with_max_attempts(None)
}

/// The delay after failed delivery `failures` (≥ 1) of a task whose backoff
/// base is `base`, following `template` (its own base is ignored).
pub fn delay(template: &Backoff, base: Duration, failures: u32) -> Duration {
    Backoff {
        base,
        ..template.clone()
    }
    .delay(failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_each_tasks_base() {
        let got: Vec<u64> = (1..=4)
            .map(|n| delay(&rebound(), Duration::from_secs(5), n).as_secs())
            .collect();
        assert_eq!(got, vec![5, 10, 20, 40]);
    }

    #[test]
    fn a_cap_bounds_it_and_nothing_overflows() {
        let capped = rebound().with_cap(Duration::from_secs(30));
        assert_eq!(
            delay(&capped, Duration::from_secs(10), 3),
            Duration::from_secs(30)
        );
        let far = delay(&rebound(), Duration::from_secs(3600), 101);
        assert_eq!(far, NO_CAP);
        assert!(u64::try_from(far.as_millis()).is_ok());
    }
}
