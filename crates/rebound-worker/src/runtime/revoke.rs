//! Revokes: a revoked partition's commit point is answered once its records
//! in flight finished, or when the drain deadline passes.

use tokio::time::Instant;
use tracing::warn;

use super::Runtime;
use crate::dispatch::{CommitPoint, Tp};
use crate::handler::Runner;

pub(super) struct PendingRevoke {
    pub(super) tps: Vec<Tp>,
    pub(super) reply: std::sync::mpsc::Sender<Vec<CommitPoint>>,
    pub(super) deadline: Instant,
}

impl<R: Runner> Runtime<R> {
    pub(super) fn answer_revokes(&mut self, revokes: &mut Vec<PendingRevoke>) {
        let now = Instant::now();
        let mut i = 0;
        while i < revokes.len() {
            let r = &revokes[i];
            if self.state.drained(&r.tps) || now >= r.deadline {
                let r = revokes.swap_remove(i);
                if !self.state.drained(&r.tps) {
                    warn!("revoke deadline passed with records in flight: their offsets are not committed");
                }
                let points = self.state.finish_revoke(&r.tps);
                let _ = r.reply.send(if self.at_least_once {
                    points
                } else {
                    Vec::new()
                });
            } else {
                i += 1;
            }
        }
    }
}
