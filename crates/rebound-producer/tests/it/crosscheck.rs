//! Cross-client check with Python confluent-kafka (librdkafka 2.x): what
//! rebound writes (keys, values, headers, partitions) confluent-kafka reads
//! back unchanged, and what confluent-kafka writes with `murmur2_random`
//! rebound reads back, with every key on the partition our murmur2 picks.

use std::process::Command;

use crate::common::Bed;
use rebound_core::Header;
use rebound_producer::{partition_for_key, OutRecord, Producer, ProducerConfig};
use serde_json::Value;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/crosscheck.py");

fn unhex(v: &Value) -> Option<Vec<u8>> {
    let s = v.as_str()?;
    Some(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect(),
    )
}

/// Runs the script and returns one JSON object per output line.
async fn python(mode: &str, bootstrap: &str, topic: &str, count: usize) -> Vec<Value> {
    let args = [
        SCRIPT.to_string(),
        mode.into(),
        bootstrap.into(),
        topic.into(),
        count.to_string(),
    ];
    let out = tokio::task::spawn_blocking(move || Command::new("python3").args(args).output())
        .await
        .unwrap()
        .expect("python3 runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'confluent_kafka'"),
        "confluent-kafka is missing: python3 -m pip install 'confluent-kafka>=2.1'"
    );
    assert!(
        out.status.success(),
        "crosscheck.py {mode} failed: {stderr}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test]
async fn confluent_kafka_reads_what_rebound_writes() {
    let bed = Bed::new("p", 5).await;
    let p = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    let mut sent = Vec::new();
    for i in 0..60u8 {
        // Text and binary keys; a header with no value.
        let key = if i % 2 == 0 {
            format!("order-{i}").into_bytes()
        } else {
            vec![0xff, 0x00, i, 0x80]
        };
        let mut rec = OutRecord::new(&bed.topic, format!("value-{i} ✓")).with_key(key.clone());
        rec.set_header("rebound.attempt", i.to_string());
        rec.headers.push(Header {
            name: "nothing".into(),
            value: None,
        });
        let d = p.send(&rec).await.unwrap();
        assert_eq!(d.partition, partition_for_key(&key, 5));
        sent.push((d, rec));
    }
    let read = python("consume", bed.bootstrap(), &bed.topic, 60).await;
    assert_eq!(read.len(), 60);
    for (d, rec) in sent {
        let got = read
            .iter()
            .find(|r| r["partition"] == d.partition && r["offset"] == d.offset)
            .unwrap_or_else(|| panic!("python did not see {d:?}"));
        assert_eq!(unhex(&got["key"]), rec.key);
        assert_eq!(unhex(&got["value"]), rec.value);
        let headers: Vec<(String, Option<Vec<u8>>)> = got["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| (h[0].as_str().unwrap().to_string(), unhex(&h[1])))
            .collect();
        let want: Vec<(String, Option<Vec<u8>>)> = rec
            .headers
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        assert_eq!(headers, want);
    }
}

#[tokio::test]
async fn rebound_reads_what_confluent_kafka_writes_on_the_same_partitions() {
    let bed = Bed::new("p", 6).await;
    let delivered = python("produce", bed.bootstrap(), &bed.topic, 80).await;
    assert_eq!(delivered.len(), 80);
    for d in &delivered {
        let key = unhex(&d["key"]).unwrap();
        assert_eq!(
            d["partition"].as_i64().unwrap() as i32,
            partition_for_key(&key, 6),
            "confluent-kafka put {:?} elsewhere",
            String::from_utf8_lossy(&key)
        );
    }
    let read = bed.read_at_least(80).await;
    assert_eq!(read.len(), 80);
    for r in &read {
        let key = String::from_utf8(r.key.clone().unwrap()).unwrap();
        let i = key.strip_prefix("py-key-").unwrap();
        assert_eq!(r.value.as_deref(), Some(format!("py-value-{i}").as_bytes()));
        assert_eq!(r.header("source"), Some("python"));
        assert_eq!(r.header("i"), Some(i));
        assert_eq!(
            r.headers
                .iter()
                .find(|(n, _)| n == "empty")
                .map(|(_, v)| v.clone()),
            Some(None)
        );
        assert_eq!(r.partition, partition_for_key(key.as_bytes(), 6));
    }
    // Our producer puts the same keys on the same partitions.
    let p = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    for d in delivered.iter().take(10) {
        let key = unhex(&d["key"]).unwrap();
        let ours = p
            .send(&OutRecord::new(&bed.topic, "again").with_key(key))
            .await
            .unwrap();
        assert_eq!(i64::from(ours.partition), d["partition"].as_i64().unwrap());
    }
}
