//! `rebound lag`: how far each consumer group is behind, per partition, in
//! records and in seconds, with a status from a window of looks.
//!
//! # Layout
//!
//! - `probe`: one look at the cluster (committed offsets, log start and
//!   end, the age of the oldest unconsumed record).
//! - `status`: a partition's status from a window of looks (Burrow's rules).

mod probe;
mod status;

pub use probe::{positions, Row, Scope};

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use clap::Args;

use crate::args::{self, OutputFormat};
use crate::cluster::Cluster;
use status::{evaluate, Observation, Status};

/// Looks a status is computed from.
const WINDOW: usize = 10;

/// Flags of `rebound lag`.
#[derive(Debug, Args)]
pub struct LagArgs {
    #[command(flatten)]
    cluster: Cluster,
    /// Only this consumer group (default: every consumer group).
    #[arg(long, value_parser = args::non_empty)]
    group: Option<String>,
    /// Only this topic (with --group: every partition of it, committed or not).
    #[arg(long, value_parser = args::topic)]
    topic: Option<String>,
    /// Look again every --interval and give each partition a status from
    /// its last ten looks: OK, WARN (lag growing at every look), STALL
    /// (offset still while records arrive), STOP (offset still, records
    /// left, nothing new), REWIND (offset went back).
    #[arg(long)]
    watch: bool,
    /// Time between looks with --watch.
    #[arg(long, default_value = "5s", value_parser = args::duration)]
    interval: Duration,
    /// With --watch, stop after this many looks (default: until interrupted).
    #[arg(long, requires = "watch", value_parser = clap::value_parser!(u64).range(1..))]
    rounds: Option<u64>,
    /// `table`, or `json`: one object per partition and look with group,
    /// topic, partition, committed, end, lag, lag_seconds, lost, status.
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

type Key = (String, String, i32);

/// Looks once, or every --interval with --watch.
pub async fn run(a: LagArgs) -> anyhow::Result<()> {
    let scope = Scope {
        cluster: a.cluster.clone(),
        group: a.group.clone(),
        topic: a.topic.clone(),
    };
    let mut windows: HashMap<Key, VecDeque<Observation>> = HashMap::new();
    let mut round = 0u64;
    loop {
        let s = scope.clone();
        let rows = tokio::task::spawn_blocking(move || probe::look(&s)).await??;
        let statuses: Vec<Option<Status>> = rows
            .iter()
            .map(|r| {
                let w = windows
                    .entry((r.group.clone(), r.topic.clone(), r.partition))
                    .or_default();
                w.push_back(Observation {
                    committed: r.committed.unwrap_or(r.start),
                    end: r.end,
                    lag: r.lag,
                });
                if w.len() > WINDOW {
                    w.pop_front();
                }
                evaluate(w)
            })
            .collect();
        print(&rows, &statuses, a.format);
        round += 1;
        if !a.watch || a.rounds.is_some_and(|n| round >= n) {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(a.interval) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

fn print(rows: &[Row], statuses: &[Option<Status>], format: OutputFormat) {
    match format {
        OutputFormat::Json => {
            for (r, s) in rows.iter().zip(statuses) {
                println!(
                    "{}",
                    serde_json::json!({
                        "group": r.group, "topic": r.topic, "partition": r.partition,
                        "committed": r.committed, "end": r.end, "lag": r.lag,
                        "lag_seconds": r.lag_seconds, "lost": r.lost,
                        "status": s.map(Status::as_str),
                    })
                );
            }
        }
        OutputFormat::Table => {
            let mut t = crate::cmd::table(&[
                "group",
                "topic",
                "partition",
                "committed",
                "end",
                "lag",
                "lag (s)",
                "lost",
                "status",
            ]);
            for (r, s) in rows.iter().zip(statuses) {
                t.add_row(vec![
                    r.group.clone(),
                    r.topic.clone(),
                    r.partition.to_string(),
                    r.committed.map_or_else(|| "-".into(), |c| c.to_string()),
                    r.end.to_string(),
                    r.lag.to_string(),
                    r.lag_seconds
                        .map_or_else(|| "-".into(), |s| format!("{s:.1}")),
                    r.lost.to_string(),
                    s.map_or("-", Status::as_str).to_string(),
                ]);
            }
            if rows.is_empty() {
                println!("no committed offsets");
            } else {
                println!("{t}");
            }
        }
    }
}
