//! The DLQ flood guard (after Sentry Arroyo's): when more than a configured
//! share of the last records, or a configured number in a row, would go to
//! the DLQ, the [`super::DeadLetterLayer`] stops dead-lettering and the
//! route freezes instead — a bad deploy or a broken downstream should not
//! move a whole topic into its DLQ.
//!
//! Tripping is sticky until the worker restarts: the record that trips it is
//! not dead-lettered (its failure escapes the layer, so its partition
//! freezes at it and nothing from it on commits), and from then on every
//! record the layer gets fails at once without running, so each partition
//! freezes at its next record. Nothing is lost: a restart (with the cause
//! fixed) runs the frozen records again. The trip is logged once at ERROR
//! and shown by the `rebound_dlq_flood_guard_tripped` gauge.

use std::collections::VecDeque;
use std::sync::Mutex;

/// When the guard trips; either condition is enough.
#[derive(Debug, Clone, PartialEq)]
pub struct FloodGuardConfig {
    /// Trip when more than this share (0–1) of the last `window` records
    /// would be dead-lettered; checked once `window` records were seen.
    pub ratio: Option<f64>,
    /// Records the ratio looks at.
    pub window: usize,
    /// Trip when this many records in a row would be dead-lettered.
    pub consecutive: Option<u32>,
}

impl Default for FloodGuardConfig {
    /// Off: no condition set, a window of 100.
    fn default() -> Self {
        FloodGuardConfig {
            ratio: None,
            window: 100,
            consecutive: None,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Last outcomes, `true` for a record bound for the DLQ.
    recent: VecDeque<bool>,
    dead_in_window: usize,
    in_a_row: u32,
    tripped: bool,
}

/// The guard's state over the records of one worker.
#[derive(Debug)]
pub struct FloodGuard {
    config: FloodGuardConfig,
    state: Mutex<State>,
}

/// What the guard says about a record bound for the DLQ.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Dead-letter it.
    Allow,
    /// This record tripped the guard: say why, once.
    Trips(String),
    /// Tripped earlier.
    Tripped,
}

impl FloodGuard {
    /// A guard; with no condition set it never trips.
    pub fn new(config: FloodGuardConfig) -> Self {
        FloodGuard {
            config: FloodGuardConfig {
                window: config.window.max(1),
                ..config
            },
            state: Mutex::new(State::default()),
        }
    }

    /// Whether it has tripped.
    pub fn tripped(&self) -> bool {
        self.state.lock().expect("flood guard lock").tripped
    }

    fn push(&self, s: &mut State, dead: bool) {
        s.recent.push_back(dead);
        s.dead_in_window += usize::from(dead);
        if s.recent.len() > self.config.window && s.recent.pop_front() == Some(true) {
            s.dead_in_window -= 1;
        }
        s.in_a_row = if dead { s.in_a_row + 1 } else { 0 };
    }

    /// A record that did not go to the DLQ (handled, or sent to a tier).
    pub fn passed(&self) {
        let mut s = self.state.lock().expect("flood guard lock");
        self.push(&mut s, false);
    }

    /// A record about to be dead-lettered: allowed, or the guard trips.
    pub fn dead_letter(&self) -> Verdict {
        let mut s = self.state.lock().expect("flood guard lock");
        if s.tripped {
            return Verdict::Tripped;
        }
        self.push(&mut s, true);
        let window = self.config.window;
        if let Some(n) = self.config.consecutive {
            if s.in_a_row >= n {
                s.tripped = true;
                return Verdict::Trips(format!("{n} records in a row would go to the DLQ"));
            }
        }
        if let Some(r) = self.config.ratio {
            if s.recent.len() >= window && s.dead_in_window as f64 > r * window as f64 {
                s.tripped = true;
                return Verdict::Trips(format!(
                    "{} of the last {window} records would go to the DLQ (more than {r})",
                    s.dead_in_window
                ));
            }
        }
        Verdict::Allow
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_on_the_ratio_once_the_window_is_full() {
        let g = FloodGuard::new(FloodGuardConfig {
            ratio: Some(0.5),
            window: 10,
            consecutive: None,
        });
        // Five failures in five records: the window (10) is not full yet.
        for _ in 0..5 {
            assert_eq!(g.dead_letter(), Verdict::Allow);
        }
        // Ten good records push them out; then five of ten is not more than half.
        for _ in 0..10 {
            g.passed();
        }
        for _ in 0..5 {
            assert_eq!(g.dead_letter(), Verdict::Allow);
        }
        assert!(
            matches!(g.dead_letter(), Verdict::Trips(why) if why.starts_with("6 of the last 10"))
        );
        assert_eq!(g.dead_letter(), Verdict::Tripped);
        assert!(g.tripped());
    }

    #[test]
    fn trips_on_a_run_and_a_pass_breaks_the_run() {
        let g = FloodGuard::new(FloodGuardConfig {
            ratio: None,
            window: 100,
            consecutive: Some(3),
        });
        assert_eq!(g.dead_letter(), Verdict::Allow);
        assert_eq!(g.dead_letter(), Verdict::Allow);
        g.passed();
        assert_eq!(g.dead_letter(), Verdict::Allow);
        assert_eq!(g.dead_letter(), Verdict::Allow);
        assert!(matches!(g.dead_letter(), Verdict::Trips(_)));
        let off = FloodGuard::new(FloodGuardConfig::default());
        assert!((0..1000).all(|_| off.dead_letter() == Verdict::Allow));
    }
}
