//! One batch's output acknowledgements, counted (at-least-once).
//!
//! Outputs are queued with a delivery callback that counts down the
//! batch's outstanding records, so batch N can wait for its own outputs
//! while batch N+1's are queued behind them: a producer flush would wait
//! for both. A callback is one allocation per record, like the future of
//! `enqueue`, and needs no task to poll it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rebound_producer::{OutRecord, Producer};
use tokio::sync::Notify;

use crate::error::{FailedOutput, StreamError};

/// The outputs of one batch: queued, not yet reported, and the first failure.
#[derive(Default)]
pub(crate) struct BatchAcks {
    outstanding: AtomicUsize,
    failed: AtomicUsize,
    first_failure: Mutex<Option<(String, FailedOutput)>>,
    done: Notify,
}

impl BatchAcks {
    /// Queues `rec`, counted in this batch.
    pub async fn send(self: &Arc<Self>, p: &Producer, rec: &OutRecord) -> Result<(), StreamError> {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
        let me = self.clone();
        let partition = rec.partition;
        let sent = p
            .send_with_callback(rec, move |outcome| {
                if let Err(e) = outcome {
                    if me.failed.fetch_add(1, Ordering::AcqRel) == 0 {
                        let failed = FailedOutput {
                            topic: e.topic.clone(),
                            partition,
                        };
                        let mut first = me.first_failure.lock().unwrap_or_else(|p| p.into_inner());
                        *first = Some((e.to_string(), failed));
                    }
                }
                me.reported();
            })
            .await;
        if let Err(e) = sent {
            self.reported();
            return Err(e.into());
        }
        Ok(())
    }

    fn reported(&self) {
        if self.outstanding.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_waiters();
        }
    }

    /// Waits until every output of the batch is reported (up to `timeout`);
    /// an error when any failed: the batch must not be committed.
    pub async fn wait(&self, timeout: Duration) -> Result<(), StreamError> {
        let all = async {
            loop {
                let notified = self.done.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if self.outstanding.load(Ordering::Acquire) == 0 {
                    return;
                }
                notified.await;
            }
        };
        if tokio::time::timeout(timeout, all).await.is_err() {
            return Err(StreamError::Stopped(format!(
                "{} output record(s) not acknowledged after {timeout:?}; the batch is not committed",
                self.outstanding.load(Ordering::Acquire)
            )));
        }
        let failed = self.failed.load(Ordering::Acquire);
        if failed > 0 {
            let first = self
                .first_failure
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            let (why, output) =
                first.expect("a failure is recorded before it is counted as reported");
            return Err(StreamError::Undelivered {
                failed,
                output,
                why,
            });
        }
        Ok(())
    }
}
