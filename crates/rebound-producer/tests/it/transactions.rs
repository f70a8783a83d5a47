//! The transactional producer: committed records are visible to
//! `read_committed` readers; aborted ones are hidden where the broker
//! supports it (Apache Kafka; not tansu 0.6's memory engine, which the
//! probe detects).

use std::collections::HashSet;
use std::time::Duration;

use crate::common::{read_to_end, read_values, Bed};
use rebound_producer::{OutRecord, ProducerConfig, TransactionalProducer, TxnErrorKind};
use rebound_testkit::txn_probe::broker_hides_aborted;
use rebound_testkit::unique_name;

async fn txn(bed: &Bed, id: &str) -> TransactionalProducer {
    txn_with_timeout(bed, id, Duration::from_secs(10)).await
}

async fn txn_with_timeout(bed: &Bed, id: &str, timeout: Duration) -> TransactionalProducer {
    TransactionalProducer::init(&ProducerConfig::new(bed.bootstrap()), id, timeout)
        .await
        .unwrap()
}

async fn send_all(p: &TransactionalProducer, topic: &str, values: &[String]) {
    let mut pending = Vec::new();
    for v in values {
        pending.push(
            p.send(&OutRecord::new(topic, v.clone()).with_key(v.clone()))
                .unwrap(),
        );
    }
    for d in pending {
        let d = d.delivered().await.unwrap();
        assert!(d.offset >= 0);
    }
}

fn named(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test]
async fn committed_records_are_visible_and_aborted_ones_hidden_where_supported() {
    let bed = Bed::new("p", 2).await;
    let p = txn(&bed, &unique_name("txn")).await;
    let (first, aborted, second) = (named("c1", 10), named("ab", 5), named("c2", 10));

    p.begin().unwrap();
    send_all(&p, &bed.topic, &first).await;
    p.commit().await.unwrap();

    p.begin().unwrap();
    send_all(&p, &bed.topic, &aborted).await;
    p.abort().await.unwrap();

    p.begin().unwrap();
    send_all(&p, &bed.topic, &second).await;
    p.commit().await.unwrap();

    let committed: HashSet<String> = first.iter().chain(&second).cloned().collect();
    let seen = read_values(bed.bootstrap(), &bed.topic, "read_committed", 20).await;
    let seen_committed: Vec<&String> = seen.iter().filter(|v| committed.contains(*v)).collect();
    assert_eq!(
        seen_committed.len(),
        20,
        "every committed record, once: {seen:?}"
    );
    assert_eq!(seen_committed.into_iter().collect::<HashSet<_>>().len(), 20);

    let m = p.metrics();
    assert_eq!(m.transactions("committed"), 2);
    assert_eq!(m.transactions("aborted"), 1);
    assert_eq!(m.delivered(), 25);

    if broker_hides_aborted(bed.bootstrap()).await.unwrap() {
        assert_eq!(seen.len(), 20, "aborted records are hidden: {seen:?}");
    } else {
        eprintln!(
            "broker does not hide aborted records from read_committed readers \
             (tansu 0.6 memory engine); only the committed side is asserted"
        );
    }
}

#[tokio::test]
async fn nothing_is_visible_to_read_committed_before_commit() {
    let bed = Bed::new("p", 1).await;
    let p = txn(&bed, &unique_name("txn")).await;
    p.begin().unwrap();
    send_all(&p, &bed.topic, &named("open", 3)).await;
    // The records are written (read_uncommitted sees them) ...
    let uncommitted = read_values(bed.bootstrap(), &bed.topic, "read_uncommitted", 3).await;
    assert_eq!(uncommitted.len(), 3);
    // ... but a read_committed reader reaches the end of the partition (the
    // last stable offset, before the open transaction) without any of them.
    assert_eq!(
        read_to_end(bed.bootstrap(), &bed.topic, "read_committed").await,
        Vec::<String>::new()
    );
    p.commit().await.unwrap();
    let committed = read_values(bed.bootstrap(), &bed.topic, "read_committed", 3).await;
    assert_eq!(committed, named("open", 3));
}

#[tokio::test]
async fn a_second_producer_with_the_same_id_fences_the_first() {
    let bed = Bed::new("p", 1).await;
    let id = unique_name("txn");
    let old = txn_with_timeout(&bed, &id, Duration::from_secs(3)).await;
    old.begin().unwrap();
    send_all(&old, &bed.topic, &named("zombie", 2)).await;
    let new = txn(&bed, &id).await;
    // Apache Kafka answers the zombie's commit with PRODUCER_FENCED (fatal);
    // tansu 0.6 leaves it unanswered until the call times out. Either way it
    // must not succeed.
    let e = old.commit().await.unwrap_err();
    if e.kind != TxnErrorKind::Fatal {
        eprintln!("zombie commit failed with {:?}, not fenced: {e}", e.kind);
    }
    assert_eq!(old.metrics().transactions("failed"), 1);
    new.begin().unwrap();
    send_all(&new, &bed.topic, &named("fresh", 2)).await;
    new.commit().await.unwrap();
    let seen = read_values(bed.bootstrap(), &bed.topic, "read_committed", 2).await;
    assert!(seen.contains(&"fresh-0".to_string()) && seen.contains(&"fresh-1".to_string()));
}
