//! At-most-once: the commit past a set of records is confirmed before any
//! of them runs, so a crash can lose them but never run them twice.

use tokio::sync::oneshot;
use tracing::{error, warn};

use super::Runtime;
use crate::dispatch::{CommitPoint, Job, Tp};
use crate::handler::Runner;
use crate::poller::Command;

pub(crate) struct AwaitingCommit {
    pub(super) jobs: Vec<Job>,
    pub(super) reply: oneshot::Receiver<Result<(), rdkafka::error::KafkaError>>,
}

impl<R: Runner> Runtime<R> {
    pub(super) fn send_commit_now(&mut self, jobs: Vec<Job>) {
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::CommitNow {
            points: commit_past(&jobs),
            reply: tx,
        });
        self.awaiting_commit = Some(AwaitingCommit { jobs, reply: rx });
    }

    pub(super) fn on_commit_now(&mut self, result: Result<(), rdkafka::error::KafkaError>) {
        let Some(waiting) = self.awaiting_commit.take() else {
            return;
        };
        match result {
            Ok(()) => {
                for job in waiting.jobs {
                    self.start(job);
                }
            }
            Err(rdkafka::error::KafkaError::Canceled) => {
                error!(
                    jobs = waiting.jobs.len(),
                    "poll loop gone before the at-most-once commit; records not handled"
                );
            }
            Err(e) => {
                // Running them uncommitted could run them twice after a crash.
                warn!(error = %e, "at-most-once commit failed; retrying before handling");
                self.send_commit_now(waiting.jobs);
            }
        }
    }
}

pub(super) async fn await_commit(
    waiting: &mut Option<AwaitingCommit>,
) -> Result<(), rdkafka::error::KafkaError> {
    match waiting {
        Some(w) => (&mut w.reply)
            .await
            .unwrap_or(Err(rdkafka::error::KafkaError::Canceled)),
        None => std::future::pending().await,
    }
}

/// One past the highest offset of each partition among `jobs`.
fn commit_past(jobs: &[Job]) -> Vec<CommitPoint> {
    let mut next: std::collections::HashMap<Tp, i64> = std::collections::HashMap::new();
    for job in jobs {
        let last = match job {
            Job::One { item, .. } => Some(&item.rec),
            Job::Batch { recs, .. } => recs.last(),
        };
        if let Some(r) = last {
            let e = next.entry((r.topic, r.partition)).or_insert(0);
            *e = (*e).max(r.offset + 1);
        }
    }
    next.into_iter()
        .map(|(tp, offset)| CommitPoint {
            tp,
            offset,
            metadata: String::new(),
        })
        .collect()
}
