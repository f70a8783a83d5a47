//! Publishing one batch: every good row queued at once on the idempotent
//! producer (per partition, Kafka keeps the queue order), bad rows set
//! aside, then every acknowledgement awaited. Nothing here touches the
//! database: the outcome is recorded by the caller in one transaction.
//!
//! A row whose delivery failed transiently (after librdkafka's retries)
//! stays pending, and so do the later rows of its key in the batch, even
//! those delivered: they are published again after it. The one reordering
//! this allows is that a delivered later row appears once ahead of it.

use std::collections::{HashMap, HashSet};

use futures::future::join_all;
use rebound_core::{headers as h, DisplayChain};
use rebound_producer::{Delivered, OutRecord, Pending, ProduceError, Producer};

use super::topics::{Exists, Topics};
use crate::row::{to_record, BadRow, PendingRow};
use crate::store::Finished;
use crate::RelayMetrics;

/// Publishes batches.
pub(crate) struct Publisher {
    pub(crate) producer: Producer,
    pub(crate) topics: Topics,
    pub(crate) dead_letter: Option<String>,
}

/// What happened to one row.
enum Fate {
    Sent(Pending),
    /// Never publishable; `Some` while its dead-letter copy is in flight.
    Bad(String, &'static str, Option<Pending>),
    /// Try again later (the key's later rows wait).
    Again,
}

impl Publisher {
    /// Publishes `rows` (in publish order); returns what to record and how
    /// many rows stay pending.
    pub(crate) async fn publish(
        &mut self,
        rows: &[PendingRow],
        metrics: &RelayMetrics,
    ) -> (Finished, usize) {
        let exists = self.check_topics(rows).await;
        let max = self.producer.config().max_message_size();
        let mut fates = Vec::with_capacity(rows.len());
        for row in rows {
            let record = match exists.get(row.topic.as_str()) {
                Some(Exists::No) => Err(BadRow::UnknownTopic(row.topic.clone())),
                Some(Exists::Unknown) => {
                    fates.push(Fate::Again);
                    continue;
                }
                _ => to_record(row, max),
            };
            let fate = match record {
                Ok(rec) => match self.producer.enqueue(&rec).await {
                    Ok(p) => Fate::Sent(p),
                    Err(e) if e.retriable => Fate::Again,
                    Err(e) => Fate::Bad(DisplayChain(&e).to_string(), "rejected", None),
                },
                Err(bad) => Fate::Bad(bad.to_string(), reason(&bad), None),
            };
            fates.push(self.dead_letter_if_bad(row, fate).await);
        }
        let outcomes = join_all(fates.into_iter().map(settle)).await;
        let mut done = Finished::default();
        let mut waiting = 0;
        let mut blocked: HashSet<&str> = HashSet::new();
        for (row, outcome) in rows.iter().zip(outcomes) {
            if let Some(k) = row.key.as_deref() {
                if blocked.contains(k) {
                    waiting += 1;
                    continue;
                }
            }
            match outcome {
                Outcome::Published => done.published.push(row.id),
                Outcome::Failed(error, why) => {
                    metrics.record_failed(why);
                    done.failed.push((row.id, error));
                }
                Outcome::Again => {
                    waiting += 1;
                    if let Some(k) = row.key.as_deref() {
                        blocked.insert(k);
                    }
                }
            }
        }
        (done, waiting)
    }

    async fn check_topics<'r>(&mut self, rows: &'r [PendingRow]) -> HashMap<&'r str, Exists> {
        let mut out = HashMap::new();
        for row in rows {
            if !out.contains_key(row.topic.as_str()) && !row.topic.trim().is_empty() {
                let e = self.topics.exists(&row.topic).await;
                out.insert(row.topic.as_str(), e);
            }
        }
        out
    }

    /// Queues the dead-letter copy of a bad row, when there is a
    /// dead-letter topic; a row whose copy cannot be queued is tried again.
    async fn dead_letter_if_bad(&self, row: &PendingRow, fate: Fate) -> Fate {
        let (Fate::Bad(error, why, None), Some(dlq)) = (&fate, &self.dead_letter) else {
            return fate;
        };
        let mut rec = OutRecord {
            topic: dlq.clone(),
            key: row.key.as_ref().map(|k| k.as_bytes().to_vec()),
            value: row.payload.clone(),
            ..Default::default()
        };
        rec.set_header(h::ORIGINAL_TOPIC, row.topic.as_bytes());
        rec.set_header(h::OUTBOX_ID, row.outbox_id.as_bytes());
        rec.set_header(h::ERROR_KIND, "permanent");
        rec.set_header(h::ERROR_MESSAGE, error.as_bytes());
        if let Some(text) = &row.headers {
            rec.set_header("rebound.outbox.headers", text.as_bytes());
        }
        // An oversized row's copy goes without its payload (the row keeps it).
        if rec.size() > self.producer.config().max_message_size() {
            rec.value = None;
            rec.headers.retain(|h| h.name != "rebound.outbox.headers");
        }
        match self.producer.enqueue(&rec).await {
            Ok(p) => Fate::Bad(error.clone(), why, Some(p)),
            Err(e) if e.retriable => Fate::Again,
            // The copy can never be sent: the row is still marked failed
            // (it keeps the error), it must not hold its key forever.
            Err(_) => Fate::Bad(error.clone(), why, None),
        }
    }
}

enum Outcome {
    Published,
    Failed(String, &'static str),
    Again,
}

async fn settle(fate: Fate) -> Outcome {
    match fate {
        Fate::Sent(p) => from_delivery(p.await),
        Fate::Bad(error, why, None) => Outcome::Failed(error, why),
        Fate::Bad(error, why, Some(dlq)) => match dlq.await {
            Err(e) if e.retriable => Outcome::Again,
            _ => Outcome::Failed(error, why),
        },
        Fate::Again => Outcome::Again,
    }
}

fn from_delivery(r: Result<Delivered, ProduceError>) -> Outcome {
    match r {
        Ok(_) => Outcome::Published,
        Err(e) if e.retriable => Outcome::Again,
        Err(e) => Outcome::Failed(DisplayChain(&e).to_string(), "rejected"),
    }
}

fn reason(bad: &BadRow) -> &'static str {
    match bad {
        BadRow::Headers(_) => "headers",
        BadRow::Oversized { .. } => "oversized",
        BadRow::UnknownTopic(_) => "unknown_topic",
        BadRow::EmptyTopic => "empty_topic",
    }
}
