//! Restoring a store from its changelog partition: from the offset the
//! file already reflects to the end, applying only entries whose tag (the
//! input offset that wrote them, header `rebound.stream.offset`) is below
//! the restore target — the input offset the state must reflect.
//!
//! Why the tag: a `read_committed` reader on Apache Kafka never sees
//! records of aborted transactions, but tansu shows them. An entry written
//! by an aborted transaction carries an input offset at or above the
//! committed one (its input was not committed), so it is skipped; its input
//! is processed again and writes a new entry. An entry below the target was
//! committed with its input: the last such entry of a key is the key's
//! value at the target (each commit flushes every key it changed).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rebound_core::headers::STREAM_INPUT_OFFSET;
use rebound_worker::reader::{PartitionReader, Polled, ReaderConfig, StartAt};

use super::db::{store_table, OrDb, META};
use super::Task;
use crate::error::Result;
use crate::metrics::StreamMetrics;

/// Distinct keys written to the file per redb transaction while restoring.
const CHUNK: usize = 50_000;

/// Where the changelog topics are.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub brokers: String,
    pub client_config: Vec<(String, String)>,
}

/// Brings every store of `task` to input offset `target` from the
/// changelogs, then records `target` as the checkpoint. Returns the
/// changelog records read.
pub(crate) fn restore(
    src: &Source,
    task: &mut Task,
    target: i64,
    metrics: &StreamMetrics,
) -> Result<u64> {
    let mut read = 0;
    for id in 0..task.stores.len() {
        if task.stores[id].is_some() {
            read += restore_store(src, task, id, target, metrics)?;
        }
    }
    task.persist(target, &[])?;
    Ok(read)
}

fn restore_store(
    src: &Source,
    task: &mut Task,
    id: usize,
    target: i64,
    metrics: &StreamMetrics,
) -> Result<u64> {
    let (name, changelog, from) = {
        let s = task.stores[id].as_ref().expect("store");
        (s.name.clone(), s.changelog.clone(), s.changelog_next)
    };
    let mut cfg = ReaderConfig::new(&src.brokers, &changelog)
        .with_range(task.partition, StartAt::Offset(from), None)
        .with_read_committed(true)
        .with_timeout(Duration::from_secs(30));
    for (k, v) in &src.client_config {
        cfg = cfg.with_client_config(k, v);
    }
    let mut reader = PartitionReader::open(&cfg)?;
    let started = Instant::now();
    // The last entry of each key wins: a chunk holds distinct keys only,
    // so the file gets one write per key, not per changelog record.
    let mut chunk: HashMap<Vec<u8>, Option<Vec<u8>>> = HashMap::new();
    let (mut next, mut read) = (from, 0u64);
    loop {
        match reader.poll(Duration::from_millis(500))? {
            Polled::Record(rec) => {
                read += 1;
                next = next.max(rec.offset + 1);
                let tag = rec
                    .header_str(STREAM_INPUT_OFFSET)
                    .and_then(|t| t.parse::<i64>().ok());
                if tag.is_some_and(|t| t < target) {
                    if let Some(key) = rec.key {
                        chunk.insert(key, rec.value);
                    }
                }
                if chunk.len() >= CHUNK {
                    write(task, &name, &mut chunk, None)?;
                }
                if read % 10_000 == 0 {
                    metrics.restored(&changelog, 10_000);
                }
            }
            Polled::Idle => {}
            Polled::End => break,
        }
    }
    write(task, &name, &mut chunk, Some(next))?;
    metrics.restored(&changelog, read % 10_000);
    task.stores[id].as_mut().expect("store").changelog_next = next;
    metrics.restore_finished(started.elapsed());
    tracing::info!(
        changelog,
        partition = task.partition,
        from,
        to = next,
        read,
        seconds = started.elapsed().as_secs_f64(),
        "store restored"
    );
    Ok(read)
}

/// Writes `chunk` into store `name` (and the changelog position, at the end).
fn write(
    task: &Task,
    name: &str,
    chunk: &mut HashMap<Vec<u8>, Option<Vec<u8>>>,
    next: Option<i64>,
) -> Result<()> {
    let (db, path) = task.db();
    let file: &std::path::Path = path;
    let txn = db.begin_write().or_db(file)?;
    {
        let mut table = txn.open_table(store_table(name)).or_db(file)?;
        for (k, v) in chunk.drain() {
            match v {
                Some(v) => table.insert(k.as_slice(), v.as_slice()).map(drop),
                None => table.remove(k.as_slice()).map(drop),
            }
            .or_db(file)?;
        }
        if let Some(next) = next {
            let mut meta = txn.open_table(META).or_db(file)?;
            meta.insert(format!("changelog:{name}").as_str(), next)
                .or_db(file)?;
        }
    }
    txn.commit().or_db(file)
}
