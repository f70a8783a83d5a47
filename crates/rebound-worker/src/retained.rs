//! A member's finished-record state kept across a lost partition.
//!
//! When a broker outage outlasts the session timeout, the member loses its
//! partitions while its commits cannot get through: everything it finished
//! since its last successful commit would run again after it rejoins (a
//! measured outage of 20 s ran 7,949 of 10,000 records twice). So the
//! dispatcher keeps the commit point of every partition it gives up, and
//! when the partition comes back while the group's committed offset is still
//! the one this member last committed — nobody moved it meanwhile — the
//! partition resumes from the kept point: records below it and the finished
//! ones encoded above it are skipped. Otherwise the group's position wins.
//! Only records this member finished are ever skipped, so at-least-once
//! holds whatever happened in between.

use std::collections::HashMap;

use crate::dispatch::{CommitPoint, Tp};

/// Where a (re)assigned partition starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Start {
    /// First offset not known to be finished.
    pub offset: Option<i64>,
    /// Finished offsets above it, encoded as in commit metadata.
    pub metadata: String,
    /// Whether this member's kept state was used (it still needs committing).
    pub restored: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Retained {
    /// The last offset this member committed successfully, per partition.
    acked: HashMap<Tp, i64>,
    /// Commit points of partitions given up, not yet assigned again.
    kept: HashMap<Tp, (i64, String)>,
}

impl Retained {
    /// Commits that the broker acknowledged.
    pub fn acknowledged(&mut self, points: &[CommitPoint]) {
        for p in points {
            self.acked.insert(p.tp, p.offset);
        }
    }

    /// The commit point of a partition this member is giving up.
    pub fn keep(&mut self, point: &CommitPoint) {
        self.kept
            .insert(point.tp, (point.offset, point.metadata.clone()));
    }

    /// Where `tp` starts when assigned with the group's `committed` offset
    /// and `metadata`.
    pub fn start(&mut self, tp: &Tp, committed: Option<i64>, metadata: &str) -> Start {
        let group = Start {
            offset: committed,
            metadata: metadata.to_string(),
            restored: false,
        };
        let Some((offset, kept_metadata)) = self.kept.remove(tp) else {
            return group;
        };
        let unmoved = committed == self.acked.get(tp).copied();
        if unmoved && committed.is_none_or(|c| c <= offset) {
            Start {
                offset: Some(offset),
                metadata: kept_metadata,
                restored: committed != Some(offset),
            }
        } else {
            group
        }
    }
}

#[cfg(test)]
mod tests {
    use rebound_core::Topic;

    use super::*;

    fn point(offset: i64, metadata: &str) -> CommitPoint {
        CommitPoint {
            tp: (Topic::intern("t"), 0),
            offset,
            metadata: metadata.into(),
        }
    }

    #[test]
    fn a_partition_back_unmoved_resumes_from_the_kept_point() {
        let mut r = Retained::default();
        let tp = point(0, "").tp;
        r.acknowledged(&[point(100, "")]);
        // Lost with 250 finished (and 300 above it); the commit never got through.
        r.keep(&point(250, "rb1:x"));
        let s = r.start(&tp, Some(100), "");
        assert_eq!(
            s,
            Start {
                offset: Some(250),
                metadata: "rb1:x".into(),
                restored: true
            }
        );
        // Kept state is used once.
        assert_eq!(r.start(&tp, Some(100), "").offset, Some(100));
    }

    #[test]
    fn a_partition_someone_else_committed_starts_where_the_group_is() {
        let mut r = Retained::default();
        let tp = point(0, "").tp;
        r.acknowledged(&[point(100, "")]);
        r.keep(&point(250, ""));
        let s = r.start(&tp, Some(180), "theirs");
        assert_eq!(
            (s.offset, s.metadata.as_str(), s.restored),
            (Some(180), "theirs", false)
        );
    }

    #[test]
    fn never_committed_on_either_side_counts_as_unmoved() {
        let mut r = Retained::default();
        let tp = point(0, "").tp;
        r.keep(&point(40, ""));
        assert_eq!(r.start(&tp, None, "").offset, Some(40));
    }

    #[test]
    fn the_group_ahead_of_the_kept_point_wins() {
        let mut r = Retained::default();
        let tp = point(0, "").tp;
        r.acknowledged(&[point(500, "")]);
        r.keep(&point(400, ""));
        assert_eq!(r.start(&tp, Some(500), "").offset, Some(500));
    }
}
