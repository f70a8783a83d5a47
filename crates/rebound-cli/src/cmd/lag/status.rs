//! A partition's status from a window of observations, in Burrow's sense:
//! no thresholds, only how the committed offset and the lag moved.
//!
//! Burrow also sees when each commit happened; rebound sees committed
//! offsets only, so STALL and STOP are told apart by whether records kept
//! arriving: STALL when the consumer's offset stood still while the log
//! grew, STOP when both stood still with records left to consume.

use std::collections::VecDeque;

/// One look at a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// The group's committed offset.
    pub committed: i64,
    /// The log end offset.
    pub end: i64,
    /// Records behind.
    pub lag: i64,
}

/// A partition's status over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Caught up at some point in the window, or keeping up.
    Ok,
    /// Committing, but the lag grew at every step of the window.
    Warn,
    /// The committed offset stood still while records kept arriving.
    Stall,
    /// The committed offset stood still with records left and nothing new.
    Stop,
    /// The committed offset went backwards.
    Rewind,
}

impl Status {
    /// The name printed in tables and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Stall => "STALL",
            Status::Stop => "STOP",
            Status::Rewind => "REWIND",
        }
    }
}

/// The status of a window, oldest observation first; `None` with fewer
/// than two observations.
pub fn evaluate(window: &VecDeque<Observation>) -> Option<Status> {
    if window.len() < 2 {
        return None;
    }
    let steps = || window.iter().zip(window.iter().skip(1));
    if steps().any(|(a, b)| b.committed < a.committed) {
        return Some(Status::Rewind);
    }
    if window.iter().any(|o| o.lag == 0) {
        return Some(Status::Ok);
    }
    let (first, last) = (window.front()?, window.back()?);
    if first.committed == last.committed {
        return Some(if last.end > first.end {
            Status::Stall
        } else {
            Status::Stop
        });
    }
    if steps().all(|(a, b)| b.lag > a.lag) {
        return Some(Status::Warn);
    }
    Some(Status::Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(obs: &[(i64, i64)]) -> VecDeque<Observation> {
        obs.iter()
            .map(|&(committed, end)| Observation {
                committed,
                end,
                lag: end - committed,
            })
            .collect()
    }

    #[test]
    fn statuses_follow_how_offsets_and_lag_moved() {
        assert_eq!(evaluate(&window(&[(5, 10)])), None, "one look says nothing");
        assert_eq!(evaluate(&window(&[(5, 10), (10, 10)])), Some(Status::Ok));
        assert_eq!(
            evaluate(&window(&[(5, 10), (8, 14), (12, 20)])),
            Some(Status::Warn)
        );
        assert_eq!(
            evaluate(&window(&[(5, 10), (8, 14), (12, 15)])),
            Some(Status::Ok)
        );
        assert_eq!(
            evaluate(&window(&[(5, 10), (5, 12), (5, 13)])),
            Some(Status::Stall)
        );
        assert_eq!(
            evaluate(&window(&[(5, 10), (5, 10), (5, 10)])),
            Some(Status::Stop)
        );
        assert_eq!(evaluate(&window(&[(8, 10), (3, 10)])), Some(Status::Rewind));
        assert_eq!(
            evaluate(&window(&[(10, 10), (10, 10)])),
            Some(Status::Ok),
            "idle and caught up"
        );
    }
}
