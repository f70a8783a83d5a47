//! **Guarantee shown: no record is lost.** Every record is either handled or
//! in the dead-letter queue with its provenance. Transient failures are
//! retried in place (blocking only their key) and then through a
//! non-blocking retry tier; permanent failures go straight to the DLQ.
//!
//! ```sh
//! cargo run -p rebound-worker --example worker_dlq            # starts a local broker
//! cargo run -p rebound-worker --example worker_dlq -- HOST:PORT
//! ```
//!
//! 200 orders; every 10th fails twice before it succeeds (retried in
//! place); every 25th fails three times (through the tier); every 40th is
//! malformed (permanent: DLQ). Exits non-zero if anything is missing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rebound_core::{Backoff, HandlerError, Provenance, Record};
use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_worker::reader::{PartitionReader, ReaderConfig};
use rebound_worker::{
    handler_fn, DeadLetterLayer, DeadLetterPolicy, Layer, Metrics, RetryLayer, Worker, WorkerConfig,
};

const ORDERS: usize = 200;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (brokers, _local) = rebound_localbroker::given_or_started(std::env::args().nth(1))?;
    let topic = format!("orders-{}", std::process::id());
    let policy = DeadLetterPolicy::new("orders-example").with_tiers(vec![Duration::from_secs(1)]);
    for t in [
        vec![topic.clone()],
        policy.tier_topics(&topic),
        vec![policy.dlq_topic(&topic)],
    ]
    .concat()
    {
        rebound_producer::admin::create_topic(&brokers, &t, 2).await?;
    }
    let producer = Producer::new(&ProducerConfig::new(&brokers))?;
    for i in 0..ORDERS {
        let value = if i % 40 == 0 {
            "not json".to_string()
        } else {
            format!("{{\"order\":{i}}}")
        };
        producer
            .send(&OutRecord::new(&topic, value).with_key(format!("customer-{}", i % 7)))
            .await?;
    }

    // The handler: fails as described above, counting calls per order.
    let calls: Arc<Mutex<HashMap<String, u32>>> = Default::default();
    let handled: Arc<Mutex<Vec<String>>> = Default::default();
    let (c, h) = (calls.clone(), handled.clone());
    let orders = handler_fn(move |rec: &Record| {
        let value = rec.value_str().unwrap_or_default().to_string();
        let n = {
            let mut calls = c.lock().unwrap();
            let n = calls.entry(value.clone()).or_default();
            *n += 1;
            *n
        };
        let h = h.clone();
        async move {
            let Some(i) = value
                .strip_prefix("{\"order\":")
                .and_then(|v| v.trim_end_matches('}').parse::<usize>().ok())
            else {
                return Err(HandlerError::permanent(format!("not an order: {value}")));
            };
            if (i % 25 == 0 && n <= 3) || (i % 10 == 0 && n <= 2) {
                return Err(HandlerError::transient("downstream busy"));
            }
            h.lock().unwrap().push(value);
            Ok(())
        }
    });
    let metrics = Arc::new(Metrics::new());
    let in_place = Backoff::exponential(Duration::from_millis(20), Duration::from_millis(100))
        .with_max_attempts(Some(3));
    let handler = DeadLetterLayer::new(producer, policy.clone(), metrics.clone())
        .layer(RetryLayer::new(in_place).layer(orders));
    let mut config = WorkerConfig::builder()
        .with_brokers(&brokers)
        .with_group("orders-example")
        .with_topic(&topic)
        .with_metrics(metrics)
        .with_session_timeout(Duration::from_secs(6));
    for t in policy.tier_topics(&topic) {
        config = config.with_delayed_topic(t);
    }
    let worker = Worker::start(config.build()?, handler).await?;

    // Wait until every order is handled or dead-lettered.
    let malformed = (0..ORDERS).filter(|i| i % 40 == 0).count();
    let deadline = Instant::now() + Duration::from_secs(60);
    while handled.lock().unwrap().len() < ORDERS - malformed && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    worker.stop().await?;

    let dlq = policy.dlq_topic(&topic);
    let dead = tokio::task::spawn_blocking(move || {
        PartitionReader::open(&ReaderConfig::new(&brokers, &dlq))?.read_to_end()
    })
    .await??;
    for rec in &dead {
        let p = Provenance::read(rec);
        println!(
            "dead-lettered {:?} from {}/{}/{} after {} attempt(s): {}",
            rec.value_str().unwrap_or_default(),
            p.original_topic.as_deref().unwrap_or("?"),
            p.original_partition.unwrap_or(-1),
            p.original_offset.unwrap_or(-1),
            p.attempts.unwrap_or(0),
            p.error_message.as_deref().unwrap_or("")
        );
    }
    let ok = handled.lock().unwrap().len();
    println!("handled {ok}, dead-lettered {}, of {ORDERS}", dead.len());
    if ok + dead.len() != ORDERS || dead.len() != malformed {
        return Err(format!(
            "expected {} handled and {malformed} dead-lettered",
            ORDERS - malformed
        )
        .into());
    }
    Ok(())
}
