//! `rebound topic create|list|describe|delete`: topics as kcat, rpk and
//! kafkactl users expect to manage them.

use clap::{Args, Subcommand};
use rebound_producer::admin::{self, TopicInfo, TopicSpec};

use crate::args::{self, OutputFormat};
use crate::cluster::Cluster;
use crate::cmd::table;

/// Flags of `rebound topic`.
#[derive(Debug, Args)]
pub struct TopicArgs {
    #[command(subcommand)]
    command: TopicCommand,
}

#[derive(Debug, Subcommand)]
enum TopicCommand {
    /// Create a topic (an existing one is an error).
    Create(CreateArgs),
    /// List the topics and their partition counts.
    List(ListArgs),
    /// Show a topic's partitions (leader, replicas, earliest and latest
    /// offsets) and the configs set on it.
    Describe(NamedArgs),
    /// Delete a topic and all its records (asks for `--yes`).
    Delete(DeleteArgs),
}

#[derive(Debug, Args)]
struct CreateArgs {
    #[command(flatten)]
    cluster: Cluster,
    /// The topic to create.
    #[arg(long, value_parser = args::topic)]
    topic: String,
    /// Partition count.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    partitions: i32,
    /// Replicas of each partition.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    replication_factor: i32,
    /// A topic config, e.g. cleanup.policy=compact or retention.ms=60000 (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = args::key_value)]
    configs: Vec<(String, String)>,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    cluster: Cluster,
    /// Also list internal topics (names starting with `__`).
    #[arg(long)]
    all: bool,
    /// `table` or `json` (one object per line: topic, partitions).
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

#[derive(Debug, Args)]
struct NamedArgs {
    #[command(flatten)]
    cluster: Cluster,
    /// The topic.
    #[arg(long, value_parser = args::topic)]
    topic: String,
    /// `table` or `json`.
    #[arg(long, value_enum, default_value_t)]
    format: OutputFormat,
}

#[derive(Debug, Args)]
struct DeleteArgs {
    #[command(flatten)]
    cluster: Cluster,
    /// The topic.
    #[arg(long, value_parser = args::topic)]
    topic: String,
    /// Confirms the deletion: without it nothing is deleted.
    #[arg(long)]
    yes: bool,
}

/// Runs one `topic` subcommand.
pub async fn run(a: TopicArgs) -> anyhow::Result<()> {
    match a.command {
        TopicCommand::Create(a) => {
            let spec = TopicSpec {
                name: a.topic.clone(),
                partitions: a.partitions,
                replication: a.replication_factor,
                configs: a.configs,
            };
            let c = &a.cluster;
            admin::create_topic_with(&c.brokers, &c.properties()?, &spec, c.timeout).await?;
            println!(
                "created topic {} ({} partitions, replication factor {})",
                spec.name, spec.partitions, spec.replication
            );
        }
        TopicCommand::List(a) => {
            let (c, props) = (a.cluster.clone(), a.cluster.properties()?);
            let topics = tokio::task::spawn_blocking(move || {
                admin::list_topics(&c.brokers, &props, c.timeout)
            })
            .await??;
            let shown = topics
                .into_iter()
                .filter(|(t, _)| a.all || !t.starts_with("__"));
            match a.format {
                OutputFormat::Json => {
                    for (topic, partitions) in shown {
                        println!(
                            "{}",
                            serde_json::json!({"topic": topic, "partitions": partitions})
                        );
                    }
                }
                OutputFormat::Table => {
                    let mut t = table(&["topic", "partitions"]);
                    for (topic, partitions) in shown {
                        t.add_row(vec![topic, partitions.to_string()]);
                    }
                    println!("{t}");
                }
            }
        }
        TopicCommand::Describe(a) => {
            let c = &a.cluster;
            let info = admin::describe_topic(&c.brokers, &c.properties()?, &a.topic, c.timeout)
                .await?
                .ok_or_else(|| anyhow::anyhow!("topic {} does not exist", a.topic))?;
            match a.format {
                OutputFormat::Json => println!("{}", describe_json(&info)),
                OutputFormat::Table => print_description(&info),
            }
        }
        TopicCommand::Delete(a) => {
            let c = &a.cluster;
            if !a.yes {
                anyhow::bail!(
                    "deleting topic {} removes all its records and cannot be undone; \
                     run again with --yes to delete it",
                    a.topic
                );
            }
            admin::delete_topic(&c.brokers, &c.properties()?, &a.topic, c.timeout).await?;
            println!("deleted topic {}", a.topic);
        }
    }
    Ok(())
}

/// `{"topic", "partitions": [...], "configs": {name: value}}`.
fn describe_json(info: &TopicInfo) -> serde_json::Value {
    let configs: serde_json::Map<String, serde_json::Value> = info
        .configs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into()))
        .collect();
    serde_json::json!({
        "topic": info.topic,
        "partitions": info.partitions,
        "configs": configs,
    })
}

fn print_description(info: &TopicInfo) {
    let ids = |v: &[i32]| v.iter().map(i32::to_string).collect::<Vec<_>>().join(",");
    let mut t = table(&[
        "partition",
        "leader",
        "replicas",
        "in sync",
        "earliest",
        "latest",
    ]);
    for p in &info.partitions {
        t.add_row(vec![
            p.partition.to_string(),
            p.leader.to_string(),
            ids(&p.replicas),
            ids(&p.isr),
            p.earliest.map_or_else(|| "-".into(), |o| o.to_string()),
            p.latest.map_or_else(|| "-".into(), |o| o.to_string()),
        ]);
    }
    println!("{}\n{t}", info.topic);
    if info.configs.is_empty() {
        println!("configs: broker defaults");
    } else {
        let mut c = table(&["config", "value"]);
        for (k, v) in &info.configs {
            c.add_row(vec![k.clone(), v.clone()]);
        }
        println!("{c}");
    }
}
