//! Per-route delivery limits on the broker: the rate limit caps requests per
//! second, and a key whose deliveries fail waits in its own lane while the
//! route's other keys go on.

use std::time::Duration;

use rebound_testkit::{eventually, Brokers};

use super::deliver::{each_once, route, topic_with};
use super::endpoint::Endpoint;
use super::process::Run;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_limit_caps_requests_per_second() {
    let brokers = Brokers::start().unwrap();
    let n = 90;
    let topic = topic_with(&brokers, "rate", n).await;
    let (ep, url) = Endpoint::start().await;
    let run = Run::start(
        brokers.bootstrap(),
        &route("rate", &topic, &url, "rate_limit = 30\nmax_in_flight = 64"),
    );
    eventually(
        Duration::from_secs(60),
        "every record delivered",
        || async { ep.delivered().len() == n },
    )
    .await;
    run.stop().await;
    each_once(&ep, n);
    // A full burst of 30, then 30 per second: never more than 60 in any second.
    let at: Vec<_> = ep.requests.lock().unwrap().iter().map(|r| r.at).collect();
    let busiest = (0..at.len())
        .map(|i| {
            at[i..]
                .iter()
                .take_while(|t| t.duration_since(at[i]) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap();
    assert!(busiest <= 60, "{busiest} requests within one second");
    let spread = at.last().unwrap().duration_since(at[0]);
    assert!(
        spread >= Duration::from_secs(1),
        "90 records at 30/s took only {spread:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_key_waits_in_its_lane_without_holding_up_other_keys() {
    let brokers = Brokers::start().unwrap();
    let n = 140;
    let topic = topic_with(&brokers, "lanes", n).await;
    let (ep, url) = Endpoint::start().await;
    *ep.failing_key.lock().unwrap() = Some("k3".into());
    let run = Run::start(
        brokers.bootstrap(),
        &route(
            "lanes",
            &topic,
            &url,
            "ordering = \"key\"\nretry_attempts = 1000000\nbreaker_failures = 0",
        ),
    );
    let others = (0..n).filter(|i| i % 7 != 3).count();
    eventually(
        Duration::from_secs(60),
        "every other key delivered",
        || async { ep.delivered().len() == others },
    )
    .await;
    assert!(ep.count() > others, "k3 is being retried");
    *ep.failing_key.lock().unwrap() = None;
    eventually(
        Duration::from_secs(60),
        "k3 delivered once it recovers",
        || async { ep.delivered().len() == n },
    )
    .await;
    run.stop().await;
    each_once(&ep, n);
    // Per key of a partition (record i is in partition i % 2), successful
    // deliveries in offset order.
    let reqs = ep.requests.lock().unwrap().clone();
    for (k, p) in (0..7).flat_map(|k| [(k, 0), (k, 1)]) {
        let key = format!("k{k}");
        let bodies: Vec<usize> = reqs
            .iter()
            .filter(|r| r.status == 200 && r.header("x-rebound-key") == Some(key.as_str()))
            .map(|r| r.body.parse().unwrap())
            .filter(|i: &usize| i % 2 == p)
            .collect();
        let mut sorted = bodies.clone();
        sorted.sort();
        assert_eq!(bodies, sorted, "{key} of partition {p} out of order");
    }
}
