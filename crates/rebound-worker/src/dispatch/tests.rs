//! The dispatcher's pure logic on injected time: key order, the commit
//! watermark, freezing and resuming, held retry-tier records, revoking.

use std::sync::atomic::{AtomicI64, Ordering as AtomicOrdering};
use std::sync::Arc;

use rebound_core::{headers, HandlerError, Header, Record, Topic};

use super::{Action, Dispatcher, Job, Limits};
use crate::config::Ordering;
use crate::metrics::Metrics;

const T0: i64 = 1_700_000_000_000;

fn limits(ordering: Ordering) -> Limits {
    Limits {
        ordering,
        max_in_flight: 100,
        per_partition: 100,
        max_buffered: 1000,
        max_buffered_bytes: 1 << 30,
        max_batch: 10,
        metadata_budget: 3000,
        delayed_topics: vec!["t.retry-1".into()],
    }
}

/// A dispatcher on a clock the test moves, with `t` partition 0 (or the
/// given topic) assigned from offset 0.
fn dispatcher(ordering: Ordering, topic: &str) -> (Dispatcher, Arc<AtomicI64>) {
    dispatcher_with(ordering, topic, Arc::new(Metrics::new()))
}

fn dispatcher_with(
    ordering: Ordering,
    topic: &str,
    metrics: Arc<Metrics>,
) -> (Dispatcher, Arc<AtomicI64>) {
    let now = Arc::new(AtomicI64::new(T0));
    let clock = now.clone();
    let mut d = Dispatcher::with_clock(
        limits(ordering),
        metrics,
        Arc::new(move || clock.load(AtomicOrdering::SeqCst)),
    );
    d.assign((Topic::intern(topic), 0), None, "");
    (d, now)
}

fn rec(topic: &str, offset: i64, key: &str) -> Record {
    let mut r = Record::new(topic, 0, offset);
    r.key = Some(key.as_bytes().to_vec());
    r
}

fn due(mut r: Record, at: i64) -> Record {
    r.headers.push(Header {
        name: headers::DUE.into(),
        value: Some(at.to_string().into_bytes()),
    });
    r
}

fn offset(job: &Job) -> i64 {
    job.first().expect("a record").offset
}

/// Every job that may start now.
fn start_all(d: &mut Dispatcher) -> Vec<Job> {
    std::iter::from_fn(|| d.next_job()).collect()
}

/// The partition's commit point: its first unfinished offset.
fn watermark(d: &mut Dispatcher) -> Option<i64> {
    d.commit_points(true).first().map(|p| p.offset)
}

#[test]
fn one_record_per_key_at_a_time_while_other_keys_run() {
    let (mut d, _) = dispatcher(Ordering::Key, "t");
    for (o, k) in [(0, "a"), (1, "a"), (2, "b"), (3, "a")] {
        d.push(rec("t", o, k));
    }
    let offsets = |jobs: &[Job]| jobs.iter().map(offset).collect::<Vec<_>>();
    let mut running = start_all(&mut d);
    assert_eq!(offsets(&running), [0, 2], "a and b at once");
    let b = running.pop().unwrap();
    d.complete(b, Ok(()));
    assert!(start_all(&mut d).is_empty(), "a's next waits for a's first");
    d.complete(running.pop().unwrap(), Ok(()));
    let next = start_all(&mut d);
    assert_eq!(offsets(&next), [1]);
    for j in next {
        d.complete(j, Ok(()));
    }
    let last = start_all(&mut d);
    assert_eq!(offsets(&last), [3]);
    for j in last {
        d.complete(j, Ok(()));
    }
    assert_eq!(watermark(&mut d), Some(4));
}

#[test]
fn the_watermark_waits_for_the_lowest_unfinished_offset() {
    let (mut d, _) = dispatcher(Ordering::Unordered, "t");
    for o in 0..3 {
        d.push(rec("t", o, &o.to_string()));
    }
    let mut jobs = start_all(&mut d);
    assert_eq!(jobs.len(), 3);
    let third = jobs.pop().unwrap();
    d.complete(third, Ok(()));
    assert_eq!(watermark(&mut d), Some(0), "offset 0 is not finished");
    let first = jobs.remove(0);
    d.complete(first, Ok(()));
    assert_eq!(watermark(&mut d), Some(1), "1 is still running");
    d.complete(jobs.remove(0), Ok(()));
    assert_eq!(watermark(&mut d), Some(3));
    assert!(
        d.commit_points(false).is_empty(),
        "nothing changed since sent"
    );
    assert_eq!(d.stats.processed, 3);
}

#[test]
fn a_failure_freezes_its_partition_and_resume_runs_the_failed_record_first() {
    let (mut d, _) = dispatcher(Ordering::Partition, "t");
    d.push(rec("t", 0, "a"));
    d.push(rec("t", 1, "b"));
    let job = d.next_job().unwrap();
    let frozen = d
        .complete(job, Err((0, HandlerError::transient("down"))))
        .unwrap();
    assert_eq!((frozen.offset, frozen.error.message.as_str()), (0, "down"));
    assert!(
        d.next_job().is_none(),
        "nothing of a frozen partition starts"
    );
    assert!(d
        .take_actions()
        .contains(&Action::Pause((Topic::intern("t"), 0))));
    assert_eq!(watermark(&mut d), Some(0), "not past the failed record");

    let again = d.resume(&(Topic::intern("t"), 0)).unwrap();
    assert_eq!(offset(&again), 0, "the failed record runs again first");
    d.complete(again, Ok(()));
    let next = d.next_job().unwrap();
    assert_eq!(offset(&next), 1);
    d.complete(next, Ok(()));
    assert_eq!(watermark(&mut d), Some(2));
    assert_eq!((d.stats.processed, d.stats.failed), (2, 1));
}

#[test]
fn tier_records_wait_for_their_due_time_in_arrival_order() {
    let (mut d, now) = dispatcher(Ordering::Unordered, "t.retry-1");
    d.push(due(rec("t.retry-1", 0, "a"), T0 + 5_000));
    // Due earlier, but behind a held record: a tier is a FIFO.
    d.push(due(rec("t.retry-1", 1, "b"), T0 + 1_000));
    assert!(d.next_job().is_none());
    assert_eq!(d.release_due(), Some(T0 + 5_000));
    assert!(d.next_job().is_none());
    assert_eq!(watermark(&mut d), Some(0), "held records are not committed");

    now.store(T0 + 4_999, AtomicOrdering::SeqCst);
    assert_eq!(d.release_due(), Some(T0 + 5_000));
    assert!(d.next_job().is_none(), "not a millisecond early");

    now.store(T0 + 5_000, AtomicOrdering::SeqCst);
    assert_eq!(d.release_due(), None, "nothing left waiting");
    let jobs = start_all(&mut d);
    assert_eq!(jobs.iter().map(offset).collect::<Vec<_>>(), [0, 1]);
    // A record already due when fetched starts at once.
    d.push(due(rec("t.retry-1", 2, "c"), T0));
    assert_eq!(d.next_job().as_ref().map(offset), Some(2));
}

#[test]
fn revoking_drops_queued_records_waits_for_in_flight_and_keeps_the_watermark() {
    let (mut d, _) = dispatcher(Ordering::Partition, "t");
    for o in 0..3 {
        d.push(rec("t", o, "k"));
    }
    let running = d.next_job().unwrap();
    let tp = [(Topic::intern("t"), 0)];
    d.begin_revoke(&tp);
    assert_eq!(d.stats.dropped_revoked, 2);
    assert!(!d.drained(&tp));
    assert!(d.next_job().is_none());
    d.push(rec("t", 3, "k"));
    assert_eq!(
        d.stats.dropped_revoked, 3,
        "fetched after the revoke: dropped"
    );
    d.complete(running, Ok(()));
    assert!(d.drained(&tp));
    let points = d.finish_revoke(&tp);
    assert_eq!(points.iter().map(|p| p.offset).collect::<Vec<_>>(), [1]);
    assert!(d.assigned().is_empty());
    assert_eq!(d.buffered(), 0);
}

#[test]
fn lag_seconds_is_the_age_of_the_oldest_unfinished_record() {
    let metrics = Arc::new(Metrics::new());
    let (mut d, now) = dispatcher_with(Ordering::Unordered, "t", metrics.clone());
    for (o, age_ms) in [(0, 9_000), (1, 5_000), (2, 1_000)] {
        let mut r = rec("t", o, "k");
        r.timestamp = Some(T0 - age_ms);
        d.push(r);
    }
    let mut jobs = start_all(&mut d);
    assert_eq!(jobs.len(), 3);
    d.observe_lag();
    assert_eq!(metrics.lag_seconds("t", 0), 9.0);
    // Offset 1 finishing changes nothing: offset 0 is still the oldest.
    d.complete(jobs.remove(1), Ok(()));
    now.fetch_add(500, AtomicOrdering::SeqCst);
    d.observe_lag();
    assert_eq!(metrics.lag_seconds("t", 0), 9.5);
    d.complete(jobs.remove(0), Ok(()));
    d.observe_lag();
    assert_eq!(metrics.lag_seconds("t", 0), 1.5);
    d.complete(jobs.remove(0), Ok(()));
    d.observe_lag();
    assert_eq!(metrics.lag_seconds("t", 0), 0.0);
}
