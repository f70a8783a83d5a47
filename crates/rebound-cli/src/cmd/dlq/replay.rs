//! `rebound dlq replay`: produce DLQ records again, to their original topic
//! or to `--to`, with key, value and every header kept and
//! `rebound.replayed` added. The producer is idempotent and every send waits
//! for its acknowledgement; the DLQ itself is never changed.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{anyhow, bail};
use clap::{ArgGroup, Args};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use rebound_core::trace::{self, FutureExt as _};
use rebound_core::{headers, Record};
use rebound_producer::{OutRecord, Producer};

use super::entry::DlqEntry;
use super::select::{self, Filter, OffsetRef};
use super::{table, Source};
use crate::args;
use crate::time;

/// Sends in flight at once. Records for one destination partition are
/// handed to the producer in DLQ order, and idempotence keeps that order
/// across retries.
const IN_FLIGHT: usize = 32;

/// Flags of `rebound dlq replay`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("selection").required(true).args(["offsets", "grep", "all"])))]
pub struct ReplayArgs {
    #[command(flatten)]
    source: Source,
    /// Send every selected record to this topic instead of its
    /// `rebound.original.topic`.
    #[arg(long, env = "REBOUND_DLQ_REPLAY_TO", value_parser = args::topic)]
    to: Option<String>,
    /// Replay these records: PARTITION:OFFSET[,PARTITION:OFFSET...]
    /// (a bare OFFSET when the topic has one partition).
    #[arg(long, env = "REBOUND_DLQ_OFFSETS", value_delimiter = ',',
          value_parser = select::offset_ref)]
    offsets: Vec<OffsetRef>,
    /// Replay the records whose error message contains this text (case-insensitive).
    #[arg(long, env = "REBOUND_DLQ_GREP", value_parser = args::non_empty)]
    grep: Option<String>,
    /// Replay every record of the DLQ topic.
    #[arg(long, env = "REBOUND_DLQ_ALL")]
    all: bool,
    /// Print what would be sent, and send nothing.
    #[arg(long, env = "REBOUND_DLQ_DRY_RUN")]
    dry_run: bool,
}

/// Which records to replay.
#[derive(Debug, Clone)]
enum Selection {
    Offsets(Vec<OffsetRef>),
    Grep(String),
    All,
}

impl Selection {
    fn of(a: &ReplayArgs) -> Self {
        if !a.offsets.is_empty() {
            Selection::Offsets(a.offsets.clone())
        } else if let Some(g) = &a.grep {
            Selection::Grep(g.clone())
        } else {
            Selection::All
        }
    }

    /// How the user wrote it, for messages.
    fn describe(&self) -> String {
        match self {
            Selection::Offsets(o) => format!(
                "--offsets {}",
                o.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Selection::Grep(g) => format!("--grep {g:?}"),
            Selection::All => "--all".into(),
        }
    }
}

/// One record to send.
struct Planned {
    rec: Record,
    out: OutRecord,
}

/// The replay plan: what goes where, and what cannot go.
struct Plan {
    send: Vec<Planned>,
    /// `partition:offset` of each record with no destination.
    skipped: Vec<String>,
}

impl Plan {
    fn per_topic(&self) -> BTreeMap<&str, usize> {
        per_topic(self.send.iter().map(|p| p.out.topic.as_str()))
    }
}

fn per_topic<'a>(topics: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut m = BTreeMap::new();
    for t in topics {
        *m.entry(t).or_default() += 1;
    }
    m
}

/// `orders: 3, payments: 1`.
fn describe_counts(m: &BTreeMap<&str, usize>) -> String {
    m.iter()
        .map(|(t, n)| format!("{t}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads the selection, then sends it (or prints it with `--dry-run`).
pub async fn run(a: ReplayArgs) -> anyhow::Result<()> {
    let selection = Selection::of(&a);
    let topic = a.source.topic.clone();
    let sel = selection.clone();
    let mut selected = a
        .source
        .with_reader(move |reader| read_selection(reader, &topic, &sel))
        .await?;
    if selected.is_empty() {
        bail!(
            "{} matched no record in {}; nothing replayed",
            selection.describe(),
            a.source.topic
        );
    }
    selected.sort_by_key(|r| (r.partition, r.offset));
    let plan = plan(selected, a.to.as_deref(), time::now_ms());
    for coords in &plan.skipped {
        eprintln!(
            "skipped {coords}: no {} header; pass --to to choose a destination",
            headers::ORIGINAL_TOPIC
        );
    }
    if a.dry_run {
        println!(
            "dry run: would send {} records from {} ({})",
            plan.send.len(),
            a.source.topic,
            describe_counts(&plan.per_topic())
        );
        if !plan.send.is_empty() {
            let rows = plan.send.iter().map(|p| (&p.rec, p.out.topic.as_str()));
            println!("{}", table::planned(rows));
        }
        println!(
            "dry run: nothing sent (would send {}, would skip {})",
            plan.send.len(),
            plan.skipped.len()
        );
        return Ok(());
    }
    let ok = send(&a.source, &plan).await?;
    let sent = per_topic(
        plan.send
            .iter()
            .zip(&ok)
            .filter(|(_, ok)| **ok)
            .map(|(p, _)| p.out.topic.as_str()),
    );
    let failed: Vec<String> = plan
        .send
        .iter()
        .zip(&ok)
        .filter(|(_, ok)| !**ok)
        .map(|(p, _)| DlqEntry::new(&p.rec).coords())
        .collect();
    println!(
        "sent {} ({}), skipped {}, failed {}",
        sent.values().sum::<usize>(),
        describe_counts(&sent),
        plan.skipped.len(),
        failed.len()
    );
    if !failed.is_empty() {
        bail!(
            "{} of {} records failed to send: {}",
            failed.len(),
            plan.send.len(),
            failed.join(", ")
        );
    }
    if !plan.skipped.is_empty() {
        bail!(
            "{} records were not replayed ({}): they have no {} header; replay them with --to",
            plan.skipped.len(),
            plan.skipped.join(", "),
            headers::ORIGINAL_TOPIC
        );
    }
    Ok(())
}

/// The selected records, unordered. `--offsets` reads only the offsets asked
/// for and fails naming any that the topic does not hold.
fn read_selection(
    reader: &super::read::TopicReader,
    topic: &str,
    sel: &Selection,
) -> anyhow::Result<Vec<Record>> {
    let mut out = Vec::new();
    match sel {
        Selection::All => reader.read_all(|r| out.push(r))?,
        Selection::Grep(g) => {
            let filter = Filter::new(Some(g), None, None);
            reader.read_all(|r| {
                if filter.matches(&r) {
                    out.push(r);
                }
            })?;
        }
        Selection::Offsets(refs) => {
            let mut wanted = BTreeSet::new();
            let mut bad = Vec::new();
            for r in refs {
                match select::resolve(reader, topic, *r, "--offsets") {
                    Ok(po) => {
                        wanted.insert(po);
                    }
                    Err(e) => bad.push(e),
                }
            }
            if !bad.is_empty() {
                bail!("{}; nothing replayed", bad.join("; "));
            }
            let mut ranges: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
            for &(p, o) in &wanted {
                let r = ranges.entry(p).or_insert((o, o + 1));
                r.0 = r.0.min(o);
                r.1 = r.1.max(o + 1);
            }
            let ranges: Vec<_> = ranges
                .into_iter()
                .map(|(p, (s, e))| (p, s, Some(e)))
                .collect();
            reader.read(&ranges, |r| {
                if wanted.contains(&(r.partition, r.offset)) {
                    out.push(r);
                }
            })?;
            let got: BTreeSet<_> = out.iter().map(|r| (r.partition, r.offset)).collect();
            let missing: Vec<_> = wanted
                .difference(&got)
                .map(|(p, o)| format!("{p}:{o}"))
                .collect();
            if !missing.is_empty() {
                return Err(anyhow!(
                    "{}: {topic} has no record at {}; nothing replayed",
                    sel.describe(),
                    missing.join(", ")
                ));
            }
        }
    }
    Ok(out)
}

/// Decides each record's destination. Back in its original topic a record
/// goes to its original partition, so per-key order holds whatever
/// partitioner first wrote it; elsewhere the key decides.
fn plan(records: Vec<Record>, to: Option<&str>, replayed_at: i64) -> Plan {
    let mut send = Vec::with_capacity(records.len());
    let mut skipped = Vec::new();
    for rec in records {
        let e = DlqEntry::new(&rec);
        let Some(dest) = to.or(e.original_topic()) else {
            skipped.push(e.coords());
            continue;
        };
        let mut out = OutRecord::from_record(&rec, dest);
        // A new write: the broker stamps it now, so time-based retention
        // does not drop it at once. The original time stays in its header.
        out.timestamp = None;
        if e.original_topic() == Some(dest) {
            out.partition = e.original_partition();
        }
        out.set_header(headers::REPLAYED, replayed_at.to_string());
        send.push(Planned { rec, out });
    }
    Plan { send, skipped }
}

/// Sends the plan with a progress bar and reports each failure; returns
/// whether each planned record was acknowledged.
async fn send(source: &Source, plan: &Plan) -> anyhow::Result<Vec<bool>> {
    let config = crate::security::producer_config(&source.brokers, &source.security.properties()?)
        .with_delivery_timeout(source.timeout);
    let producer = Producer::new(&config)?;
    let tracer = trace::tracer();
    let bar = ProgressBar::new(plan.send.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("replaying [{bar:40}] {pos}/{len} ({per_sec}, {elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let results: Vec<_> = futures::stream::iter(&plan.send)
        .map(|p| {
            let producer = &producer;
            // Replaying is processing the dead letter: its send continues
            // the record's trace (dead letter's `send` → this `process`).
            let cx = trace::process_span(&tracer, &p.rec, None);
            async move {
                let r = producer.send(&p.out).with_context(cx.clone()).await;
                trace::end(&cx, r.as_ref().map(|_| ()));
                (p, r)
            }
        })
        .buffered(IN_FLIGHT)
        .inspect(|_| bar.inc(1))
        .collect()
        .await;
    bar.finish_and_clear();
    Ok(results
        .into_iter()
        .map(|(p, r)| match r {
            Ok(_) => true,
            Err(e) => {
                let coords = DlqEntry::new(&p.rec).coords();
                eprintln!(
                    "failed {coords} -> {}: {}",
                    p.out.topic,
                    rebound_core::DisplayChain(&e)
                );
                false
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rebound_core::Header;

    fn rec(offset: i64, original: Option<(&str, &str)>) -> Record {
        let mut r = Record::new("orders.dlq", 0, offset);
        r.timestamp = Some(5);
        r.key = Some(b"k".to_vec());
        r.value = Some(b"v".to_vec());
        r.headers.push(Header {
            name: "app".into(),
            value: Some(b"x".to_vec()),
        });
        if let Some((t, p)) = original {
            r.headers.push(Header {
                name: headers::ORIGINAL_TOPIC.into(),
                value: Some(t.as_bytes().to_vec()),
            });
            r.headers.push(Header {
                name: headers::ORIGINAL_PARTITION.into(),
                value: Some(p.as_bytes().to_vec()),
            });
        }
        r
    }

    #[test]
    fn plans_destinations_and_skips_records_without_one() {
        let p = plan(vec![rec(0, Some(("orders", "3"))), rec(1, None)], None, 42);
        assert_eq!(p.skipped, vec!["0:1".to_string()]);
        assert_eq!(p.send.len(), 1);
        let out = &p.send[0].out;
        assert_eq!(out.topic, "orders");
        assert_eq!(out.partition, Some(3));
        assert_eq!(out.timestamp, None);
        assert_eq!(out.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(out.header_str("app"), Some("x"));
        assert_eq!(out.header_str(headers::REPLAYED), Some("42"));
        assert_eq!(out.headers.len(), 4);
    }

    #[test]
    fn to_overrides_and_uses_the_key_partitioner() {
        let p = plan(
            vec![rec(0, Some(("orders", "3"))), rec(1, None)],
            Some("elsewhere"),
            1,
        );
        assert!(p.skipped.is_empty());
        assert!(p
            .send
            .iter()
            .all(|s| s.out.topic == "elsewhere" && s.out.partition.is_none()));
        assert_eq!(p.per_topic().get("elsewhere"), Some(&2));
    }
}
