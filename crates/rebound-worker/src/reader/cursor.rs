//! Per-partition progress: which fetched records to hand on, and when the
//! partition is done.

/// One partition's progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// First offset to hand on.
    pub start: i64,
    /// Exclusive end; `None` while following without a bound.
    pub stop: Option<i64>,
    /// Skip records older than this (epoch ms) until the first that is not.
    pub not_before: Option<i64>,
    follow: bool,
    done: bool,
    /// Offset after the last record seen.
    next: i64,
}

impl Cursor {
    pub fn new(start: i64, stop: Option<i64>, not_before: Option<i64>, follow: bool) -> Self {
        Cursor {
            start,
            stop,
            not_before,
            follow,
            done: stop.is_some_and(|s| start >= s),
            next: start,
        }
    }

    /// Where to fetch from.
    pub fn fetch_from(&self) -> i64 {
        self.stop.map_or(self.start, |s| self.start.min(s))
    }

    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Whether to hand on the record at `offset` with `timestamp`.
    pub fn accept(&mut self, offset: i64, timestamp: Option<i64>) -> bool {
        if self.done || offset < self.start {
            return false;
        }
        self.next = offset + 1;
        if self.stop.is_some_and(|s| offset >= s) {
            self.done = true;
            return false;
        }
        if self.stop.is_some_and(|s| offset + 1 >= s) {
            self.done = true;
        }
        match (self.not_before, timestamp) {
            (Some(nb), Some(ts)) if ts < nb => false,
            _ => {
                self.not_before = None;
                true
            }
        }
    }

    /// The broker said the fetch position reached the end of the partition:
    /// every record below the stop has been seen.
    pub fn at_eof(&mut self) {
        if !self.follow && self.stop.is_some() {
            self.done = true;
        }
    }

    /// Records still to come before the stop, at most (for progress bars).
    pub fn remaining(&self) -> u64 {
        match self.stop {
            Some(s) if !self.done => u64::try_from(s - self.next).unwrap_or(0),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_on_start_to_stop_and_finishes_at_the_last() {
        let mut c = Cursor::new(3, Some(6), None, false);
        assert!(!c.accept(2, None));
        assert!(c.accept(3, None));
        assert!(c.accept(4, None));
        assert!(!c.is_done());
        assert_eq!(c.remaining(), 1);
        assert!(c.accept(5, None));
        assert!(c.is_done());
        assert!(!c.accept(6, None));
    }

    #[test]
    fn empty_range_is_done_at_once() {
        assert!(Cursor::new(5, Some(5), None, false).is_done());
        assert!(Cursor::new(9, Some(5), None, false).is_done());
        assert_eq!(Cursor::new(9, Some(5), None, false).fetch_from(), 5);
        assert!(!Cursor::new(9, None, None, true).is_done());
    }

    #[test]
    fn skips_older_records_until_the_first_at_or_after_the_time() {
        let mut c = Cursor::new(0, Some(10), Some(100), false);
        assert!(!c.accept(0, Some(50)));
        assert!(c.accept(1, Some(100)));
        // Once past the time, later records are handed on whatever their time.
        assert!(c.accept(2, Some(10)));
    }

    #[test]
    fn eof_finishes_unless_following() {
        let mut c = Cursor::new(0, Some(10), None, false);
        c.at_eof();
        assert!(c.is_done());
        let mut f = Cursor::new(0, Some(10), None, true);
        f.at_eof();
        assert!(!f.is_done());
        let mut unbounded = Cursor::new(0, None, None, true);
        unbounded.at_eof();
        assert!(!unbounded.is_done());
    }
}
