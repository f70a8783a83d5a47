//! Exponential backoff with Rebound's schedule, plus an optional cap and jitter.

use std::time::Duration;

use rand::Rng;

/// After failure `n` (1-based) the next delivery comes `base · 2^(n-1)` later.
/// `cap` bounds the delay and `jitter` (0.0–1.0) subtracts up to that fraction
/// at random; both are off by default, which is Rebound's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Backoff {
    /// Largest delay between deliveries.
    pub cap: Option<Duration>,
    /// Fraction of the delay removed at random (0 = none).
    pub jitter: f64,
}

impl Backoff {
    /// Rebound's schedule: no cap, no jitter.
    pub fn rebound() -> Self {
        Self::default()
    }

    /// Caps every delay at `cap`.
    pub fn with_cap(mut self, cap: Duration) -> Self {
        self.cap = Some(cap);
        self
    }

    /// Removes up to `fraction` of each delay at random (clamped to 0–1).
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// The delay before the next delivery after failure `failures` (≥ 1) of a
    /// task with backoff base `base`.
    pub fn delay(&self, base: Duration, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(40);
        let mut d = base.saturating_mul(1u32 << exp.min(31));
        if exp > 31 {
            d = d.saturating_mul(1u32 << (exp - 31));
        }
        if let Some(cap) = self.cap {
            d = d.min(cap);
        }
        if self.jitter > 0.0 {
            let cut = rand::rng().random_range(0.0..=self.jitter);
            d = d.mul_f64(1.0 - cut);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_base() {
        let b = Backoff::rebound();
        let base = Duration::from_secs(5);
        let got: Vec<u64> = (1..=4).map(|n| b.delay(base, n).as_secs()).collect();
        assert_eq!(got, vec![5, 10, 20, 40]);
    }

    #[test]
    fn cap_and_jitter_bound_the_delay() {
        let b = Backoff::rebound()
            .with_cap(Duration::from_secs(30))
            .with_jitter(0.5);
        for n in 1..=60 {
            let d = b.delay(Duration::from_secs(10), n);
            assert!(d <= Duration::from_secs(30), "{d:?}");
            if n >= 3 {
                assert!(d >= Duration::from_secs(15), "{d:?}");
            }
        }
    }
}
