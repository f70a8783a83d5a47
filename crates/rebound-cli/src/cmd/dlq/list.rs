//! `rebound dlq list`: the records of a DLQ topic as a table or JSON lines.

use clap::{Args, ValueEnum};

use super::entry::DlqEntry;
use super::select::Filter;
use super::{table, Source};
use crate::args;
use crate::time;

/// Flags of `rebound dlq list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    source: Source,
    /// Only records whose error message contains this text (case-insensitive).
    #[arg(long, env = "REBOUND_DLQ_GREP", value_parser = args::non_empty)]
    grep: Option<String>,
    /// Only records that last failed at or after this time: RFC 3339
    /// (2024-05-01T12:00:00Z), epoch ms, or an age like 30m, 1h, 7d.
    /// Records without `rebound.last.failure` never match.
    #[arg(long, env = "REBOUND_DLQ_SINCE", value_parser = time::point_in_time)]
    since: Option<i64>,
    /// Only records that last failed at or before this time (same forms as --since).
    #[arg(long, env = "REBOUND_DLQ_UNTIL", value_parser = time::point_in_time)]
    until: Option<i64>,
    /// Show at most this many records (the first by partition and offset).
    #[arg(long, env = "REBOUND_DLQ_LIMIT",
          value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    /// `table` for people, `json` for scripts (one object per line, all headers).
    #[arg(long, env = "REBOUND_DLQ_FORMAT", value_enum, default_value = "table")]
    format: Format,
}

/// `--format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A table; long errors are cut.
    Table,
    /// One JSON object per line with every field and header.
    Json,
}

/// Reads the whole topic and prints the matching records.
pub async fn run(a: ListArgs) -> anyhow::Result<()> {
    if let (Some(s), Some(u)) = (a.since, a.until) {
        anyhow::ensure!(
            s <= u,
            "--since ({}) is after --until ({})",
            time::rfc3339(s),
            time::rfc3339(u)
        );
    }
    let filter = Filter::new(a.grep.as_deref(), a.since, a.until);
    let (mut matched, total) = a
        .source
        .with_reader(move |reader| {
            let mut matched = Vec::new();
            let mut total = 0usize;
            reader.read_all(|rec| {
                total += 1;
                if filter.matches(&rec) {
                    matched.push(rec);
                }
            })?;
            Ok((matched, total))
        })
        .await?;
    matched.sort_by_key(|r| (r.partition, r.offset));
    let found = matched.len();
    if let Some(limit) = a.limit {
        matched.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    match a.format {
        Format::Table => {
            if matched.is_empty() {
                println!("no records");
            } else {
                println!("{}", table::records(&matched));
            }
        }
        Format::Json => {
            for rec in &matched {
                println!("{}", DlqEntry::new(rec).to_json());
            }
        }
    }
    eprintln!(
        "{} shown, {found} matched, {total} in {}",
        matched.len(),
        a.source.topic
    );
    Ok(())
}
