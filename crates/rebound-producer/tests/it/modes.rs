//! Each producer mode delivers what it promises, on a real broker.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::{values, Bed};
use rebound_core::Header;
use rebound_producer::{partition_for_key, Delivered, OutRecord, Producer, ProducerConfig};

fn rec(bed: &Bed, key: &str, value: String) -> OutRecord {
    OutRecord::new(&bed.topic, value).with_key(key)
}

#[tokio::test]
async fn sync_send_returns_the_partition_and_offset_the_record_is_read_at() {
    let bed = Bed::new("p", 3).await;
    let p = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    let mut sent = Vec::new();
    for i in 0..30 {
        let mut r = rec(&bed, &format!("k{}", i % 7), format!("v{i}"));
        r.headers.push(Header {
            name: "n".into(),
            value: Some(i.to_string().into_bytes()),
        });
        let d = p.send(&r).await.unwrap();
        sent.push((d, format!("v{i}")));
    }
    let read = bed.read_at_least(30).await;
    assert_eq!(read.len(), 30);
    for (d, v) in sent {
        let got = read
            .iter()
            .find(|r| r.partition == d.partition && r.offset == d.offset)
            .unwrap_or_else(|| panic!("nothing at {d:?}"));
        assert_eq!(got.value.as_deref(), Some(v.as_bytes()));
        assert_eq!(got.header("n"), Some(&v[1..]));
    }
    assert_eq!(p.metrics().delivered(), 30);
    assert_eq!(p.metrics().delivery_latency.get_sample_count(), 30);
}

#[tokio::test]
async fn keyed_records_land_where_the_java_partitioner_puts_them() {
    let bed = Bed::new("p", 7).await;
    let p = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    let mut pending = Vec::new();
    for i in 0..200 {
        pending.push(
            p.enqueue(&rec(&bed, &format!("key-{i}"), i.to_string()))
                .await
                .unwrap(),
        );
    }
    for (i, d) in futures::future::join_all(pending)
        .await
        .into_iter()
        .enumerate()
    {
        let want = partition_for_key(format!("key-{i}").as_bytes(), 7);
        assert_eq!(d.unwrap().partition, want, "key-{i}");
    }
    let read = bed.read_at_least(200).await;
    assert_eq!(read.len(), 200);
    for r in &read {
        assert_eq!(r.partition, partition_for_key(r.key.as_ref().unwrap(), 7));
    }
    assert!(
        read.iter()
            .map(|r| r.partition)
            .collect::<HashSet<_>>()
            .len()
            > 1
    );
}

#[tokio::test]
async fn fire_and_forget_with_acks_0_delivers() {
    let bed = Bed::new("p", 2).await;
    let p = Producer::new(&ProducerConfig::fire_and_forget(bed.bootstrap())).unwrap();
    assert_eq!(p.config().acks(), rebound_producer::Acks::None);
    for i in 0..100 {
        p.send_and_forget(&rec(&bed, &format!("k{i}"), i.to_string()))
            .await
            .unwrap();
    }
    p.flush_async(Duration::from_secs(10)).await.unwrap();
    let mut got = values(&bed.read_at_least(100).await);
    got.sort_by_key(|v| v.parse::<u32>().unwrap());
    assert_eq!(got, (0..100).map(|i| i.to_string()).collect::<Vec<_>>());
    // acks=0: the broker does not answer, so there are no offsets.
    let d = p
        .enqueue(&rec(&bed, "k", "x".into()))
        .await
        .unwrap()
        .await
        .unwrap();
    assert!(d.offset < 0, "{d:?}");
    assert_eq!(p.metrics().sent(), 101);
}

#[tokio::test]
async fn async_futures_all_resolve_with_distinct_offsets() {
    let bed = Bed::new("p", 3).await;
    let p = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    let mut pending = Vec::new();
    for i in 0..1000 {
        pending.push(
            p.enqueue(&rec(&bed, &format!("k{}", i % 13), i.to_string()))
                .await
                .unwrap(),
        );
    }
    // All queued before any is awaited: many in flight at once.
    let delivered: Vec<Delivered> = futures::future::join_all(pending)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let unique: HashSet<(i32, i64)> = delivered.iter().map(|d| (d.partition, d.offset)).collect();
    assert_eq!(unique.len(), 1000);
    assert_eq!(bed.read_at_least(1000).await.len(), 1000);
}

#[tokio::test]
async fn callback_fires_exactly_once_per_record() {
    let bed = Bed::new("p", 2).await;
    let p = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    let calls: Arc<Vec<AtomicU32>> = Arc::new((0..500).map(|_| AtomicU32::new(0)).collect());
    let ok = Arc::new(AtomicU32::new(0));
    for i in 0..500 {
        let (calls, ok) = (calls.clone(), ok.clone());
        p.send_with_callback(&rec(&bed, &format!("k{i}"), i.to_string()), move |r| {
            calls[i].fetch_add(1, Ordering::SeqCst);
            if r.is_ok() {
                ok.fetch_add(1, Ordering::SeqCst);
            }
        })
        .await
        .unwrap();
    }
    p.flush_async(Duration::from_secs(10)).await.unwrap();
    assert!(calls.iter().all(|c| c.load(Ordering::SeqCst) == 1));
    assert_eq!(ok.load(Ordering::SeqCst), 500);
    assert_eq!(bed.read_at_least(500).await.len(), 500);
}

#[tokio::test]
async fn batches_wait_for_linger_and_flush_delivers_them_all() {
    let bed = Bed::new("p", 2).await;
    // A linger far longer than the test: only flush sends the batch early.
    let config = ProducerConfig::new(bed.bootstrap())
        .with_linger(Duration::from_secs(20))
        .with_batch_records(10_000)
        .with_batch_size(1_000_000);
    let p = Producer::new(&config).unwrap();
    for i in 0..1000 {
        p.send_and_forget(&rec(&bed, &format!("k{i}"), i.to_string()))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(p.metrics().delivered(), 0, "lingering, not sent yet");
    assert!(p.in_flight() >= 1000, "{}", p.in_flight());
    p.flush_async(Duration::from_secs(10)).await.unwrap();
    assert_eq!(p.in_flight(), 0);
    assert_eq!(p.metrics().delivered(), 1000);
    assert_eq!(bed.read_at_least(1000).await.len(), 1000);
}

#[tokio::test]
async fn idempotent_producer_writes_each_record_once_in_key_order() {
    let bed = Bed::new("p", 4).await;
    let p = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    assert!(p.config().idempotent());
    let mut pending = Vec::new();
    for i in 0..3000 {
        pending.push(
            p.enqueue(&rec(&bed, &format!("k{}", i % 10), format!("{i:05}")))
                .await
                .unwrap(),
        );
    }
    for r in futures::future::join_all(pending).await {
        r.unwrap();
    }
    let read = bed.read_at_least(3000).await;
    assert_eq!(read.len(), 3000, "no duplicates, nothing lost");
    assert_eq!(
        values(&read).into_iter().collect::<HashSet<_>>().len(),
        3000
    );
    // Per key, offsets follow send order.
    let mut by_key: BTreeMap<Vec<u8>, Vec<String>> = BTreeMap::new();
    for r in &read {
        by_key
            .entry(r.key.clone().unwrap())
            .or_default()
            .push(String::from_utf8(r.value.clone().unwrap()).unwrap());
    }
    for (k, vs) in by_key {
        let mut sorted = vs.clone();
        sorted.sort();
        assert_eq!(vs, sorted, "key {:?}", String::from_utf8_lossy(&k));
    }
}

#[tokio::test]
async fn the_send_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let bed = Bed::new("p", 1).await;
    let p = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    let r = OutRecord::new(&bed.topic, "x");
    let f = p.send(&r);
    assert_send(&f);
    f.await.unwrap();
    let handle = tokio::spawn({
        let p = p.clone();
        async move { p.send(&r).await }
    });
    handle.await.unwrap().unwrap();
}
