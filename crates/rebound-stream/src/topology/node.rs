//! The processing graph at run time: a record enters at its topic's source,
//! each operator is a closure that does its work and forwards to the
//! operators downstream of it, and stateful ones read and write the state
//! of the record's partition through the [`Ctx`].

use std::sync::{Arc, Mutex};

use rebound_core::Record;
use rebound_producer::OutRecord;

use crate::error::Result;
use crate::metrics::StreamMetrics;
use crate::state::Task;

/// What an operator sees besides the key and value: the record's position,
/// its partition's state, and where output goes.
pub(crate) struct Ctx<'a> {
    /// The state of the record's input partition.
    pub task: &'a mut Task,
    /// Records to send (output, repartition) in this commit.
    pub out: &'a mut Vec<OutRecord>,
    /// The input record (its key and value are taken by the source).
    pub record: &'a Record,
    /// The record's timestamp, epoch ms (now when it has none).
    pub timestamp: i64,
    /// The application's metrics.
    pub metrics: &'a StreamMetrics,
}

/// One operator: consumes a key and a value.
pub(crate) type Proc<K, V> = Box<dyn Fn(&mut Ctx<'_>, K, V) -> Result<()> + Send + Sync>;

/// The operators downstream of a stream. Filled while the topology is
/// built; at run time only one task calls them, so the lock is uncontended.
pub(crate) type Next<K, V> = Arc<Mutex<Vec<Proc<K, V>>>>;

/// A source: decodes a consumed record's key and value (taken out of the
/// record, no copy) and pushes them into its stream.
pub(crate) type Source =
    Arc<dyn Fn(&mut Ctx<'_>, Option<Vec<u8>>, Option<Vec<u8>>) -> Result<()> + Send + Sync>;

/// Hands `k`, `v` to every operator downstream (cloning for all but the last).
pub(crate) fn forward<K: Clone, V: Clone>(
    ctx: &mut Ctx<'_>,
    next: &Next<K, V>,
    k: K,
    v: V,
) -> Result<()> {
    let procs = next.lock().unwrap_or_else(|e| e.into_inner());
    let Some((last, rest)) = procs.split_last() else {
        return Ok(());
    };
    for p in rest {
        p(ctx, k.clone(), v.clone())?;
    }
    last(ctx, k, v)
}

/// Adds `proc` downstream of `next`.
pub(crate) fn attach<K, V>(next: &Next<K, V>, proc: Proc<K, V>) {
    next.lock().unwrap_or_else(|e| e.into_inner()).push(proc);
}
