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

/// Distinct keys a changelog reader holds before writing the largest of
/// its partitions' chunks to its file (one redb transaction).
const CHUNK: usize = 50_000;

/// Changelog readers (clients) per store at most, the partitions being
/// restored spread over them, reading in parallel. One reader for all
/// partitions pays the start-up once but is limited by one fetch at a
/// time: 0.38–0.42 M records/s here against 0.62–0.68 M with four
/// (BENCHMARKS.md, "Restore").
const READERS: usize = 4;

/// Where the changelog topics are.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub brokers: String,
    pub client_config: Vec<(String, String)>,
}

/// A partition being restored: its state and the input offset it must
/// reflect.
pub(crate) struct Restoring {
    pub task: Task,
    pub target: i64,
}

/// Brings every store of each of `parts` to its target input offset from
/// the changelogs, then records the target as the checkpoint. Per store,
/// up to [`READERS`] readers (threads, one client each) share the
/// partitions. Returns the changelog records read.
pub(crate) fn restore(
    src: &Source,
    parts: &mut [Restoring],
    metrics: &StreamMetrics,
) -> Result<u64> {
    let mut read = 0;
    let stores = parts.first().map_or(0, |r| r.task.stores.len());
    for id in 0..stores {
        let mine: Vec<&mut Restoring> = parts
            .iter_mut()
            .filter(|r| r.task.stores[id].is_some())
            .collect();
        if mine.is_empty() {
            continue;
        }
        let n = READERS.min(mine.len());
        let mut groups: Vec<Vec<&mut Restoring>> = (0..n).map(|_| Vec::new()).collect();
        for (i, r) in mine.into_iter().enumerate() {
            groups[i % n].push(r);
        }
        let results: Vec<Result<u64>> = std::thread::scope(|sc| {
            let hs: Vec<_> = groups
                .into_iter()
                .filter(|g| !g.is_empty())
                .map(|g| sc.spawn(move || restore_store(src, g, id, metrics)))
                .collect();
            hs.into_iter()
                .map(|h| h.join().expect("restore thread"))
                .collect()
        });
        for r in results {
            read += r?;
        }
    }
    for r in parts.iter_mut() {
        r.task.persist(r.target, &[])?;
    }
    Ok(read)
}

/// One partition's progress through its changelog partition.
struct Progress<'a> {
    part: &'a mut Restoring,
    /// The last entry of each key wins: a chunk holds distinct keys
    /// only, so the file gets one write per key, not per changelog record.
    chunk: HashMap<Vec<u8>, Option<Vec<u8>>>,
    next: i64,
    read: u64,
}

fn restore_store(
    src: &Source,
    parts: Vec<&mut Restoring>,
    id: usize,
    metrics: &StreamMetrics,
) -> Result<u64> {
    let started = Instant::now();
    let (name, changelog) = {
        let s = parts[0].task.stores[id].as_ref().expect("store");
        (s.name.clone(), s.changelog.clone())
    };
    let mut cfg = ReaderConfig::new(&src.brokers, &changelog)
        .with_read_committed(true)
        .with_timeout(Duration::from_secs(30));
    for (k, v) in &src.client_config {
        cfg = cfg.with_client_config(k, v);
    }
    // A restore reads to the end and stops. librdkafka's defaults cost it
    // ~0.5 s per reader at the end of a partition (the broker holds an
    // empty fetch for fetch.wait.max.ms, 500 ms) and up to 1 s in the
    // middle (a full local queue postpones the next fetch by
    // fetch.queue.backoff.ms, 1 s; the worker's consumer sets the same).
    cfg = cfg
        .with_client_config("fetch.wait.max.ms", "10")
        .with_client_config("fetch.queue.backoff.ms", "10");
    let mut progress: HashMap<i32, Progress<'_>> = HashMap::new();
    for part in parts {
        let s = part.task.stores[id].as_ref().expect("store");
        let from = s.changelog_next;
        cfg = cfg.with_range(part.task.partition, StartAt::Offset(from), None);
        progress.insert(
            part.task.partition,
            Progress {
                part,
                chunk: HashMap::new(),
                next: from,
                read: 0,
            },
        );
    }
    let mut reader = PartitionReader::open(&cfg)?;
    let mut read = 0u64;
    // Distinct keys held in all of this reader's chunks: bounded by
    // `CHUNK` together, whatever the number of partitions it restores.
    let mut held = 0usize;
    loop {
        match reader.poll(Duration::from_millis(500))? {
            Polled::Record(rec) => {
                read += 1;
                if read.is_multiple_of(10_000) {
                    metrics.restored(&changelog, 10_000);
                }
                let Some(p) = progress.get_mut(&rec.partition) else {
                    continue;
                };
                p.read += 1;
                p.next = p.next.max(rec.offset + 1);
                let tag = rec
                    .header_str(STREAM_INPUT_OFFSET)
                    .and_then(|t| t.parse::<i64>().ok());
                if tag.is_some_and(|t| t < p.part.target) {
                    if let Some(key) = rec.key {
                        if p.chunk.insert(key, rec.value).is_none() {
                            held += 1;
                        }
                    }
                }
                if held >= CHUNK {
                    let largest = progress
                        .values_mut()
                        .max_by_key(|p| p.chunk.len())
                        .expect("the record's partition");
                    held -= largest.chunk.len();
                    write(&largest.part.task, &name, &mut largest.chunk, None)?;
                }
            }
            Polled::Idle => {}
            Polled::End => break,
        }
    }
    // Closing a consumer waits for its threads (~0.1 s): not on the way
    // to processing.
    std::thread::spawn(move || drop(reader));
    metrics.restored(&changelog, read % 10_000);
    for p in progress.values_mut() {
        write(&p.part.task, &name, &mut p.chunk, Some(p.next))?;
        let from = std::mem::replace(
            &mut p.part.task.stores[id]
                .as_mut()
                .expect("store")
                .changelog_next,
            p.next,
        );
        metrics.restore_finished(started.elapsed());
        tracing::info!(
            changelog,
            partition = p.part.task.partition,
            from,
            to = p.next,
            read = p.read,
            seconds = started.elapsed().as_secs_f64(),
            "store restored"
        );
    }
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
    let mut txn = db.begin_write().or_db(file)?;
    // Not made durable here (an fsync cost up to ~0.1 s per partition on
    // the restore path): entries and changelog position move together, so
    // a crash leaves a consistent earlier state, brought forward from the
    // changelog again; the task's periodic sync and its close make it
    // durable (see `Task::persist`).
    txn.set_durability(redb::Durability::None).or_db(file)?;
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
