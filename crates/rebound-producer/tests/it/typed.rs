//! Typed sends: validation and the size limit refuse a record before
//! anything is queued; valid values arrive as JSON.

use crate::common::order::Order;
use crate::common::Bed;
use rebound_producer::{Producer, ProducerConfig, SendError};

#[tokio::test]
async fn invalid_or_oversized_orders_are_refused_and_nothing_reaches_the_broker() {
    let bed = Bed::new("p", 1).await;
    let config = ProducerConfig::new(bed.bootstrap()).with_max_message_size(2_000);
    let p = Producer::new(&config).unwrap();
    let orders = p.typed::<Order>(&bed.topic);

    let e = orders
        .send(Some("c-1"), &Order::new("o-1", 0, "normal"))
        .await
        .unwrap_err();
    assert!(matches!(&e, SendError::Invalid { source, .. } if source.field == "quantity"));
    let text = rebound_core::DisplayChain(&e).to_string();
    assert!(text.contains("invalid quantity"), "{text}");

    let e = orders
        .send(Some("c-1"), &Order::new("o-2", 10_001, "normal"))
        .await
        .unwrap_err();
    let text = rebound_core::DisplayChain(&e).to_string();
    assert!(text.contains("quantity"), "{text}");

    let e = p
        .send_json(&bed.topic, None, &Order::new("o-3", 5, "asap"))
        .await
        .unwrap_err();
    assert!(matches!(&e, SendError::Invalid { source, .. } if source.field == "priority"));
    let text = rebound_core::DisplayChain(&e).to_string();
    assert!(text.contains("invalid priority"), "{text}");

    let mut big = Order::new("o-4", 5, "high");
    big.customer_id = "c".repeat(3_000);
    let e = orders.send(Some("c-1"), &big).await.unwrap_err();
    match &e {
        SendError::TooLarge { size, max, .. } => {
            assert_eq!(*max, 2_000);
            assert!(*size > 3_000);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    assert!(e.to_string().contains("over the 2000-byte limit"), "{e}");

    assert_eq!(p.metrics().rejected("validation"), 3);
    assert_eq!(p.metrics().rejected("too_large"), 1);
    assert_eq!(p.metrics().sent(), 0, "nothing was queued");

    // One valid order as a marker: it is the only record on the topic.
    let ok = Order::new("o-5", 10_000, "urgent");
    let d = orders.send(Some("c-1"), &ok).await.unwrap();
    let read = bed.read_at_least(1).await;
    assert_eq!(read.len(), 1, "only the valid order was written");
    assert_eq!((read[0].partition, read[0].offset), (d.partition, d.offset));
    let back: Order = serde_json::from_slice(read[0].value.as_ref().unwrap()).unwrap();
    assert_eq!(back, ok);
    assert_eq!(read[0].key.as_deref(), Some(&b"c-1"[..]));
}

#[tokio::test]
async fn the_default_limit_is_a_million_bytes() {
    let bed = Bed::new("p", 1).await;
    let p = Producer::new(&ProducerConfig::new(bed.bootstrap())).unwrap();
    assert_eq!(p.config().max_message_size(), 1_000_000);
    let mut big = Order::new("o-1", 1, "low");
    big.customer_id = "c".repeat(1_000_000);
    let e = p.send_json(&bed.topic, None, &big).await.unwrap_err();
    assert!(
        e.to_string()
            .contains("over the 1000000-byte limit (message.max.bytes)"),
        "{e}"
    );
    let mut fits = Order::new("o-2", 1, "low");
    fits.customer_id = "c".repeat(900_000);
    p.send_json(&bed.topic, None, &fits).await.unwrap();
    let read = bed.read_at_least(1).await;
    assert_eq!(read.len(), 1);
    assert!(read[0].value.as_ref().unwrap().len() > 900_000);
}
