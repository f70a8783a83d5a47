//! Ordering lanes inside one partition: which fetched records may start now.
//!
//! - FIFO lanes (partition, unordered, batch modes) keep one queue; the
//!   partition's in-flight limit decides how many run at once.
//! - Keyed lanes (key mode) keep one queue per key hash. Only the head of a
//!   lane is ever ready or running; the next record of the key becomes ready
//!   when it finishes, so a key never has two records running and its
//!   records run in offset order.

use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use rebound_core::Record;

/// A fetched record with its tracker sequence number.
#[derive(Debug)]
pub(crate) struct Queued {
    pub rec: Record,
    pub seq: u64,
}

/// Lane id of keyless records in key mode (keyed lanes hash the key).
pub(crate) const KEYLESS_LANE: u64 = 0;

/// Records of one key behind the one that is ready or running.
#[derive(Debug, Default)]
pub(crate) struct KeyLane {
    waiting: VecDeque<Queued>,
}

/// `HashMap<u64, _>` keyed by lane ids that are already hashes.
type LaneMap = HashMap<u64, KeyLane, BuildHasherDefault<IdHasher>>;

/// Passes a `u64` through: lane ids are already well-mixed hashes.
#[derive(Debug, Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The queues of one partition.
#[derive(Debug)]
pub(crate) enum Lanes {
    Fifo(VecDeque<Queued>),
    /// A lane exists while it has a record ready or running; that record is
    /// in `ready` (or running), the ones behind it wait in the lane.
    Keyed {
        lanes: LaneMap,
        ready: VecDeque<(u64, Queued)>,
        hasher: RandomState,
    },
}

impl Lanes {
    pub fn fifo() -> Self {
        Lanes::Fifo(VecDeque::new())
    }

    pub fn keyed() -> Self {
        Lanes::Keyed {
            lanes: LaneMap::default(),
            ready: VecDeque::new(),
            hasher: RandomState::new(),
        }
    }

    /// Queues a record at the back of its lane.
    pub fn push(&mut self, item: Queued) {
        match self {
            Lanes::Fifo(q) => q.push_back(item),
            Lanes::Keyed {
                lanes,
                ready,
                hasher,
            } => {
                let id = lane_id(hasher, item.rec.key.as_deref());
                match lanes.entry(id) {
                    Entry::Vacant(v) => {
                        v.insert(KeyLane::default());
                        ready.push_back((id, item));
                    }
                    Entry::Occupied(mut o) => o.get_mut().waiting.push_back(item),
                }
            }
        }
    }

    /// Whether a record could start now (ignoring in-flight limits).
    pub fn has_ready(&self) -> bool {
        match self {
            Lanes::Fifo(q) => !q.is_empty(),
            Lanes::Keyed { ready, .. } => !ready.is_empty(),
        }
    }

    /// Takes the next startable record; its lane stays busy until `finish`.
    pub fn pop_ready(&mut self) -> Option<(u64, Queued)> {
        match self {
            Lanes::Fifo(q) => q.pop_front().map(|i| (0, i)),
            Lanes::Keyed { ready, .. } => ready.pop_front(),
        }
    }

    /// Takes up to `max` records from the front of a FIFO queue.
    pub fn pop_batch(&mut self, max: usize) -> Vec<Queued> {
        match self {
            Lanes::Fifo(q) => {
                let n = q.len().min(max);
                q.drain(..n).collect()
            }
            Lanes::Keyed { .. } => Vec::new(),
        }
    }

    /// Marks the lane's running record finished; its next record becomes ready.
    pub fn finish(&mut self, id: u64) {
        if let Lanes::Keyed { lanes, ready, .. } = self {
            if let Entry::Occupied(mut o) = lanes.entry(id) {
                match o.get_mut().waiting.pop_front() {
                    Some(next) => ready.push_back((id, next)),
                    None => {
                        o.remove();
                    }
                }
            }
        }
    }

    /// Drops every queued (not started) record; returns how many.
    pub fn clear(&mut self) -> usize {
        match self {
            Lanes::Fifo(q) => {
                let n = q.len();
                q.clear();
                n
            }
            Lanes::Keyed { lanes, ready, .. } => {
                let n = ready.len() + lanes.values().map(|l| l.waiting.len()).sum::<usize>();
                lanes.clear();
                ready.clear();
                n
            }
        }
    }

    /// Number of keyed lanes with a record ready or running (0 for FIFO).
    #[cfg(test)]
    pub fn busy_lanes(&self) -> usize {
        match self {
            Lanes::Fifo(_) => 0,
            Lanes::Keyed { lanes, ready, .. } => lanes.len() - ready.len(),
        }
    }
}

fn lane_id(hasher: &RandomState, key: Option<&[u8]>) -> u64 {
    match key {
        None => KEYLESS_LANE,
        Some(k) => {
            let mut h = hasher.build_hasher();
            h.write(k);
            // Keep 0 for keyless records; a key hashing to 0 shares lane 1
            // with whatever else does (only concurrency is lost, never order).
            h.finish().max(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(key: Option<&str>, offset: i64) -> Queued {
        let mut rec = Record::new("t", 0, offset);
        rec.key = key.map(|k| k.as_bytes().to_vec());
        Queued {
            rec,
            seq: offset as u64,
        }
    }

    #[test]
    fn same_key_never_runs_twice_and_keeps_order() {
        let mut l = Lanes::keyed();
        l.push(q(Some("a"), 0));
        l.push(q(Some("a"), 1));
        l.push(q(Some("b"), 2));
        let (la, first) = l.pop_ready().unwrap();
        assert_eq!(first.rec.offset, 0);
        let (_, second) = l.pop_ready().unwrap();
        assert_eq!(second.rec.offset, 2, "b runs while a is busy");
        assert!(l.pop_ready().is_none(), "a's second record waits");
        assert_eq!(l.busy_lanes(), 2);
        l.finish(la);
        let (_, third) = l.pop_ready().unwrap();
        assert_eq!(third.rec.offset, 1);
    }

    #[test]
    fn keyless_records_share_one_ordered_lane() {
        let mut l = Lanes::keyed();
        l.push(q(None, 0));
        l.push(q(None, 1));
        let (id, a) = l.pop_ready().unwrap();
        assert_eq!((id, a.rec.offset), (KEYLESS_LANE, 0));
        assert!(l.pop_ready().is_none());
        l.finish(id);
        assert_eq!(l.pop_ready().unwrap().1.rec.offset, 1);
    }

    #[test]
    fn clear_counts_dropped_records() {
        let mut l = Lanes::keyed();
        for i in 0..5 {
            l.push(q(Some(&format!("k{}", i % 2)), i));
        }
        l.pop_ready();
        assert_eq!(l.clear(), 4);
        assert!(!l.has_ready());
        let mut f = Lanes::fifo();
        f.push(q(None, 0));
        f.push(q(None, 1));
        f.push(q(None, 2));
        assert_eq!(f.pop_batch(2).len(), 2);
        assert_eq!(f.clear(), 1);
    }
}
