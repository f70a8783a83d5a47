//! Bad rows (unknown topic, oversized payload, malformed headers) are
//! marked failed with the error and sent to the dead-letter topic; the rows
//! behind them, of their key and of others, are published.

use std::time::Duration;

use rebound_producer::ProducerConfig;
use rebound_testkit::{create_topic, unique_name};

use crate::common::{pg_pool, spawn, wait_until_zero, Bed};

#[tokio::test]
async fn bad_rows_fail_with_their_error_and_block_nothing() {
    let bed = Bed::pg(2).await;
    let pool = pg_pool(2).await;
    let dlq = unique_name("outbox-dlq");
    create_topic(bed.bootstrap(), &dlq, 1).await.unwrap();
    let missing = unique_name("no-such-topic");
    let t = &bed.table;
    let big = "x".repeat(20_000);
    let rows: Vec<(String, &str, String, Option<&str>)> = vec![
        (bed.topic.clone(), "k1", "good-1".into(), None),
        (
            bed.topic.clone(),
            "k1",
            "bad-headers-array".into(),
            Some("[1]"),
        ),
        (
            bed.topic.clone(),
            "k1",
            "good-2".into(),
            Some(r#"{"a":"1"}"#),
        ),
        (bed.topic.clone(), "k2", big.clone(), None),
        (bed.topic.clone(), "k2", "good-3".into(), None),
        (missing.clone(), "k3", "unknown-topic".into(), None),
        (bed.topic.clone(), "k3", "good-4".into(), None),
        (
            bed.topic.clone(),
            "k4",
            "bad-header-value".into(),
            Some(r#"{"a":1}"#),
        ),
        (bed.topic.clone(), "k4", "good-5".into(), None),
    ];
    let mut tx = pool.begin().await.unwrap();
    for (topic, key, payload, headers) in &rows {
        sqlx::query(&format!(
            "INSERT INTO \"{t}\" (topic, key, payload, headers) VALUES ($1, $2, $3, $4::jsonb)"
        ))
        .bind(topic)
        .bind(key)
        .bind(payload.as_bytes())
        .bind(headers)
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();

    let config = rebound_outbox::RelayConfig::new(
        &bed.url,
        ProducerConfig::new(bed.bootstrap()).with_max_message_size(10_000),
    )
    .unwrap()
    .with_table(bed.table.clone())
    .with_dead_letter_topic(&dlq)
    .with_batch_size(3)
    .with_poll_interval(Duration::from_millis(100));
    let metrics = config.metrics().clone();
    let relay = spawn(config);
    wait_until_zero("pending rows", Duration::from_secs(30), || {
        let pool = pool.clone();
        let t = t.clone();
        async move {
            sqlx::query_scalar(&format!(
                "SELECT count(*) FROM \"{t}\" WHERE published_at IS NULL AND failed_at IS NULL"
            ))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    })
    .await;
    relay.stop().await;

    let failed: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT convert_from(payload, 'UTF8'), error FROM \"{t}\" WHERE failed_at IS NOT NULL ORDER BY id"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let errors: Vec<&str> = failed.iter().map(|(_, e)| e.as_str()).collect();
    assert_eq!(failed.len(), 4, "{errors:?}");
    assert!(errors[0].contains("malformed headers"), "{}", errors[0]);
    assert!(errors[1].contains("oversized record"), "{}", errors[1]);
    assert!(errors[2].contains("unknown topic"), "{}", errors[2]);
    assert!(errors[3].contains("header \"a\" is 1"), "{}", errors[3]);
    assert_eq!(metrics.failed("headers"), 2);
    assert_eq!(metrics.failed("oversized"), 1);
    assert_eq!(metrics.failed("unknown_topic"), 1);

    let good: Vec<String> = bed
        .read()
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect();
    let mut sorted = good.clone();
    sorted.sort();
    assert_eq!(sorted, ["good-1", "good-2", "good-3", "good-4", "good-5"]);
    let dead = bed.read_topic(&dlq);
    assert_eq!(dead.len(), 4);
    for d in &dead {
        assert_eq!(d.header("rebound.error.kind"), Some("permanent"));
        assert!(d.header("rebound.error.message").is_some());
        assert!(d.header("rebound.outbox.id").is_some());
        assert!(d.header("rebound.original.topic").is_some());
    }
    bed.drop_pg().await;
}
