//! Ordering lanes inside one partition: which fetched records may start now.
//!
//! - FIFO lanes (partition, unordered, batch modes) keep one queue; the
//!   partition's in-flight limit decides how many run at once.
//! - Keyed lanes (key mode) keep one queue per key hash. A lane is *ready*
//!   when it has queued records and none in flight, so a key never has two
//!   records running and its records run in offset order.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

use rebound_core::Record;

/// A fetched record with its tracker sequence number.
#[derive(Debug)]
pub(crate) struct Queued {
    pub rec: Record,
    pub seq: u64,
}

/// Lane id of keyless records in key mode (keyed lanes hash the key).
pub(crate) const KEYLESS_LANE: u64 = 0;

#[derive(Debug, Default)]
pub(crate) struct KeyLane {
    busy: bool,
    queue: VecDeque<Queued>,
}

/// The queues of one partition.
#[derive(Debug)]
pub(crate) enum Lanes {
    Fifo(VecDeque<Queued>),
    Keyed {
        lanes: HashMap<u64, KeyLane>,
        ready: VecDeque<u64>,
        hasher: std::collections::hash_map::RandomState,
    },
}

impl Lanes {
    pub fn fifo() -> Self {
        Lanes::Fifo(VecDeque::new())
    }

    pub fn keyed() -> Self {
        Lanes::Keyed {
            lanes: HashMap::new(),
            ready: VecDeque::new(),
            hasher: Default::default(),
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
                let lane = lanes.entry(id).or_default();
                if !lane.busy && lane.queue.is_empty() {
                    ready.push_back(id);
                }
                lane.queue.push_back(item);
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

    /// Takes the next startable record and marks its lane busy.
    pub fn pop_ready(&mut self) -> Option<(u64, Queued)> {
        match self {
            Lanes::Fifo(q) => q.pop_front().map(|i| (0, i)),
            Lanes::Keyed { lanes, ready, .. } => {
                let id = ready.pop_front()?;
                let lane = lanes.get_mut(&id).expect("ready lane exists");
                lane.busy = true;
                let item = lane.queue.pop_front().expect("ready lane has records");
                Some((id, item))
            }
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

    /// Marks the lane's in-flight record finished; its next record becomes ready.
    pub fn finish(&mut self, id: u64) {
        if let Lanes::Keyed { lanes, ready, .. } = self {
            if let Some(lane) = lanes.get_mut(&id) {
                lane.busy = false;
                if lane.queue.is_empty() {
                    lanes.remove(&id);
                } else {
                    ready.push_back(id);
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
                let n = lanes.values().map(|l| l.queue.len()).sum();
                lanes.clear();
                ready.clear();
                n
            }
        }
    }

    /// Number of keyed lanes with a record in flight (0 for FIFO).
    #[cfg(test)]
    pub fn busy_lanes(&self) -> usize {
        match self {
            Lanes::Fifo(_) => 0,
            Lanes::Keyed { lanes, .. } => lanes.values().filter(|l| l.busy).count(),
        }
    }
}

fn lane_id(hasher: &std::collections::hash_map::RandomState, key: Option<&[u8]>) -> u64 {
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
