//! The dispatcher task: feeds the [`Dispatcher`] with fetched records and
//! finished jobs, starts jobs, answers revokes, commits on an interval and
//! drives graceful shutdown.
//!
//! # Layout
//!
//! - this file: the loop, fetched records and finished jobs in, jobs out.
//! - `at_most_once`: commit past the records before they run.
//! - `revoke`: answering a revoke once its partitions drained.
//! - `shutdown`: the drain and the final commit.

mod at_most_once;
mod revoke;
mod shutdown;

use at_most_once::{await_commit, AwaitingCommit};
use revoke::PendingRevoke;

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::dispatch::{
    Action, CommitPoint, DispatchStats, Dispatcher, FrozenInfo, Job, Outcome, Tp,
};
use crate::handler::{JobFuture, Runner};
use crate::health::Health;
use crate::metrics::Metrics;
use crate::poller::{Command, Event};

/// Requests from a [`crate::WorkerHandle`].
pub(crate) enum ApiCmd {
    Resume(Tp, oneshot::Sender<bool>),
    Frozen(oneshot::Sender<Vec<FrozenInfo>>),
    Assigned(oneshot::Sender<Vec<Tp>>),
    Abort,
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Counters of the run.
    pub stats: DispatchStats,
    /// Records still in flight when the drain deadline passed (not committed).
    pub abandoned_in_flight: usize,
    /// What the final commit covered.
    pub final_commit: Vec<CommitPoint>,
    /// Whether the run was aborted (no final commit).
    pub aborted: bool,
}

pub(crate) struct Runtime<R: Runner> {
    pub state: Dispatcher,
    pub runner: Arc<R>,
    pub events: mpsc::Receiver<Event>,
    pub commands: std::sync::mpsc::Sender<Command>,
    pub api: mpsc::UnboundedReceiver<ApiCmd>,
    pub cancel: CancellationToken,
    pub commit_interval: Duration,
    pub drain_timeout: Duration,
    pub at_least_once: bool,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    pub futs: FuturesUnordered<JobFuture>,
    /// At-most-once: jobs waiting for the commit past them to be confirmed.
    pub awaiting_commit: Option<AwaitingCommit>,
    /// While `true`, nothing starts and every partition is paused.
    pub gate: Option<tokio::sync::watch::Receiver<bool>>,
}

impl<R: Runner> Runtime<R> {
    /// Starts a job, completing it inline when its future is immediately ready.
    fn start(&mut self, job: Job) {
        let mut fut = self.runner.run(job);
        let mut cx = Context::from_waker(Waker::noop());
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready((job, outcome)) => self.complete(job, outcome),
            // FuturesUnordered polls new futures again with a real waker.
            Poll::Pending => self.futs.push(fut),
        }
    }

    fn complete(&mut self, job: Job, outcome: Outcome) {
        if let Some(f) = self.state.complete(job, outcome) {
            error!(
                topic = %f.tp.0, partition = f.tp.1, offset = f.offset,
                kind = %f.error.kind, error = %f.error.message,
                "record failed: partition frozen (nothing past it is committed); resume it through the API"
            );
        }
    }

    fn pump(&mut self) {
        if self.at_least_once {
            while let Some(job) = self.state.next_job() {
                self.start(job);
            }
        } else if self.awaiting_commit.is_none() {
            // At-most-once: commit past the records first, run them after.
            let mut jobs = Vec::new();
            while let Some(job) = self.state.next_job() {
                jobs.push(job);
            }
            if !jobs.is_empty() {
                self.send_commit_now(jobs);
            }
        }
        let actions = self.state.take_actions();
        if !actions.is_empty() {
            let (mut pause, mut resume) = (Vec::new(), Vec::new());
            for a in actions {
                match a {
                    Action::Pause(tp) => pause.push(tp),
                    Action::Resume(tp) => resume.push(tp),
                }
            }
            if !pause.is_empty() {
                let _ = self.commands.send(Command::Pause(pause));
            }
            if !resume.is_empty() {
                let _ = self.commands.send(Command::Resume(resume));
            }
        }
        self.metrics.in_flight.set(self.state.in_flight() as i64);
        self.metrics.buffered.set(self.state.buffered() as i64);
        self.metrics
            .buffered_bytes
            .set(self.state.buffered_bytes() as i64);
    }

    fn on_event(&mut self, ev: Event, revokes: &mut Vec<PendingRevoke>) {
        match ev {
            Event::Records(recs) => {
                for r in recs {
                    self.state.push(r);
                }
            }
            Event::Assigned(list) => {
                for (tp, start, meta) in list {
                    self.state.assign(tp, start, &meta);
                }
            }
            Event::Revoke { tps, reply } => {
                self.state.begin_revoke(&tps);
                revokes.push(PendingRevoke {
                    tps,
                    reply,
                    deadline: Instant::now() + self.drain_timeout,
                });
            }
            Event::Committed { points, result } => {
                if result.is_ok() {
                    self.state.commit_acknowledged(&points);
                }
                if let Err(e) = result {
                    warn!(error = %e, "offset commit failed; will retry on the next tick");
                    let tps: Vec<Tp> = points.into_iter().map(|p| p.tp).collect();
                    self.state.commit_failed(&tps);
                }
            }
        }
    }

    pub async fn run(mut self) -> RunSummary {
        let mut tick = tokio::time::interval(self.commit_interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut revokes: Vec<PendingRevoke> = Vec::new();
        let mut shutdown_at: Option<Instant> = None;
        let mut aborted = false;
        if let Some(g) = &mut self.gate {
            let gated = *g.borrow_and_update();
            self.state.set_gated(gated);
        }
        loop {
            let next_due = self.state.release_due();
            self.pump();
            self.answer_revokes(&mut revokes);
            if let Some(deadline) = shutdown_at {
                if self.state.in_flight() == 0 || Instant::now() >= deadline {
                    break;
                }
            }
            let due_at = next_due.map(|due| {
                let wait = (due - rebound_core::epoch_ms()).max(0) as u64;
                Instant::now() + Duration::from_millis(wait)
            });
            let next_deadline = revokes
                .iter()
                .map(|r| r.deadline)
                .chain(shutdown_at)
                .chain(due_at)
                .min();
            tokio::select! {
                biased;
                _ = self.cancel.cancelled(), if shutdown_at.is_none() => {
                    info!(in_flight = self.state.in_flight(), "shutting down: draining in-flight records");
                    self.health.set_stopping();
                    self.state.start_draining();
                    let _ = self.commands.send(Command::Pause(self.state.assigned()));
                    shutdown_at = Some(Instant::now() + self.drain_timeout);
                }
                Some(cmd) = self.api.recv() => match cmd {
                    ApiCmd::Resume(tp, reply) => {
                        let job = self.state.resume(&tp);
                        let found = job.is_some();
                        if let Some(job) = job {
                            info!(topic = %tp.0, partition = tp.1, "resuming frozen partition");
                            self.start(job);
                        }
                        let _ = reply.send(found);
                    }
                    ApiCmd::Frozen(reply) => { let _ = reply.send(self.state.frozen()); }
                    ApiCmd::Assigned(reply) => { let _ = reply.send(self.state.assigned()); }
                    ApiCmd::Abort => { aborted = true; break; }
                },
                g = gate_changed(&mut self.gate), if self.gate.is_some() => match g {
                    Some(gated) => self.state.set_gated(gated),
                    None => self.gate = None,
                },
                r = await_commit(&mut self.awaiting_commit), if self.awaiting_commit.is_some() => {
                    self.on_commit_now(r);
                }
                Some((job, outcome)) = self.futs.next(), if !self.futs.is_empty() => {
                    self.complete(job, outcome);
                    while let Some(Some((job, outcome))) = self.futs.next().now_or_never() {
                        self.complete(job, outcome);
                    }
                }
                ev = self.events.recv() => match ev {
                    Some(ev) => self.on_event(ev, &mut revokes),
                    None => {
                        error!("poll loop ended unexpectedly");
                        self.health.set_fatal("poll loop ended".into());
                        break;
                    }
                },
                _ = tick.tick(), if self.at_least_once => {
                    self.state.observe_lag();
                    let points = self.state.commit_points(false);
                    if !points.is_empty() {
                        let _ = self.commands.send(Command::Commit(points));
                    }
                }
                _ = sleep_until_opt(next_deadline), if next_deadline.is_some() => {}
            }
        }
        self.finish(aborted, revokes).await
    }
}

async fn gate_changed(gate: &mut Option<tokio::sync::watch::Receiver<bool>>) -> Option<bool> {
    match gate {
        Some(g) => match g.changed().await {
            Ok(()) => Some(*g.borrow_and_update()),
            Err(_) => None,
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
