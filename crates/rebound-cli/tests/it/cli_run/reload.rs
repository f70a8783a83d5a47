//! SIGHUP: a valid new config applies to the routes it changes — in-flight
//! records drain under the old settings, nothing is lost or delivered twice
//! — and leaves the others untouched; an invalid one is refused with a log
//! line and the old config keeps running.
//!
//! The valid change runs on Apache Kafka: records finished above the
//! committed watermark are carried in the commit metadata, which tansu 0.6
//! drops (there a restarted route may deliver those again, which
//! at-least-once allows); on Kafka the drained route's successor delivers
//! none twice.

use std::time::Duration;

use rebound_testkit::{eventually, Brokers};

use super::deliver::{each_once, produce_range, route, topic_with};
use super::endpoint::Endpoint;
use super::process::Run;

/// The `[[route]]` tables of the test: `a` with header `X-Version: {v}`
/// and `extra`, `b` as it is.
fn routes(ta: &str, ua: &str, tb: &str, ub: &str, v: u32, extra: &str) -> String {
    // The group names must survive a rewrite: fixed per topic.
    let fixed = |s: String, topic: &str| {
        let start = s.find("group = \"").unwrap() + 9;
        let end = start + s[start..].find('"').unwrap();
        format!("{}{topic}-g{}", &s[..start], &s[end..])
    };
    let a = route(
        "a",
        ta,
        ua,
        &format!("http_headers = {{ X-Version = \"{v}\" }}\n{extra}"),
    );
    fixed(a, ta) + &fixed(route("b", tb, ub, ""), tb)
}

fn version(r: &super::endpoint::Request) -> u32 {
    r.header("x-version").unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_change_drains_and_restarts_only_the_changed_route() {
    let brokers = Brokers::kafka().unwrap();
    let (half, n) = (100, 200);
    let (ta, tb) = (
        topic_with(&brokers, "a", half).await,
        topic_with(&brokers, "b", half).await,
    );
    let (a, ua) = Endpoint::start().await;
    let (b, ub) = Endpoint::start().await;
    // 20 ms of work per record: records are in flight when the signal comes.
    a.delay_ms.store(20, std::sync::atomic::Ordering::SeqCst);
    let run = Run::start(brokers.bootstrap(), &routes(&ta, &ua, &tb, &ub, 1, ""));
    eventually(Duration::from_secs(60), "route a under way", || async {
        a.count() >= 20
    })
    .await;

    run.rewrite(brokers.bootstrap(), &routes(&ta, &ua, &tb, &ub, 2, ""));
    run.signal("HUP");
    produce_range(&brokers, &ta, half..n);
    produce_range(&brokers, &tb, half..n);
    eventually(
        Duration::from_secs(90),
        "everything delivered after the reload",
        || async { a.delivered().len() == n && b.delivered().len() == n },
    )
    .await;
    let log = run.stop().await;
    each_once(&a, n);
    each_once(&b, n);
    // Old settings until the old route stopped, new ones after: never mixed.
    let versions: Vec<u32> = a.requests.lock().unwrap().iter().map(version).collect();
    let first_new = versions
        .iter()
        .position(|v| *v == 2)
        .expect("the new header");
    assert!(first_new > 0, "route a started on the old settings");
    assert!(
        versions[first_new..].iter().all(|v| *v == 2),
        "{versions:?}"
    );
    assert_eq!(
        log.matches("starting route route=\"a\"").count(),
        2,
        "{log}"
    );
    assert_eq!(
        log.matches("starting route route=\"b\"").count(),
        1,
        "b untouched: {log}"
    );
    assert_eq!(
        log.matches("stopping route (draining) route=a reason=\"changed\"")
            .count(),
        1,
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_change_is_refused_and_the_old_config_keeps_running() {
    let brokers = Brokers::start().unwrap();
    let (half, n) = (50, 100);
    let (ta, tb) = (
        topic_with(&brokers, "a", half).await,
        topic_with(&brokers, "b", half).await,
    );
    let (a, ua) = Endpoint::start().await;
    let (b, ub) = Endpoint::start().await;
    let run = Run::start(brokers.bootstrap(), &routes(&ta, &ua, &tb, &ub, 1, ""));
    eventually(
        Duration::from_secs(60),
        "both routes delivering",
        || async { a.delivered().len() == half && b.delivered().len() == half },
    )
    .await;

    run.rewrite(
        brokers.bootstrap(),
        &routes(&ta, &ua, &tb, &ub, 2, "max_in_flight = 0"),
    );
    run.signal("HUP");
    eventually(Duration::from_secs(20), "the refusal logged", || async {
        run.log().contains("config reload refused")
    })
    .await;
    produce_range(&brokers, &ta, half..n);
    produce_range(&brokers, &tb, half..n);
    eventually(
        Duration::from_secs(60),
        "the old config delivers the rest",
        || async { a.delivered().len() == n && b.delivered().len() == n },
    )
    .await;
    let log = run.stop().await;
    each_once(&a, n);
    each_once(&b, n);
    assert!(
        a.requests.lock().unwrap().iter().all(|r| version(r) == 1),
        "old settings kept"
    );
    let refusal = log
        .lines()
        .find(|l| l.contains("config reload refused"))
        .unwrap();
    assert!(refusal.contains("ERROR"), "{refusal}");
    assert!(
        refusal.contains("route[0].max_in_flight: must be at least 1"),
        "{refusal}"
    );
    assert_eq!(
        log.matches("starting route").count(),
        2,
        "nothing restarted: {log}"
    );
    assert!(!log.contains("stopping route (draining)"), "{log}");
}
