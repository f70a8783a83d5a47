//! **Guarantee shown: exactly once.** A consume-transform-produce pipeline
//! commits each batch's output records and its input offsets in one Kafka
//! transaction, so a `read_committed` reader of the output sees every input
//! record's output once — here even though the pipeline is stopped halfway
//! and started again with the same transactional id.
//!
//! ```sh
//! cargo run -p rebound-worker --example exactly_once            # starts a local broker
//! cargo run -p rebound-worker --example exactly_once -- HOST:PORT
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_worker::exactly_once::{transform_fn, Pipeline, PipelineConfig, TransformResult};
use rebound_worker::reader::{PartitionReader, ReaderConfig};
use rebound_worker::Record;

const ORDERS: usize = 1_000;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (brokers, _local) = rebound_localbroker::given_or_started(std::env::args().nth(1))?;
    let input = format!("orders-{}", std::process::id());
    let output = format!("{input}.enriched");
    rebound_producer::admin::create_topic(&brokers, &input, 2).await?;
    rebound_producer::admin::create_topic(&brokers, &output, 2).await?;
    let producer = Producer::new(&ProducerConfig::new(&brokers))?;
    for i in 0..ORDERS {
        let rec = OutRecord::new(&input, format!("{{\"order\":{i}}}"))
            .with_key(format!("customer-{}", i % 13));
        producer.send(&rec).await?;
    }

    // Run the pipeline twice: stopped after about half, then to the end.
    let mut done = 0;
    for (run, until) in [(1, ORDERS / 2), (2, ORDERS)] {
        let config = PipelineConfig::builder()
            .with_brokers(&brokers)
            .with_group("enricher-example")
            .with_topic(&input)
            .with_transactional_id("enricher-example-0")
            .with_max_batch_size(100)
            .with_session_timeout(Duration::from_secs(6))
            .build()?;
        let out = output.clone();
        let pipeline = Pipeline::start(
            config,
            transform_fn(move |rec: &Record| {
                let mut enriched = OutRecord::from_record(rec, out.clone());
                enriched.set_header("enriched.by", "example");
                std::future::ready(TransformResult::Ok(vec![enriched]))
            }),
        )
        .await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while done + (pipeline.stats().records_in as usize) < until && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stats = pipeline.stop().await?; // commits the batch in hand
        done += stats.records_in as usize;
        println!("run {run}: stopped with {done} input records committed in all");
    }

    // The committed output holds each order exactly once.
    let out = output.clone();
    let b = brokers.clone();
    let records = tokio::task::spawn_blocking(move || {
        PartitionReader::open(&ReaderConfig::new(&b, &out).with_read_committed(true))?.read_to_end()
    })
    .await??;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in &records {
        *seen
            .entry(r.value_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    let missing = (0..ORDERS)
        .filter(|i| !seen.contains_key(&format!("{{\"order\":{i}}}")))
        .count();
    let twice = seen.values().filter(|n| **n > 1).count();
    println!(
        "{} output records read as read_committed: {missing} missing, {twice} seen twice",
        records.len()
    );
    if missing > 0 || twice > 0 || records.len() != ORDERS {
        return Err("the output is not exactly once".into());
    }
    Ok(())
}
