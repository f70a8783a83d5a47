//! Readiness follows the broker: ready once assigned and connected, not
//! ready while the broker is unreachable.

use std::time::Duration;

use crate::common::{wait_until, Bed, WorkerBed};
use rebound_testkit::{unique_name, Brokers};
use rebound_worker::{handler_fn, Record, Worker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_when_assigned_and_not_ready_while_the_broker_is_down() {
    let mut bed = Bed::new("t", 1).await;
    if matches!(bed.brokers, Brokers::External(_)) {
        eprintln!("skipped: needs a local broker it can stop");
        return;
    }
    bed.produce(10, |_| None);
    let cfg = bed.config(&unique_name("g")).build().unwrap();
    let w = Worker::start(cfg, handler_fn(|_: &Record| async { Ok(()) }))
        .await
        .unwrap();
    assert!(
        !w.health().report().ready,
        "not ready before the group assigns partitions"
    );
    wait_until(Duration::from_secs(30), "ready", || {
        let r = w.health().is_ready();
        async move { r }
    })
    .await;
    assert!(w.health().is_live());

    // Stop the broker: the worker stays live but is no longer ready.
    bed.brokers = Brokers::External("127.0.0.1:1".into());
    wait_until(Duration::from_secs(30), "not ready", || {
        let r = w.health().report();
        async move { !r.ready && r.reasons.iter().any(|x| x.contains("broker")) }
    })
    .await;
    assert!(
        w.health().is_live(),
        "a broker outage is not a reason to restart the process"
    );
    let _ = tokio::time::timeout(Duration::from_secs(30), w.abort()).await;
}
