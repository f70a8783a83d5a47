//! A route's DLQ flood guard: an endpoint that starts refusing every record
//! (a bad deploy on its side) moves two records to the DLQ, then the route
//! freezes instead of dead-lettering the topic.

use std::time::Duration;

use rebound_testkit::{eventually_or, read_all, Brokers};

use super::deliver::{route, sample, topic_with};
use super::endpoint::Endpoint;
use super::process::Run;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_route_freezes_when_records_in_a_row_would_go_to_the_dlq() {
    let brokers = Brokers::start().unwrap();
    let n = 50;
    let topic = topic_with(&brokers, "flood", n).await;
    let (ep, url) = Endpoint::start().await;
    ep.answer(422);
    let run = Run::start(
        brokers.bootstrap(),
        &route(
            "flood",
            &topic,
            &url,
            "dlq_statuses = [422]\nflood_guard_consecutive = 3",
        ),
    );
    let label = ["route=\"flood\"".to_string()];
    let frozen = eventually_or(Duration::from_secs(60), || async {
        let Some((_, m)) = run.get("/metrics").await else {
            return false;
        };
        sample(&m, "rebound_dlq_flood_guard_tripped", &label) == Some(1.0)
            && sample(&m, "rebound_in_flight", &label) == Some(0.0)
            && sample(&m, "rebound_frozen_partitions", &label) >= Some(2.0)
    })
    .await;
    let metrics = run.get("/metrics").await.map(|m| m.1).unwrap_or_default();
    assert!(
        frozen,
        "tripped, both partitions frozen:\n{}\n{metrics}",
        run.log()
    );
    let requests = ep.count();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(ep.count(), requests, "a frozen route takes no more records");
    let dlq = read_all(brokers.bootstrap(), &format!("{topic}.dlq")).unwrap();
    assert_eq!(
        dlq.len(),
        2,
        "two dead-lettered, the third tripped the guard"
    );
    let log = run.stop().await;
    assert_eq!(log.matches("DLQ flood guard tripped").count(), 1, "{log}");
}
