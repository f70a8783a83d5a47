//! Whether the broker hides aborted transactional records from
//! `read_committed` readers. Apache Kafka does; tansu 0.6's memory engine
//! does not (its fetch answers with an empty aborted-transactions list), so
//! tests assert "aborted records are hidden" only where this probe says so.

use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::{Error, Result};

const ABORTED: &[u8] = b"probe-aborted";
const COMMITTED: &[u8] = b"probe-committed";

/// Writes one record in an aborted transaction, then one in a committed
/// one, to a fresh one-partition topic, and reads the topic back with
/// `isolation.level=read_committed`: `true` when only the committed record
/// is seen.
pub async fn broker_hides_aborted(bootstrap: &str) -> Result<bool> {
    let topic = crate::unique_name("txn-probe");
    crate::create_topic(bootstrap, &topic, 1).await?;
    let b = bootstrap.to_string();
    tokio::task::spawn_blocking(move || probe(&b, &topic))
        .await
        .expect("the probe does not panic")
}

fn probe(bootstrap: &str, topic: &str) -> Result<bool> {
    let kerr = |source| Error::Kafka {
        topic: topic.to_string(),
        source,
    };
    let timeout = Duration::from_secs(10);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("transactional.id", crate::unique_name("txn-probe"))
        .set("enable.idempotence", "true")
        .create()
        .map_err(kerr)?;
    producer.init_transactions(timeout).map_err(kerr)?;
    for (value, commit) in [(ABORTED, false), (COMMITTED, true)] {
        producer.begin_transaction().map_err(kerr)?;
        producer
            .send(BaseRecord::<(), [u8]>::to(topic).payload(value))
            .map_err(|(e, _)| kerr(e))?;
        producer.flush(timeout).map_err(kerr)?;
        if commit {
            producer.commit_transaction(timeout).map_err(kerr)?;
        } else {
            producer.abort_transaction(timeout).map_err(kerr)?;
        }
    }

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", crate::unique_name("txn-probe"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .map_err(kerr)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .map_err(kerr)?;
    consumer.assign(&tpl).map_err(kerr)?;
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut saw_aborted = false;
    while Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) if m.payload() == Some(ABORTED) => saw_aborted = true,
            Some(Ok(m)) if m.payload() == Some(COMMITTED) => return Ok(!saw_aborted),
            Some(Ok(_)) | None => {}
            Some(Err(e)) => return Err(kerr(e)),
        }
    }
    Err(kerr(KafkaError::Canceled))
}
