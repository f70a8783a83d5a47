//! The breaker on paused time: opening, half-open trials, and calls that
//! end by panic or cancellation.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use rebound_core::HandlerError;

use super::*;
use crate::handler_fn;

fn flaky(down: Arc<AtomicBool>, calls: Arc<AtomicU32>) -> impl Handler {
    handler_fn(move |_: &Record| {
        let (down, calls) = (down.clone(), calls.clone());
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            if down.load(Ordering::SeqCst) {
                Err(HandlerError::transient("down"))
            } else {
                Ok(())
            }
        }
    })
}

#[tokio::test(start_paused = true)]
async fn opens_waits_half_opens_and_closes() {
    let cfg = BreakerConfig {
        consecutive_failures: 3,
        cooldown: Duration::from_secs(10),
        ..Default::default()
    };
    let breaker = Breaker::new(cfg, None);
    let (down, calls) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU32::new(0)));
    let h = Arc::new(BreakerLayer::new(breaker.clone()).layer(flaky(down.clone(), calls.clone())));
    let r = Record::new("t", 0, 0);
    for _ in 0..3 {
        assert!(h.handle(&r).await.is_err());
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    assert!(*breaker.pause_signal().borrow());
    // A call while open waits: no handler call during the cooldown.
    let waiting = tokio::spawn({
        let (h, r) = (h.clone(), r.clone());
        async move { h.handle(&r).await }
    });
    tokio::time::sleep(Duration::from_secs(9)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert!(!waiting.is_finished());
    // The trial after the cooldown fails: open again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(waiting.await.unwrap().is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(breaker.state(), BreakerState::Open);
    // The downstream recovers: the next trial closes it.
    down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert!(h.handle(&r).await.is_ok());
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert!(!*breaker.pause_signal().borrow());
}

#[tokio::test(start_paused = true)]
async fn failure_ratio_over_the_window_opens() {
    let cfg = BreakerConfig {
        consecutive_failures: 0,
        failure_ratio: Some(0.5),
        min_calls: 4,
        ..Default::default()
    };
    let breaker = Breaker::new(cfg, None);
    breaker.record(false, Some(true));
    breaker.record(false, Some(false));
    breaker.record(false, Some(true));
    assert_eq!(breaker.state(), BreakerState::Closed, "below min_calls");
    breaker.record(false, Some(false));
    assert_eq!(breaker.state(), BreakerState::Open, "2 of 4 failed");
}

#[tokio::test(start_paused = true)]
async fn the_failure_that_opens_it_is_the_one_named() {
    let cfg = BreakerConfig {
        consecutive_failures: 2,
        cooldown: Duration::from_secs(10),
        ..Default::default()
    };
    let breaker = Breaker::new(cfg, None);
    let why = |s: &str| Some(s.to_string());
    breaker.record_why(false, Some(true), why("first"));
    breaker.record_why(false, Some(true), why("second"));
    assert_eq!(breaker.state(), BreakerState::Open);
    // A call ending while it is open is not counted, nor named.
    breaker.record_why(false, Some(true), why("while open"));
    assert_eq!(breaker.lock().last_failure.as_deref(), Some("second"));
    // The failed trial is what opens it again.
    tokio::time::sleep(Duration::from_secs(11)).await;
    breaker.record_why(true, Some(true), why("trial"));
    assert_eq!(breaker.lock().last_failure.as_deref(), Some("trial"));
    // Closed by a good trial: nothing named any more.
    tokio::time::sleep(Duration::from_secs(11)).await;
    breaker.record_why(true, Some(false), None);
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(breaker.lock().last_failure, None);
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_do_not_count() {
    let breaker = Breaker::new(
        BreakerConfig {
            consecutive_failures: 1,
            ..Default::default()
        },
        None,
    );
    breaker.record(false, None);
    assert_eq!(breaker.state(), BreakerState::Closed);
}

/// Opens `breaker` (one failure opens it) and waits out the cooldown.
async fn half_open(breaker: &Arc<Breaker>) {
    breaker.record(false, Some(true));
    assert_eq!(breaker.state(), BreakerState::Open);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

fn one_failure_opens() -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: 1,
        cooldown: Duration::from_secs(10),
        ..Default::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_the_trial_reopens_and_a_later_trial_closes() {
    use futures::FutureExt;
    let breaker = Breaker::new(one_failure_opens(), None);
    let panics = Arc::new(AtomicBool::new(true));
    let p = panics.clone();
    let h = BreakerLayer::new(breaker.clone()).layer(handler_fn(move |_: &Record| {
        let p = p.load(Ordering::SeqCst);
        async move {
            assert!(!p, "handler panics");
            Ok(())
        }
    }));
    let r = Record::new("t", 0, 0);
    half_open(&breaker).await;
    let caught = std::panic::AssertUnwindSafe(h.handle(&r))
        .catch_unwind()
        .await;
    assert!(caught.is_err(), "the trial panicked");
    assert_eq!(breaker.state(), BreakerState::Open, "a panic is a failure");
    panics.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert!(h.handle(&r).await.is_ok());
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_trial_gives_the_trial_to_the_next_call() {
    let breaker = Breaker::new(one_failure_opens(), None);
    let hangs = Arc::new(AtomicBool::new(true));
    let hg = hangs.clone();
    let h = Arc::new(
        BreakerLayer::new(breaker.clone()).layer(handler_fn(move |_: &Record| {
            let hang = hg.load(Ordering::SeqCst);
            async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                Ok(())
            }
        })),
    );
    let r = Record::new("t", 0, 0);
    half_open(&breaker).await;
    let trial = tokio::spawn({
        let (h, r) = (h.clone(), r.clone());
        async move { h.handle(&r).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    // A second call waits for the trial.
    hangs.store(false, Ordering::SeqCst);
    let next = tokio::spawn({
        let (h, r) = (h.clone(), r.clone());
        async move { h.handle(&r).await }
    });
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!next.is_finished(), "one trial at a time");
    // Cancel the trial (what stop or abort does to a call in flight).
    trial.abort();
    assert!(trial.await.unwrap_err().is_cancelled());
    let done = tokio::time::timeout(Duration::from_secs(1), next).await;
    assert!(
        done.expect("the waiting call took the trial")
            .unwrap()
            .is_ok(),
        "the new trial succeeded"
    );
    assert_eq!(breaker.state(), BreakerState::Closed);
}
