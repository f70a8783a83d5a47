//! `rebound group list|describe|reset`: consumer groups, their members and
//! committed offsets, and moving those offsets safely.
//!
//! # Layout
//!
//! - `members`: groups, states, members and their assignments.
//! - `reset`: the `--to` grammar, the plan and applying it.

mod members;
mod reset;

use clap::{Args, Subcommand};

use crate::args::{self, OutputFormat};
use crate::cluster::Cluster;
use crate::cmd::table;
use members::Group;

/// Flags of `rebound group`.
#[derive(Debug, Args)]
pub struct GroupArgs {
    #[command(subcommand)]
    command: GroupCommand,
}

#[derive(Debug, Subcommand)]
enum GroupCommand {
    /// List the groups with their state and member count.
    List(ListArgs),
    /// Show a group's members, their assignments and its committed offsets.
    Describe(DescribeArgs),
    /// Move a group's committed offsets on a topic. Prints the plan (old →
    /// new per partition); applies it only with --execute, and refuses
    /// while the group has members.
    Reset(ResetArgs),
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    cluster: Cluster,
    /// `table` or `json` (one object per group).
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

#[derive(Debug, Args)]
struct DescribeArgs {
    #[command(flatten)]
    cluster: Cluster,
    /// The group.
    #[arg(long, value_parser = args::non_empty)]
    group: String,
    /// `table` or `json` (one object: group, state, members, offsets).
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

#[derive(Debug, Args)]
struct ResetArgs {
    #[command(flatten)]
    cluster: Cluster,
    /// The group.
    #[arg(long, value_parser = args::non_empty)]
    group: String,
    /// The topic whose offsets move (every partition of it).
    #[arg(long, value_parser = args::topic)]
    topic: String,
    /// earliest, latest, an offset, shift:N (negative moves back), or a
    /// time: RFC 3339, @EPOCH_MS, or an age such as 1h (the first record at
    /// or after it).
    #[arg(long, value_parser = reset::target)]
    to: reset::Target,
    /// Apply the plan (without it nothing changes).
    #[arg(long)]
    execute: bool,
    /// `table` or `json` (one object per partition: partition, old, new).
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

/// Runs one `group` subcommand.
pub async fn run(a: GroupArgs) -> anyhow::Result<()> {
    match a.command {
        GroupCommand::List(a) => {
            let c = a.cluster.clone();
            let groups = tokio::task::spawn_blocking(move || members::groups(&c, None)).await??;
            match a.format {
                OutputFormat::Json => {
                    for g in &groups {
                        println!(
                            "{}",
                            serde_json::json!({"group": g.group, "state": g.state,
                                "protocol_type": g.protocol_type, "members": g.members.len()})
                        );
                    }
                }
                OutputFormat::Table => {
                    let mut t = table(&["group", "state", "protocol", "members"]);
                    for g in &groups {
                        t.add_row(vec![
                            g.group.clone(),
                            g.state.clone(),
                            g.protocol_type.clone(),
                            g.members.len().to_string(),
                        ]);
                    }
                    println!("{t}");
                }
            }
        }
        GroupCommand::Describe(a) => describe(a).await?,
        GroupCommand::Reset(a) => reset(a).await?,
    }
    Ok(())
}

/// The group as the coordinator describes it; `None` when it does not
/// know it (or it is dead). Failing to ask is an error, never `None`.
async fn find_group(cluster: &Cluster, group: &str) -> anyhow::Result<Option<Group>> {
    let (c, g) = (cluster.clone(), group.to_string());
    let found = tokio::task::spawn_blocking(move || members::groups(&c, Some(&g))).await??;
    Ok(found
        .into_iter()
        .find(|g| g.group == group && g.state != "Dead"))
}

async fn describe(a: DescribeArgs) -> anyhow::Result<()> {
    let group = find_group(&a.cluster, &a.group)
        .await?
        .ok_or_else(|| anyhow::anyhow!("group {} does not exist", a.group))?;
    let scope = super::lag::Scope {
        cluster: a.cluster.clone(),
        group: Some(a.group.clone()),
        topic: None,
    };
    // Offsets and lag in records only: describe shows no ages, so no
    // record is read.
    let offsets = tokio::task::spawn_blocking(move || super::lag::positions(&scope)).await??;
    match a.format {
        OutputFormat::Json => {
            let offsets: Vec<serde_json::Value> = offsets
                .iter()
                .map(|r| {
                    serde_json::json!({"topic": r.topic, "partition": r.partition,
                        "committed": r.committed, "end": r.end, "lag": r.lag})
                })
                .collect();
            println!(
                "{}",
                serde_json::json!({"group": group.group, "state": group.state,
                    "members": group.members, "offsets": offsets})
            );
        }
        OutputFormat::Table => {
            println!(
                "{} ({}, {} members)",
                group.group,
                group.state,
                group.members.len()
            );
            if !group.members.is_empty() {
                let mut t = table(&["member", "client", "host", "assigned"]);
                for m in &group.members {
                    let assigned: Vec<String> = m
                        .assignment
                        .iter()
                        .map(|(topic, ps)| format!("{topic}: {ps:?}"))
                        .collect();
                    t.add_row(vec![
                        m.member_id.clone(),
                        m.client_id.clone(),
                        m.host.clone(),
                        assigned.join("; "),
                    ]);
                }
                println!("{t}");
            }
            let mut t = table(&["topic", "partition", "committed", "end", "lag"]);
            for r in &offsets {
                t.add_row(vec![
                    r.topic.clone(),
                    r.partition.to_string(),
                    r.committed.map_or_else(|| "-".into(), |c| c.to_string()),
                    r.end.to_string(),
                    r.lag.to_string(),
                ]);
            }
            println!("{t}");
        }
    }
    Ok(())
}

async fn reset(a: ResetArgs) -> anyhow::Result<()> {
    let (c, g, t, to) = (a.cluster.clone(), a.group.clone(), a.topic.clone(), a.to);
    let moves = tokio::task::spawn_blocking(move || reset::plan(&c, &g, &t, to)).await??;
    match a.format {
        OutputFormat::Json => {
            for m in &moves {
                println!("{}", serde_json::to_string(m)?);
            }
        }
        OutputFormat::Table => {
            let mut t = table(&["partition", "old", "new"]);
            for m in &moves {
                t.add_row(vec![
                    m.partition.to_string(),
                    m.old.map_or_else(|| "-".into(), |o| o.to_string()),
                    m.new.to_string(),
                ]);
            }
            println!("{} on {}\n{t}", a.group, a.topic);
        }
    }
    if !a.execute {
        eprintln!("plan only: nothing changed (add --execute to apply it)");
        return Ok(());
    }
    // Members would overwrite the reset with their next commit.
    // A group the coordinator does not know has no members.
    let members = find_group(&a.cluster, &a.group)
        .await?
        .map_or(0, |g| g.members.len());
    anyhow::ensure!(
        members == 0,
        "group {} has {members} active member(s): stop them before resetting its offsets",
        a.group
    );
    let (c, g, t) = (a.cluster.clone(), a.group.clone(), a.topic.clone());
    tokio::task::spawn_blocking(move || reset::apply(&c, &g, &t, &moves)).await??;
    eprintln!("applied: group {} moved on {}", a.group, a.topic);
    Ok(())
}
