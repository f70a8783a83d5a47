//! Creates for the Redis store: one script call per chunk of tasks, and
//! coalescing of concurrent single creates into shared calls (group commit,
//! like the embedded store's `fsync`): while one create is in flight, others
//! queue and go out together in the next call.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use redis::Script;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::redis_conn::Conn;
use crate::error::{Error, Result};
use crate::task::{CreateOutcome, Task, TaskSpec};

/// Most tasks per script call.
pub(crate) const CHUNK: usize = 256;
/// Most coalesced calls in flight at once.
const MAX_IN_FLIGHT: usize = 4;

type Reply = oneshot::Sender<Result<CreateOutcome>>;

/// Issues create scripts.
#[derive(Clone)]
pub(crate) struct Creator {
    pub(crate) conn: Conn,
    pub(crate) keys: [String; 2],
    pub(crate) base: String,
    pub(crate) script: Arc<Script>,
}

impl Creator {
    /// Creates up to [`CHUNK`] tasks in one script call.
    pub(crate) async fn chunk(&self, tasks: &[Task]) -> Result<Vec<CreateOutcome>> {
        let mut inv = self.script.prepare_invoke();
        inv.key(&self.keys[0]).key(&self.keys[1]).arg(&self.base);
        let mut specs = Vec::with_capacity(tasks.len());
        for t in tasks {
            let spec = serde_json::to_string(&t.spec).expect("specs serialize");
            inv.arg(t.id())
                .arg(&spec)
                .arg(t.next_due_ms.unwrap_or(t.created_at_ms))
                .arg(if t.spec.is_priority { "1" } else { "0" })
                .arg(t.created_at_ms);
            specs.push(spec);
        }
        let mut conn = self.conn.clone();
        let res: Vec<String> =
            inv.invoke_async(&mut conn)
                .await
                .map_err(|source| Error::Redis {
                    op: "create",
                    source,
                })?;
        Ok(res
            .into_iter()
            .zip(specs)
            .zip(tasks)
            .map(|((existing, spec), t)| {
                // Equal as specs, not only as text: the trace a task was
                // created under is not part of its identity.
                if existing.is_empty() {
                    CreateOutcome::Created
                } else if existing == spec
                    || serde_json::from_str::<TaskSpec>(&existing).ok().as_ref() == Some(&t.spec)
                {
                    CreateOutcome::Duplicate
                } else {
                    CreateOutcome::Conflict
                }
            })
            .collect())
    }
}

/// Single creates: direct when alone, coalesced when concurrent.
pub(crate) struct Coalescer {
    creator: Creator,
    queue: mpsc::UnboundedSender<(Task, Reply)>,
    in_flight: AtomicUsize,
}

impl Coalescer {
    /// Starts the background loop (needs a tokio runtime).
    pub(crate) fn start(creator: Creator) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(creator.clone(), rx));
        Coalescer {
            creator,
            queue,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// The underlying creator, for already batched creates.
    pub(crate) fn creator(&self) -> &Creator {
        &self.creator
    }

    /// Creates one task.
    pub(crate) async fn create(&self, task: Task) -> Result<CreateOutcome> {
        struct Guard<'a>(&'a AtomicUsize);
        impl Drop for Guard<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::AcqRel);
            }
        }
        let alone = self.in_flight.fetch_add(1, Ordering::AcqRel) == 0;
        let _guard = Guard(&self.in_flight);
        if alone {
            return self
                .creator
                .chunk(std::slice::from_ref(&task))
                .await
                .map(first);
        }
        let (tx, rx) = oneshot::channel();
        if self.queue.send((task, tx)).is_err() {
            return Err(Error::WriterStopped("redis create loop stopped".into()));
        }
        rx.await
            .unwrap_or_else(|_| Err(Error::WriterStopped("redis create loop stopped".into())))
    }
}

fn first(mut v: Vec<CreateOutcome>) -> CreateOutcome {
    v.pop().expect("one outcome per task")
}

async fn run(creator: Creator, mut rx: mpsc::UnboundedReceiver<(Task, Reply)>) {
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        let permit = slots.clone().acquire_owned().await.expect("never closed");
        let mut batch = vec![first];
        while batch.len() < CHUNK {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let creator = creator.clone();
        tokio::spawn(async move {
            let (tasks, replies): (Vec<Task>, Vec<Reply>) = batch.into_iter().unzip();
            match creator.chunk(&tasks).await {
                Ok(outcomes) => {
                    for (reply, o) in replies.into_iter().zip(outcomes) {
                        let _ = reply.send(Ok(o));
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for reply in replies {
                        let _ = reply.send(Err(Error::Redis {
                            op: "create",
                            source: redis::RedisError::from((
                                redis::ErrorKind::IoError,
                                "batched create failed",
                                msg.clone(),
                            )),
                        }));
                    }
                }
            }
            drop(permit);
        });
    }
}
