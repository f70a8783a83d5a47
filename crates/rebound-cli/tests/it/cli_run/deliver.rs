//! Two routes in one process on a real broker, each to its own real HTTP
//! endpoint: one endpoint failing does not hold up the other route, and
//! when it recovers its route delivers everything, each record once.

use std::time::Duration;

use rebound_testkit::{
    create_topic, eventually, produce_records, unique_name, Brokers, TestRecord,
};

use super::endpoint::Endpoint;
use super::process::Run;

/// A `[[route]]` table with the test's fast settings.
pub fn route(name: &str, topic: &str, url: &str, extra: &str) -> String {
    format!(
        "[[route]]\nname = \"{name}\"\ntopic = \"{topic}\"\ngroup = \"{}\"\nhttp_sink = \"{url}\"\n\
         retry_base = \"20ms\"\nretry_cap = \"200ms\"\nsession_timeout = \"6s\"\n{extra}\n",
        unique_name(name)
    )
}

/// A topic with `n` records over two partitions, keyed `k{i % 7}`, valued `i`.
pub async fn topic_with(brokers: &Brokers, prefix: &str, n: usize) -> String {
    let topic = unique_name(prefix);
    create_topic(brokers.bootstrap(), &topic, 2).await.unwrap();
    produce_range(brokers, &topic, 0..n);
    topic
}

/// Records `range` as [`topic_with`] writes them: record `i` in partition
/// `i % 2` at offset `i / 2` (when produced in order from 0).
pub fn produce_range(brokers: &Brokers, topic: &str, range: std::ops::Range<usize>) {
    produce_records(
        brokers.bootstrap(),
        topic,
        range.map(|i| TestRecord {
            partition: Some((i % 2) as i32),
            key: Some(format!("k{}", i % 7).into_bytes()),
            value: i.to_string().into_bytes(),
        }),
    )
    .unwrap();
}

/// Every record `0..n` of a two-partition topic delivered exactly once (2xx).
pub fn each_once(ep: &Endpoint, n: usize) {
    let got = ep.delivered();
    assert_eq!(got.len(), n, "records delivered");
    for i in 0..n {
        let id = format!("{}/{}", i % 2, i / 2);
        let d = got
            .get(&id)
            .unwrap_or_else(|| panic!("record {id} missing"));
        assert_eq!(d.len(), 1, "record {id} delivered {} times", d.len());
        assert_eq!(d[0].body, i.to_string());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routes_deliver_independently_and_a_failing_endpoint_holds_up_only_its_route() {
    let brokers = Brokers::start().unwrap();
    let n = 100;
    let (ta, tb) = (
        topic_with(&brokers, "a", n).await,
        topic_with(&brokers, "b", n).await,
    );
    let (a, url_a) = Endpoint::start().await;
    let (b, url_b) = Endpoint::start().await;
    a.answer(500);
    // Retried in place until it works; the breaker (per route) opens on A.
    let keep_trying = "retry_attempts = 1000000\nbreaker_failures = 10\nbreaker_cooldown = \"1s\"";
    let run = Run::start(
        brokers.bootstrap(),
        &(route("a", &ta, &url_a, keep_trying) + &route("b", &tb, &url_b, "")),
    );

    eventually(
        Duration::from_secs(60),
        "route b delivers everything",
        || async { b.delivered().len() == n },
    )
    .await;
    assert!(a.count() > 0, "route a tried its endpoint");
    assert!(a.delivered().is_empty(), "endpoint a failed every request");
    let (ready, body) = run.get("/readyz").await.unwrap();
    assert_eq!(ready, 200, "{body}");

    a.answer(200);
    eventually(
        Duration::from_secs(60),
        "route a delivers everything once its endpoint recovers",
        || async { a.delivered().len() == n },
    )
    .await;
    // One /metrics for the process, each route's series labelled by route.
    // A record is counted once its handler has returned, which is after
    // the endpoint saw it: the last ones are counted a moment later.
    let processed = |metrics: &str| {
        [("a", &ta), ("b", &tb)].map(|(name, topic)| {
            let labels = [format!("route=\"{name}\""), format!("topic=\"{topic}\"")];
            sample(metrics, "rebound_records_processed_total", &labels)
        })
    };
    let all = Some(n as f64);
    eventually(
        Duration::from_secs(10),
        "every delivered record counted as processed",
        || async { (run.get("/metrics").await).is_some_and(|(_, m)| processed(&m) == [all, all]) },
    )
    .await;
    let (_, metrics) = run.get("/metrics").await.unwrap();
    assert_eq!(processed(&metrics), [all, all], "{metrics}");
    let open = |route: &str| {
        let labels = [format!("route=\"{route}\""), "to=\"open\"".to_string()];
        sample(&metrics, "rebound_breaker_transitions_total", &labels)
    };
    assert!(
        open("a") >= Some(1.0),
        "route a's breaker opened:\n{metrics}"
    );
    assert_eq!(
        open("b"),
        None,
        "route b's breaker never opened:\n{metrics}"
    );
    let log = run.stop().await;
    each_once(&a, n);
    each_once(&b, n);
    assert!(log.contains("SIGTERM"), "{log}");
}

/// The value of the `name` sample whose labels include all of `labels`.
pub fn sample(metrics: &str, name: &str, labels: &[String]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|want| l.contains(want.as_str())))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}
