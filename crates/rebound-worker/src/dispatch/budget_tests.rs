//! The byte budget: fetching pauses everywhere when the fetched-but-
//! unfinished bytes reach it, and resumes at half.

use std::sync::Arc;

use rebound_core::{Record, Topic};

use super::{Action, Dispatcher, Limits};
use crate::config::Ordering;
use crate::metrics::Metrics;

/// A record's share of the budget: its bytes plus the fixed allowance.
const SIZE: usize = 1024 + 128;

fn record(partition: i32, offset: i64) -> Record {
    let mut r = Record::new("t", partition, offset);
    r.value = Some(vec![0; 1024]);
    r
}

fn dispatcher() -> Dispatcher {
    let limits = Limits {
        ordering: Ordering::Unordered,
        max_in_flight: 100,
        per_partition: 100,
        max_buffered: 10_000,
        max_buffered_bytes: 10 * SIZE,
        max_batch: 1,
        metadata_budget: 3000,
        delayed_topics: Vec::new(),
    };
    let mut d = Dispatcher::new(limits, Arc::new(Metrics::new()));
    for p in 0..2 {
        d.assign((Topic::intern("t"), p), None, "");
    }
    d
}

fn paused(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Pause(_)))
        .count()
}

#[test]
fn fetching_pauses_at_the_byte_budget_and_resumes_at_half() {
    let mut d = dispatcher();
    for i in 0..9 {
        d.push(record(i % 2, (i / 2) as i64));
    }
    assert_eq!(paused(&d.take_actions()), 0, "under the budget");
    d.push(record(1, 4));
    assert_eq!(paused(&d.take_actions()), 2, "every partition pauses at it");

    // Records still run while fetching is paused; finishing them frees bytes.
    let jobs: Vec<_> = std::iter::from_fn(|| d.next_job()).take(5).collect();
    assert_eq!(jobs.len(), 5);
    let mut resumed = 0;
    for (n, job) in jobs.into_iter().enumerate() {
        d.complete(job, Ok(()));
        let actions = d.take_actions();
        if n < 4 {
            assert!(actions.is_empty(), "still above half: {actions:?}");
        } else {
            resumed = actions
                .iter()
                .filter(|a| matches!(a, Action::Resume(_)))
                .count();
        }
    }
    assert_eq!(resumed, 2, "every partition resumes at half the budget");
}

#[test]
fn a_failed_record_keeps_its_bytes_until_it_is_done() {
    let mut d = dispatcher();
    for i in 0..10 {
        d.push(record(0, i));
    }
    assert_eq!(paused(&d.take_actions()), 2);
    let jobs: Vec<_> = std::iter::from_fn(|| d.next_job()).collect();
    assert_eq!(jobs.len(), 10);
    let mut jobs = jobs.into_iter();
    let failed = jobs.next().unwrap();
    let frozen = d.complete(
        failed,
        Err((0, rebound_core::HandlerError::transient("down"))),
    );
    assert!(frozen.is_some());
    for job in jobs {
        d.complete(job, Ok(()));
    }
    // Nine finished: one record's bytes remain, under half: fetching resumes
    // for the healthy partition; the frozen one stays paused.
    let actions = d.take_actions();
    assert!(
        actions.contains(&Action::Resume((Topic::intern("t"), 1))),
        "{actions:?}"
    );
    assert!(!actions.contains(&Action::Resume((Topic::intern("t"), 0))));
}
