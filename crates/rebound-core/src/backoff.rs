//! Exponential backoff with a cap, optional full jitter and a bound on attempts.

use std::time::Duration;

/// How much randomness to apply to each delay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// Exact delays.
    None,
    /// A uniform delay in `[0, computed]` (AWS "full jitter").
    Full,
}

/// `delay(n) = min(cap, base * multiplier^(n-1))` for retry `n` (1-based),
/// jittered, for at most `max_attempts` attempts in total.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub base: Duration,
    /// Growth factor between retries (2.0 doubles).
    pub multiplier: f64,
    /// Upper bound on any single delay.
    pub cap: Duration,
    /// Randomness.
    pub jitter: Jitter,
    /// Total attempts including the first; `None` means unbounded.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(100),
            multiplier: 2.0,
            cap: Duration::from_secs(30),
            jitter: Jitter::Full,
            max_attempts: Some(5),
        }
    }
}

impl Backoff {
    /// Exponential backoff from `base`, doubling, capped at `cap`, full jitter.
    pub fn exponential(base: Duration, cap: Duration) -> Self {
        Backoff {
            base,
            cap,
            ..Backoff::default()
        }
    }

    /// Sets the total number of attempts (`None`: unbounded).
    pub fn with_max_attempts(mut self, max: Option<u32>) -> Self {
        self.max_attempts = max;
        self
    }

    /// Sets the jitter.
    pub fn with_jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the upper bound on any single delay.
    pub fn with_cap(mut self, cap: Duration) -> Self {
        self.cap = cap;
        self
    }

    /// Sets the multiplier.
    pub fn with_multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// The un-jittered delay before retry `retry` (1 = first retry).
    pub fn nominal_delay(&self, retry: u32) -> Duration {
        let exp = retry.saturating_sub(1).min(64) as i32;
        let secs = self.base.as_secs_f64() * self.multiplier.powi(exp);
        let cap = self.cap.as_secs_f64();
        if !secs.is_finite() || secs >= cap {
            self.cap
        } else {
            Duration::from_secs_f64(secs.max(0.0))
        }
    }

    /// The delay before retry `retry`, jittered with `unit` in `[0, 1)`.
    pub fn delay_with(&self, retry: u32, unit: f64) -> Duration {
        let nominal = self.nominal_delay(retry);
        match self.jitter {
            Jitter::None => nominal,
            Jitter::Full => nominal.mul_f64(unit.clamp(0.0, 1.0)),
        }
    }

    /// The delay before retry `retry`, jittered from the thread RNG.
    pub fn delay(&self, retry: u32) -> Duration {
        self.delay_with(retry, rand::random::<f64>())
    }

    /// Whether attempt number `attempt` (1-based) may be made.
    pub fn allows_attempt(&self, attempt: u32) -> bool {
        self.max_attempts.is_none_or(|m| attempt <= m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_then_caps() {
        let b = Backoff::exponential(Duration::from_millis(100), Duration::from_millis(500))
            .with_jitter(Jitter::None);
        let d: Vec<u128> = (1..=5).map(|n| b.delay(n).as_millis()).collect();
        assert_eq!(d, vec![100, 200, 400, 500, 500]);
    }

    #[test]
    fn full_jitter_stays_within_nominal() {
        let b = Backoff::exponential(Duration::from_millis(100), Duration::from_secs(10));
        for n in 1..10 {
            assert!(b.delay(n) <= b.nominal_delay(n));
        }
        assert_eq!(b.delay_with(3, 0.5), Duration::from_millis(200));
    }

    #[test]
    fn max_attempts_bounds() {
        let b = Backoff::default().with_max_attempts(Some(3));
        assert!(b.allows_attempt(3));
        assert!(!b.allows_attempt(4));
        assert!(Backoff::default()
            .with_max_attempts(None)
            .allows_attempt(1_000_000));
    }

    #[test]
    fn huge_retry_numbers_do_not_overflow() {
        let b = Backoff::exponential(Duration::from_secs(1), Duration::from_secs(60));
        assert_eq!(b.nominal_delay(u32::MAX), Duration::from_secs(60));
    }
}
