//! Revoking partitions (stop, drain, final commit point, keep what was
//! finished) and the commit points sent to the broker.

use super::{CommitPoint, Dispatcher, Tp};

impl Dispatcher {
    /// Stops dispatching the given partitions and drops their queued records.
    pub fn begin_revoke(&mut self, tps: &[Tp]) {
        for tp in tps {
            let Some(&slot) = self.index.get(tp) else {
                continue;
            };
            let p = self.parts[slot].as_mut().expect("indexed slot is live");
            p.revoking = true;
            let dropped = p.lanes.clear() + p.held.len();
            self.held -= p.held.len();
            p.held.clear();
            p.buffered -= dropped;
            self.buffered -= dropped;
            self.stats.dropped_revoked += dropped as u64;
            if p.frozen.take().is_some() {
                self.metrics.frozen_partitions.dec();
            }
        }
    }

    /// Whether none of the given partitions has a record in flight.
    pub fn drained(&self, tps: &[Tp]) -> bool {
        tps.iter().all(|tp| {
            self.index
                .get(tp)
                .and_then(|&s| self.parts[s].as_ref())
                .is_none_or(|p| p.in_flight == 0)
        })
    }

    /// Final commit points of revoked partitions, which are then forgotten.
    pub fn finish_revoke(&mut self, tps: &[Tp]) -> Vec<CommitPoint> {
        let mut out = Vec::new();
        for tp in tps {
            let Some(&slot) = self.index.get(tp) else {
                continue;
            };
            let p = self.parts[slot].as_ref().expect("indexed slot is live");
            if let Some((offset, metadata)) = p.tracker.commit_point(self.limits.metadata_budget) {
                let point = CommitPoint {
                    tp: *tp,
                    offset,
                    metadata,
                };
                self.retained.keep(&point);
                out.push(point);
            }
            self.remove(slot);
        }
        self.check_budget();
        out
    }

    /// Commits the broker acknowledged (interval, revoke and final ones).
    pub fn commit_acknowledged(&mut self, points: &[CommitPoint]) {
        self.retained.acknowledged(points);
    }

    /// Sets each partition's `rebound_consumer_lag_seconds`: the age of its
    /// oldest record fetched and not finished, 0 when none.
    pub fn observe_lag(&self) {
        let now = (self.clock)();
        for p in self.parts.iter().flatten() {
            let age = p
                .tracker
                .oldest_unfinished_timestamp()
                .map_or(0, |ts| (now - ts).max(0));
            self.metrics
                .set_lag_seconds(&p.tp.0, p.tp.1, age as f64 / 1000.0);
        }
    }

    /// Commit points that changed since last sent (all of them if `all`).
    pub fn commit_points(&mut self, all: bool) -> Vec<CommitPoint> {
        let budget = self.limits.metadata_budget;
        let mut out = Vec::new();
        for p in self.parts.iter_mut().flatten() {
            let Some((offset, metadata)) = p.tracker.commit_point(budget) else {
                continue;
            };
            let changed = p
                .last_sent
                .as_ref()
                .is_none_or(|(o, m)| *o != offset || *m != metadata);
            if all || changed {
                p.last_sent = Some((offset, metadata.clone()));
                out.push(CommitPoint {
                    tp: p.tp,
                    offset,
                    metadata,
                });
            }
        }
        out
    }

    /// Forgets what was sent for these partitions so the next tick resends.
    pub fn commit_failed(&mut self, tps: &[Tp]) {
        for tp in tps {
            if let Some(p) = self.index.get(tp).and_then(|&s| self.parts[s].as_mut()) {
                p.last_sent = None;
            }
        }
    }
}
