//! One look at the cluster: each group's committed offsets, each partition's
//! log start and end, and the age of the oldest record not yet consumed.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::cluster::Cluster;

/// What to look at and how.
#[derive(Debug, Clone)]
pub struct Scope {
    pub cluster: Cluster,
    pub group: Option<String>,
    pub topic: Option<String>,
}

/// One group's position in one partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    /// The committed offset (`None`: the group never committed here).
    pub committed: Option<i64>,
    /// The first offset still stored.
    pub start: i64,
    /// The log end offset.
    pub end: i64,
    /// Records between the consumer's position and the end.
    pub lag: i64,
    /// Age of the oldest record not consumed, in seconds (0 when caught up;
    /// `None` when it could not be read).
    pub lag_seconds: Option<f64>,
    /// Records removed by retention before the group consumed them (its
    /// committed offset is below the log start).
    pub lost: i64,
}

/// Looks once, with the age of each group's oldest unconsumed record.
/// Blocking.
pub fn look(scope: &Scope) -> anyhow::Result<Vec<Row>> {
    let mut rows = positions(scope)?;
    ages(scope, &mut rows)?;
    Ok(rows)
}

/// Committed offsets, log start and end, lag in records (`lag_seconds`
/// left `None`: no record is read). Blocking.
pub fn positions(scope: &Scope) -> anyhow::Result<Vec<Row>> {
    let meta = scope.cluster.consumer("rebound-lag")?;
    let groups = match &scope.group {
        Some(g) => vec![g.clone()],
        None => {
            let list = meta
                .fetch_group_list(None, scope.cluster.timeout)
                .with_context(|| {
                    format!("could not list the groups of {}", scope.cluster.brokers)
                })?;
            let mut g: Vec<String> = list
                .groups()
                .iter()
                .filter(|g| g.protocol_type() == "consumer" || g.protocol_type().is_empty())
                .map(|g| g.name().to_string())
                .collect();
            g.sort();
            g
        }
    };
    let md = meta
        .fetch_metadata(scope.topic.as_deref(), scope.cluster.timeout)
        .with_context(|| format!("could not reach Kafka brokers at {}", scope.cluster.brokers))?;
    let mut partitions: Vec<(String, i32)> = Vec::new();
    for t in md.topics() {
        if t.error().is_some() || t.name().starts_with("__") {
            continue;
        }
        partitions.extend(
            t.partitions()
                .iter()
                .map(|p| (t.name().to_string(), p.id())),
        );
    }
    if let Some(t) = &scope.topic {
        anyhow::ensure!(
            partitions.iter().any(|(name, _)| name == t),
            "topic {t} does not exist"
        );
    }
    // Log start and end, asked only for the partitions shown, once each; a
    // partition that cannot answer (no leader) is left out with a warning
    // rather than failing the whole look.
    let mut watermarks: HashMap<(String, i32), Option<(i64, i64)>> = HashMap::new();
    let mut rows = Vec::new();
    for group in groups {
        let c = scope.cluster.consumer(&group)?;
        let mut tpl = TopicPartitionList::new();
        for (topic, p) in &partitions {
            tpl.add_partition(topic, *p);
        }
        let committed = c
            .committed_offsets(tpl, scope.cluster.timeout)
            .with_context(|| format!("committed offsets of group {group}"))?;
        for e in committed.elements() {
            let committed = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            // Without --group, only what a group consumes; with it, every
            // partition of the topic asked for.
            if committed.is_none() && (scope.group.is_none() || scope.topic.is_none()) {
                continue;
            }
            let key = (e.topic().to_string(), e.partition());
            let marks = watermarks.entry(key).or_insert_with(|| {
                match meta.fetch_watermarks(e.topic(), e.partition(), scope.cluster.timeout) {
                    Ok(w) => Some(w),
                    Err(err) => {
                        tracing::warn!(topic = e.topic(), partition = e.partition(),
                            error = %rebound_core::DisplayChain(&err), "partition offsets unavailable; left out");
                        None
                    }
                }
            });
            let Some((start, end)) = *marks else { continue };
            let at = committed.unwrap_or(start).max(start);
            rows.push(Row {
                group: group.clone(),
                topic: e.topic().to_string(),
                partition: e.partition(),
                committed,
                start,
                end,
                lag: (end - at).max(0),
                lag_seconds: None,
                lost: committed.map_or(0, |c| (start - c).max(0)),
            });
        }
    }
    Ok(rows)
}

/// Fills `lag_seconds`: 0 when caught up, else the age of the first record
/// at or after the group's position, read without a group. Each group's
/// position is looked up on its own; a record that does not arrive within a
/// few seconds (a transaction marker at the end, say) leaves `None`.
fn ages(scope: &Scope, rows: &mut [Row]) -> anyhow::Result<()> {
    let position = |r: &Row| r.committed.unwrap_or(r.start).max(r.start);
    let mut wanted: BTreeMap<(String, i32), Vec<i64>> = BTreeMap::new();
    for r in rows.iter_mut() {
        if r.lag == 0 {
            r.lag_seconds = Some(0.0);
        } else {
            wanted
                .entry((r.topic.clone(), r.partition))
                .or_default()
                .push(position(r));
        }
    }
    let mut found: HashMap<(String, i32, i64), i64> = HashMap::new();
    let wait = scope.cluster.timeout.min(Duration::from_secs(5));
    // One pass per distinct position of a partition (groups usually share few).
    let mut round = 0;
    loop {
        let mut tpl = TopicPartitionList::new();
        let mut asked: Vec<(String, i32, i64)> = Vec::new();
        for ((topic, p), positions) in &mut wanted {
            positions.sort_unstable();
            positions.dedup();
            if let Some(&at) = positions.get(round) {
                tpl.add_partition_offset(topic, *p, Offset::Offset(at))?;
                asked.push((topic.clone(), *p, at));
            }
        }
        if asked.is_empty() {
            break;
        }
        let c = scope.cluster.consumer("rebound-lag")?;
        c.assign(&tpl)
            .context("reading the oldest unconsumed records")?;
        let deadline = Instant::now() + wait;
        let mut open: Vec<(String, i32, i64)> = asked;
        while !open.is_empty() && Instant::now() < deadline {
            let Some(Ok(m)) = c.poll(Duration::from_millis(100)) else {
                continue;
            };
            let hit = open
                .iter()
                .position(|(t, p, at)| t == m.topic() && *p == m.partition() && m.offset() >= *at);
            if let Some(i) = hit {
                let key = open.swap_remove(i);
                if let Some(ts) = m.timestamp().to_millis() {
                    found.insert(key, ts);
                }
            }
        }
        round += 1;
    }
    let now = rebound_core::epoch_ms();
    for r in rows.iter_mut().filter(|r| r.lag > 0) {
        r.lag_seconds = found
            .get(&(r.topic.clone(), r.partition, position(r)))
            .map(|ts| (now - ts).max(0) as f64 / 1000.0);
    }
    Ok(())
}
