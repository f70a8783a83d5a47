//! One transaction's input: the records, their lanes and their offset
//! ranges. Pure logic.

use std::collections::{BTreeMap, HashMap};

use rebound_core::{Record, Topic};

use super::observer::InputRange;
use crate::config::Ordering;

/// The input records of one transaction, in the order they were fetched
/// (offset order within each partition).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub records: Vec<Record>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Forgets the records of partitions this member no longer owns: their
    /// offsets were not committed, so the new owner reads them again.
    pub fn drop_partitions(&mut self, revoked: &[(Topic, i32)]) {
        if !revoked.is_empty() {
            self.records
                .retain(|r| !revoked.contains(&(r.topic, r.partition)));
        }
    }

    /// Per input partition: the first offset and one past the last.
    pub fn ranges(&self) -> Vec<InputRange> {
        let mut by_tp: BTreeMap<(&str, i32), (i64, i64)> = BTreeMap::new();
        for r in &self.records {
            let e = by_tp
                .entry((&*r.topic, r.partition))
                .or_insert((r.offset, r.offset + 1));
            e.0 = e.0.min(r.offset);
            e.1 = e.1.max(r.offset + 1);
        }
        by_tp
            .into_iter()
            .map(|((topic, partition), (first, next))| InputRange {
                topic: topic.to_string(),
                partition,
                first,
                next,
            })
            .collect()
    }

    /// Indices of the records grouped into lanes: each lane runs in order,
    /// lanes run concurrently. `Key`: one lane per partition and key
    /// (keyless records share their partition's lane); `Partition`: one
    /// per partition; `Unordered`: one per record.
    pub fn lanes(&self, ordering: Ordering) -> Vec<Vec<usize>> {
        if ordering == Ordering::Unordered {
            return (0..self.records.len()).map(|i| vec![i]).collect();
        }
        let mut index: HashMap<(Topic, i32, Option<&[u8]>), usize> = HashMap::new();
        let mut lanes: Vec<Vec<usize>> = Vec::new();
        for (i, r) in self.records.iter().enumerate() {
            let key = match ordering {
                Ordering::Key => r.key.as_deref(),
                _ => None,
            };
            let lane = *index.entry((r.topic, r.partition, key)).or_insert_with(|| {
                lanes.push(Vec::new());
                lanes.len() - 1
            });
            lanes[lane].push(i);
        }
        lanes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(p: i32, o: i64, key: Option<&str>) -> Record {
        let mut r = Record::new("in", p, o);
        r.key = key.map(|k| k.as_bytes().to_vec());
        r
    }

    fn batch() -> Batch {
        Batch {
            records: vec![
                rec(0, 10, Some("a")),
                rec(1, 5, Some("a")),
                rec(0, 11, Some("b")),
                rec(0, 12, Some("a")),
                rec(0, 13, None),
                rec(1, 6, None),
                rec(0, 14, None),
            ],
        }
    }

    #[test]
    fn ranges_cover_each_partition() {
        let r = batch().ranges();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].partition, r[0].first, r[0].next), (0, 10, 15));
        assert_eq!((r[1].partition, r[1].first, r[1].next), (1, 5, 7));
    }

    #[test]
    fn key_lanes_keep_same_key_in_order_per_partition() {
        let b = batch();
        let lanes = b.lanes(Ordering::Key);
        assert_eq!(
            lanes,
            vec![vec![0, 3], vec![1], vec![2], vec![4, 6], vec![5]]
        );
        assert_eq!(
            b.lanes(Ordering::Partition),
            vec![vec![0, 2, 3, 4, 6], vec![1, 5]]
        );
        assert_eq!(b.lanes(Ordering::Unordered).len(), 7);
    }

    #[test]
    fn revoked_partitions_are_dropped() {
        let mut b = batch();
        b.drop_partitions(&[(Topic::intern("in"), 1)]);
        assert_eq!(b.len(), 5);
        assert!(b.records.iter().all(|r| r.partition == 0));
    }
}
