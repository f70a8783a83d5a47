//! `rebound group reset`: moves a group's committed offsets on a topic.
//! The plan (old → new per partition) is always printed; it is applied
//! only with `--execute`, and never while the group has members.

use std::collections::BTreeMap;

use anyhow::Context;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::cluster::Cluster;

/// Where to move the offsets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The first offset still stored.
    Earliest,
    /// The end: skip everything not yet consumed.
    Latest,
    /// This offset (clamped to what the partition holds).
    Offset(i64),
    /// The first record at or after this time (epoch ms); the end if none.
    Time(i64),
    /// The committed offset moved by this many (clamped).
    Shift(i64),
}

/// Parses `--to`: `earliest`, `latest`, `shift:N`, an offset, or a time
/// (RFC 3339, `@EPOCH_MS`, or an age such as `1h`).
pub fn target(s: &str) -> Result<Target, String> {
    let s = s.trim();
    match s {
        "earliest" => return Ok(Target::Earliest),
        "latest" => return Ok(Target::Latest),
        _ => {}
    }
    if let Some(n) = s.strip_prefix("shift:") {
        return n
            .trim()
            .parse()
            .map(Target::Shift)
            .map_err(|_| format!("{s:?}: shift:N needs a whole number such as shift:-100"));
    }
    if let Ok(o) = s.parse::<i64>() {
        return if o >= 0 {
            Ok(Target::Offset(o))
        } else {
            Err(format!(
                "{s:?}: an offset cannot be negative (shift:{o} moves back)"
            ))
        };
    }
    let time = s.strip_prefix('@').unwrap_or(s);
    crate::time::point_in_time(time)
        .map(Target::Time)
        .map_err(|e| format!("--to {e}; or earliest, latest, an offset, shift:N"))
}

/// One partition's move.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Move {
    /// The partition.
    pub partition: i32,
    /// Its committed offset now (`None`: never committed).
    pub old: Option<i64>,
    /// Where it goes.
    pub new: i64,
}

/// The moves of every partition of `topic` for `group`. Blocking.
pub fn plan(cluster: &Cluster, group: &str, topic: &str, to: Target) -> anyhow::Result<Vec<Move>> {
    let c = cluster.consumer(group)?;
    let md = c
        .fetch_metadata(Some(topic), cluster.timeout)
        .with_context(|| format!("could not reach Kafka brokers at {}", cluster.brokers))?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().iter().map(|p| p.id()).collect())
        .unwrap_or_default();
    anyhow::ensure!(!parts.is_empty(), "topic {topic} does not exist");
    let mut tpl = TopicPartitionList::new();
    for p in &parts {
        tpl.add_partition(topic, *p);
    }
    let committed = c.committed_offsets(tpl, cluster.timeout)?;
    let by_time: BTreeMap<i32, i64> = match to {
        Target::Time(ms) => {
            let mut ask = TopicPartitionList::new();
            for p in &parts {
                ask.add_partition_offset(topic, *p, Offset::Offset(ms))?;
            }
            c.offsets_for_times(ask, cluster.timeout)?
                .elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    Offset::Offset(o) => Some((e.partition(), o)),
                    _ => None,
                })
                .collect()
        }
        _ => BTreeMap::new(),
    };
    let mut moves = Vec::new();
    for p in parts {
        let (start, end) = c.fetch_watermarks(topic, p, cluster.timeout)?;
        let old = committed
            .find_partition(topic, p)
            .and_then(|e| match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            });
        let new = match to {
            Target::Earliest => start,
            Target::Latest => end,
            Target::Offset(o) => o,
            Target::Time(_) => by_time.get(&p).copied().unwrap_or(end),
            Target::Shift(n) => old.unwrap_or(start).saturating_add(n),
        };
        moves.push(Move {
            partition: p,
            old,
            new: new.clamp(start, end),
        });
    }
    Ok(moves)
}

/// Commits the plan for `group` (which must have no members). Blocking.
pub fn apply(cluster: &Cluster, group: &str, topic: &str, moves: &[Move]) -> anyhow::Result<()> {
    let c = cluster.consumer(group)?;
    let mut tpl = TopicPartitionList::new();
    for m in moves {
        tpl.add_partition_offset(topic, m.partition, Offset::Offset(m.new))?;
    }
    c.commit(&tpl, CommitMode::Sync)
        .with_context(|| format!("committing the new offsets of group {group}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_reads_each_form_and_names_bad_ones() {
        assert_eq!(target("earliest"), Ok(Target::Earliest));
        assert_eq!(target("latest"), Ok(Target::Latest));
        assert_eq!(target("42"), Ok(Target::Offset(42)));
        assert_eq!(target("shift:-10"), Ok(Target::Shift(-10)));
        assert_eq!(
            target("@1714564800000"),
            Ok(Target::Time(1_714_564_800_000))
        );
        assert_eq!(
            target("2024-05-01T12:00:00Z"),
            Ok(Target::Time(1_714_564_800_000))
        );
        assert!(target("shift:x").unwrap_err().contains("shift:N"));
        assert!(target("-3").unwrap_err().contains("shift:-3"));
        assert!(target("soon").unwrap_err().starts_with("--to "));
    }
}
