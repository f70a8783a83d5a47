//! Shutdown: answer pending revokes, then either abort (no commit) or send
//! the final commit and wait for it.

use tokio::sync::oneshot;
use tracing::{error, info, warn};

use super::revoke::PendingRevoke;
use super::{RunSummary, Runtime};
use crate::handler::Runner;
use crate::poller::Command;

impl<R: Runner> Runtime<R> {
    pub(super) async fn finish(mut self, aborted: bool, revokes: Vec<PendingRevoke>) -> RunSummary {
        for r in revokes {
            let _ = r.reply.send(Vec::new());
        }
        let abandoned = self.state.in_flight();
        if aborted {
            let _ = self.commands.send(Command::Abort);
            return RunSummary {
                stats: self.state.stats,
                abandoned_in_flight: abandoned,
                final_commit: Vec::new(),
                aborted: true,
            };
        }
        if abandoned > 0 {
            warn!(
                abandoned,
                "drain deadline passed; unfinished records stay uncommitted"
            );
        }
        let points = if self.at_least_once {
            self.state.commit_points(true)
        } else {
            Vec::new()
        };
        let (tx, rx) = oneshot::channel();
        let _ = self.commands.send(Command::Stop {
            points: points.clone(),
            reply: tx,
        });
        // Keep consuming events so the poll loop never blocks on a full channel.
        let mut rx = rx;
        let committed = loop {
            tokio::select! {
                r = &mut rx => break r.ok(),
                ev = self.events.recv() => if ev.is_none() { break None },
            }
        };
        match committed {
            Some(Ok(())) => info!(partitions = points.len(), "final commit done"),
            Some(Err(e)) => error!(error = %e, "final commit failed"),
            None => error!("poll loop gone before the final commit"),
        }
        RunSummary {
            stats: self.state.stats,
            abandoned_in_flight: abandoned,
            final_commit: points,
            aborted: false,
        }
    }
}
