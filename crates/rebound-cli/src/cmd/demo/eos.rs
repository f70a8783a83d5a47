//! The demo's exactly-once stage: a consume-transform-produce pipeline over
//! the demo topic, stopped halfway and started again with the same
//! transactional id; the output, read as a `read_committed` reader, must
//! hold every input record exactly once (poison records in the stage's
//! dead-letter topic instead).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL, Table};
use indicatif::ProgressBar;
use rebound_core::{headers as h, HandlerError};
use rebound_producer::OutRecord;
use rebound_worker::exactly_once::{
    transform_fn, FnTransform, Pipeline, PipelineConfig, PipelineStats, TransformResult,
};
use rebound_worker::reader::{PartitionReader, ReaderConfig};
use rebound_worker::{Record, TopicNames};

use super::behaviour::{behaviour, Behaviour};

/// What the stage needs from the demo.
pub struct Stage<'a> {
    pub brokers: &'a str,
    pub topic: &'a str,
    pub records: usize,
    pub poison_rate: f64,
}

/// Copies each record to `out` with an `"enriched"` flag; poison records
/// (the demo's deterministic choice) fail for good.
fn enrich(
    out: String,
    poison_rate: f64,
) -> FnTransform<impl Fn(&Record) -> std::future::Ready<TransformResult> + Send + Sync + 'static> {
    transform_fn(move |rec: &Record| {
        let result =
            if behaviour(rec.offset, rec.partition, 0.0, 0.0, poison_rate) == Behaviour::Poison {
                Err(HandlerError::permanent("poison record: cannot be enriched"))
            } else {
                let value = rec.value_str().unwrap_or_default();
                let mut o = OutRecord::new(out.clone(), format!("{{\"enriched\":{value}}}"));
                o.key = rec.key.clone();
                o.set_header(h::ORIGINAL_PARTITION, rec.partition.to_string());
                o.set_header(h::ORIGINAL_OFFSET, rec.offset.to_string());
                Ok(vec![o])
            };
        std::future::ready(result)
    })
}

/// Runs the stage; prints its own table.
pub async fn run(s: Stage<'_>, progress: ProgressBar) -> anyhow::Result<()> {
    let out = format!("{}.enriched", s.topic);
    let (b, t) = (s.brokers.to_string(), s.topic.to_string());
    let parts = tokio::task::spawn_blocking(move || {
        rebound_producer::admin::partition_count(&b, &[], &t, Duration::from_secs(10))
    })
    .await??
    .context("the demo topic has no partitions")?;
    rebound_producer::admin::create_topic(s.brokers, &out, parts as i32).await?;
    let names = TopicNames {
        dlq: "{topic}.enriched.dlq".into(),
        ..TopicNames::default()
    };
    let dlq = names.dlq(s.topic);
    let config = PipelineConfig::builder()
        .with_brokers(s.brokers)
        .with_group(format!("{}-eos", s.topic))
        .with_topic(s.topic)
        .with_transactional_id(format!("{}-eos-0", s.topic))
        .with_dead_letter(Some(names))
        .with_session_timeout(Duration::from_secs(6))
        .build()?;

    // Two runs of the same instance: stopped halfway, started again.
    let started = Instant::now();
    let mut totals = Vec::new();
    for target in [s.records / 2, s.records] {
        let done_before: u64 = totals.iter().map(|t: &PipelineStats| t.records_in).sum();
        let p = Pipeline::start(config.clone(), enrich(out.clone(), s.poison_rate)).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let done = done_before + p.stats().records_in;
            progress.set_position(done);
            if done as usize >= target {
                break;
            }
            anyhow::ensure!(!p.is_finished(), "the pipeline stopped early");
            anyhow::ensure!(Instant::now() < deadline, "the pipeline made no progress");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        totals.push(p.stop().await?);
    }
    let elapsed = started.elapsed();
    progress.finish_with_message("exactly-once pipeline");

    let (b, o, d) = (s.brokers.to_string(), out.clone(), dlq.clone());
    let (outputs, dead) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        Ok((read_committed(&b, &o)?, read_committed(&b, &d)?))
    })
    .await??;
    let mut copies: HashMap<(String, String), usize> = HashMap::new();
    for r in &outputs {
        let at = |n| r.header_str(n).unwrap_or_default().to_string();
        *copies
            .entry((at(h::ORIGINAL_PARTITION), at(h::ORIGINAL_OFFSET)))
            .or_default() += 1;
    }
    let duplicates = copies.values().filter(|c| **c > 1).count();
    let accounted = copies.len() + dead.len();
    let sum = |f: fn(&PipelineStats) -> u64| totals.iter().map(f).sum::<u64>();

    let mut t = Table::new();
    t.load_preset(UTF8_FULL).set_header(vec![
        "input records",
        "runs",
        "transactions",
        "output (read_committed)",
        "distinct inputs in output",
        "duplicated",
        "dead-lettered (in the transaction)",
        "time",
    ]);
    t.add_row(vec![
        s.records.to_string(),
        totals.len().to_string(),
        format!(
            "{} ({} aborted)",
            sum(|t| t.transactions),
            sum(|t| t.aborted)
        ),
        outputs.len().to_string(),
        copies.len().to_string(),
        duplicates.to_string(),
        dead.len().to_string(),
        format!("{:.2}s", elapsed.as_secs_f64()),
    ]);
    println!(
        "\nexactly-once: {} -> {out}, output and input offsets in one transaction per batch; \
         stopped halfway and restarted with the same transactional id\n{t}",
        s.topic
    );
    anyhow::ensure!(
        duplicates == 0 && accounted == s.records,
        "exactly-once stage: {duplicates} inputs duplicated, {} of {} accounted for",
        accounted,
        s.records
    );
    println!(
        "Every input record is in the output exactly once, or in the DLQ with its provenance."
    );
    Ok(())
}

fn read_committed(brokers: &str, topic: &str) -> anyhow::Result<Vec<Record>> {
    let cfg = ReaderConfig::new(brokers, topic).with_read_committed(true);
    PartitionReader::open(&cfg)?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading {topic}"))
}
