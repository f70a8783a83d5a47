//! Retries under real failure conditions: a topic that does not exist yet
//! (auto-creation off) fails retriably and is retried until it appears or
//! the bound is reached; a record over the size limit fails finally, at once.

use std::time::Duration;

use crate::common::{read_topic, Bed};
use rebound_core::{Backoff, Jitter};
use rebound_producer::{OutRecord, Producer, ProducerConfig};
use rebound_testkit::{create_topic, unique_name};

/// A producer whose records for a missing topic fail fast and retriably
/// (`UnknownTopicOrPartition` after 300 ms), with broker auto-creation off.
fn missing_topic_config(bootstrap: &str, attempts: u32) -> ProducerConfig {
    ProducerConfig::new(bootstrap)
        .with_delivery_timeout(Duration::from_secs(2))
        .with_client_config("allow.auto.create.topics", "false")
        .with_client_config("topic.metadata.propagation.max.ms", "300")
        .with_retry(
            Backoff::exponential(Duration::from_millis(200), Duration::from_millis(500))
                .with_jitter(Jitter::None)
                .with_max_attempts(Some(attempts)),
        )
}

#[tokio::test]
async fn a_retriable_error_is_retried_until_the_topic_exists() {
    let bed = Bed::new("p", 1).await;
    let topic = unique_name("late");
    let p = Producer::new(&missing_topic_config(bed.bootstrap(), 100)).unwrap();
    let send = tokio::spawn({
        let (p, rec) = (p.clone(), OutRecord::new(&topic, "late value"));
        async move { p.send(&rec).await }
    });
    // Create the topic only after the first attempt failed.
    while p.metrics().retries() == 0 {
        assert!(!send.is_finished(), "{:?}", send.await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    create_topic(bed.bootstrap(), &topic, 1).await.unwrap();
    let d = send.await.unwrap().unwrap();
    assert!(p.metrics().retries() >= 1);
    assert!(p.metrics().failed("UnknownTopicOrPartition") >= 1);
    let read = read_topic(bed.bootstrap(), &topic, 1).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].offset, d.offset);
    assert_eq!(read[0].value.as_deref(), Some(&b"late value"[..]));
}

#[tokio::test]
async fn retries_stop_at_the_bound_with_the_attempt_count() {
    let bed = Bed::new("p", 1).await;
    let p = Producer::new(&missing_topic_config(bed.bootstrap(), 3)).unwrap();
    let e = p
        .send(&OutRecord::new(unique_name("never"), "x"))
        .await
        .unwrap_err();
    assert!(e.retriable, "{e}");
    assert_eq!(e.attempts, 3);
    assert!(e.to_string().contains("3 attempts"), "{e}");
    assert_eq!(p.metrics().retries(), 2);
}

#[tokio::test]
async fn a_final_error_surfaces_at_once_without_retry() {
    let bed = Bed::new("p", 1).await;
    let config = ProducerConfig::new(bed.bootstrap())
        .with_max_message_size(10_000)
        .with_retry(
            Backoff::exponential(Duration::from_secs(5), Duration::from_secs(5))
                .with_max_attempts(Some(10)),
        );
    let p = Producer::new(&config).unwrap();
    let e = p
        .send(&OutRecord::new(&bed.topic, vec![b'x'; 20_000]))
        .await
        .unwrap_err();
    assert!(!e.retriable, "{e}");
    assert_eq!(e.attempts, 1);
    assert_eq!(p.metrics().retries(), 0);
    assert_eq!(p.metrics().failed("MessageSizeTooLarge"), 1);
    // The next record is the only one on the topic.
    p.send(&OutRecord::new(&bed.topic, "small")).await.unwrap();
    let read = bed.read_at_least(1).await;
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].value.as_deref(), Some(&b"small"[..]));
}
