//! A group member commits what it acknowledged; read_committed reads
//! committed transactions to their end.

use super::*;

/// Reads a group member to its end, acknowledging and committing each record.
fn drain_group(cfg: &ReaderConfig, group: &str) -> Vec<Want> {
    let mut reader = GroupReader::subscribe(cfg, group).unwrap();
    let mut out = Vec::new();
    loop {
        match reader.poll(Duration::from_millis(200)).unwrap() {
            Polled::Record(r) => {
                out.push(got(&r));
                reader.ack(&r);
            }
            Polled::Idle => reader.commit().unwrap(),
            Polled::End => break,
        }
    }
    reader.close().unwrap();
    out.sort_by_key(|w| (w.partition, w.offset));
    out
}

#[tokio::test]
async fn a_group_member_commits_what_it_acknowledged() {
    let bed = Bed::new().await;
    let first = bed.wave("a", 30, T0).await;
    let group = unique_name("consume-group");
    let cfg = bed.config().with_session_timeout(Duration::from_millis(
        rebound_testkit::FAST_SESSION_TIMEOUT_MS as u64,
    ));
    let (c, g) = (cfg.clone(), group.clone());
    assert_eq!(blocking(move || drain_group(&c, &g)).await, first);

    // Same group again: only what was written since.
    let second = bed.wave("b", 12, T1).await;
    let (c, g) = (cfg.clone(), group.clone());
    assert_eq!(blocking(move || drain_group(&c, &g)).await, second);

    // A new group that starts at the end reads nothing; one that starts
    // at a timestamp reads from there.
    let c = cfg.clone().with_start(StartAt::End);
    let g = unique_name("late-group");
    assert_eq!(blocking(move || drain_group(&c, &g)).await, vec![]);
    let c = cfg.with_start(StartAt::Timestamp(T1 + 9));
    let g = unique_name("ts-group");
    let want: Vec<Want> = second
        .iter()
        .filter(|w| w.timestamp >= T1 + 9)
        .cloned()
        .collect();
    assert_eq!(blocking(move || drain_group(&c, &g)).await, want);
}

#[tokio::test]
async fn read_committed_reads_committed_transactions_to_their_end() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
    let bed = Bed::new().await;
    let bootstrap = bed.bootstrap().to_string();
    let topic = bed.topic.clone();
    // Two committed transactions: each partition ends with a commit marker.
    blocking(move || {
        let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("transactional.id", unique_name("txn"))
            .create()
            .unwrap();
        p.init_transactions(Duration::from_secs(20)).unwrap();
        for round in 0..2 {
            p.begin_transaction().unwrap();
            for i in 0..6 {
                let value = format!("t{round}-{i}");
                p.send(
                    BaseRecord::<str, str>::to(&topic)
                        .partition(i % PARTITIONS)
                        .key(&value)
                        .payload(&value),
                )
                .unwrap();
            }
            p.commit_transaction(Duration::from_secs(20)).unwrap();
        }
    })
    .await;
    let cfg = bed.config().with_read_committed(true);
    let mut got: Vec<String> = blocking(move || read(&cfg))
        .await
        .into_iter()
        .map(|w| w.value)
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..2)
        .flat_map(|r| (0..6).map(move |i| format!("t{r}-{i}")))
        .collect();
    want.sort();
    assert_eq!(got, want);
}
