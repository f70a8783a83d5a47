//! The demo's stream-processing stage: counts the demo topic's records per
//! key with `rebound-stream` in exactly-once mode, crashes the processor
//! about halfway (dropped at once: nothing flushed, a transaction left
//! open), starts it again on the same state directory, and checks every
//! key's final count in the output against the input.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use anyhow::Context;
use comfy_table::{presets::UTF8_FULL, Table};
use indicatif::ProgressBar;
use rebound_stream::{Guarantee, StreamApp, StreamBuilder, StreamConfig, Topology};
use rebound_worker::reader::{PartitionReader, ReaderConfig};

/// What the stage needs from the demo.
pub struct Stage<'a> {
    pub brokers: &'a str,
    pub topic: &'a str,
    pub records: usize,
    pub keys: u32,
}

fn topology(app: &str, input: &str, output: &str) -> anyhow::Result<Topology> {
    let b = StreamBuilder::new(app);
    b.stream::<String, Vec<u8>>(input)
        .group_by_key()
        .count("counts")
        .to_stream()
        .to(output);
    Ok(b.build()?)
}

/// The last count of each key in `output`, as a `read_committed` reader
/// sees it. Blocking.
fn last_counts(brokers: &str, output: &str) -> anyhow::Result<BTreeMap<String, String>> {
    let reader =
        PartitionReader::open(&ReaderConfig::new(brokers, output).with_read_committed(true))?;
    let mut last = BTreeMap::new();
    for rec in reader.read_to_end()? {
        let key = rec.key_str().unwrap_or_default().to_string();
        last.insert(key, rec.value_str().unwrap_or_default().to_string());
    }
    Ok(last)
}

/// Runs the stage; prints its own table. Fails when a count is not exact.
pub async fn run(s: Stage<'_>, progress: ProgressBar) -> anyhow::Result<()> {
    let (app, output) = (
        format!("{}-counter", s.topic),
        format!("{}.counts", s.topic),
    );
    let dir = std::env::temp_dir().join(format!("rebound-demo-stream-{}", std::process::id()));
    let cfg = StreamConfig::builder()
        .with_brokers(s.brokers)
        .with_state_dir(&dir)
        .with_guarantee(Guarantee::ExactlyOnce)
        .with_max_batch(500)
        .with_session_timeout(Duration::from_secs(6))
        .build()?;
    let mut want: HashMap<String, u64> = HashMap::new();
    for i in 0..s.records {
        *want
            .entry(format!("customer-{}", i as u32 % s.keys))
            .or_default() += 1;
    }
    let want: BTreeMap<String, String> =
        want.into_iter().map(|(k, v)| (k, v.to_string())).collect();

    let started = Instant::now();
    let first = StreamApp::start(cfg.clone(), topology(&app, s.topic, &output)?)
        .await
        .context("starting the stream processor")?;
    let m = first.metrics().clone();
    while (m.processed_total(s.topic) as usize) < s.records / 2 {
        progress.set_position(m.processed_total(s.topic));
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let before_crash = m.processed_total(s.topic);
    first.abort().await;

    let second = StreamApp::start(cfg, topology(&app, s.topic, &output)?)
        .await
        .context("restarting the stream processor")?;
    let m2 = second.metrics().clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    let got = loop {
        progress.set_position((before_crash + m2.processed_total(s.topic)).min(s.records as u64));
        let (b, o) = (s.brokers.to_string(), output.clone());
        let got = tokio::task::spawn_blocking(move || last_counts(&b, &o)).await??;
        if got == want || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let restored = m2.restored_total(&format!("{app}-counts-changelog"));
    second.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);
    progress.finish_with_message("stream processing");
    let exact = want.iter().filter(|(k, v)| got.get(*k) == Some(*v)).count();
    let mut t = Table::new();
    t.load_preset(UTF8_FULL).set_header(vec![
        "records",
        "keys",
        "processed before the crash",
        "changelog records restored",
        "keys with the exact count",
        "time",
    ]);
    t.add_row(vec![
        s.records.to_string(),
        want.len().to_string(),
        before_crash.to_string(),
        restored.to_string(),
        format!("{exact} of {}", want.len()),
        format!("{:.2}s", started.elapsed().as_secs_f64()),
    ]);
    println!(
        "\nstream processing (count by key, exactly-once): crashed after about half the records, \
         restarted on the same state directory\n{t}"
    );
    if exact != want.len() {
        anyhow::bail!(
            "the stream stage counted {exact} of {} keys exactly",
            want.len()
        );
    }
    println!("Every key's count is exact after the crash and restart.");
    Ok(())
}
