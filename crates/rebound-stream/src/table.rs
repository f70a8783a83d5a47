//! Tables from (compacted) topics and stream–table joins.
//!
//! A [`GlobalTable`] holds every partition of its topic on every instance,
//! so a stream joins it whatever the partitioning of either (no
//! co-partitioning needed). At start the table is read to its end as of
//! then (read_committed) before any stream record is processed; a thread
//! then follows the topic, so later updates reach the join within the
//! follow's fetch latency. A record without a value deletes its key.
//! The table is in memory: size it for tables that fit (reference data,
//! enrichment), not for the stream's own state.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::thread::JoinHandle;
use std::time::Duration;

use rebound_core::Record;
use rebound_worker::reader::{PartitionReader, Polled, ReaderConfig, StartAt};
use tracing::{info, warn};

use crate::codec::Codec;
use crate::error::{Result, StreamError};
use crate::topology::node::{attach, forward};
use crate::topology::KStream;

type Map = Arc<RwLock<HashMap<Vec<u8>, Vec<u8>>>>;

/// A table read from a topic: the latest value of each key.
pub struct GlobalTable<K, V> {
    pub(crate) spec: TableSpec,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> std::fmt::Debug for GlobalTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalTable")
            .field("topic", &self.spec.topic)
            .finish()
    }
}

impl<K, V> GlobalTable<K, V> {
    pub(crate) fn new(spec: TableSpec) -> Self {
        GlobalTable {
            spec,
            _types: PhantomData,
        }
    }
}

/// The topic and the shared map of a table.
#[derive(Clone, Default)]
pub(crate) struct TableSpec {
    pub topic: String,
    pub data: Map,
}

fn apply(data: &Map, rec: Record) {
    let Some(key) = rec.key else { return };
    let mut map = data.write().unwrap_or_else(|e| e.into_inner());
    match rec.value {
        Some(v) => map.insert(key, v),
        None => map.remove(&key),
    };
}

fn reader_cfg(brokers: &str, extra: &[(String, String)], topic: &str) -> ReaderConfig {
    let mut cfg = ReaderConfig::new(brokers, topic)
        .with_read_committed(true)
        .with_timeout(Duration::from_secs(30));
    for (k, v) in extra {
        cfg = cfg.with_client_config(k, v);
    }
    cfg
}

/// A table being followed; dropping it does not stop the thread: call
/// [`stop`](Self::stop).
pub(crate) struct Follower {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Follower {
    /// Stops following and waits for the thread (blocking).
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// Loads `spec` to its end as of now, then follows it on a thread.
/// Blocking.
pub(crate) fn load_and_follow(
    brokers: &str,
    extra: &[(String, String)],
    spec: &TableSpec,
) -> Result<Follower> {
    let base = reader_cfg(brokers, extra, &spec.topic);
    let mut reader = PartitionReader::open(&base)?;
    let spans = reader.spans().to_vec();
    let mut n = 0u64;
    loop {
        match reader.poll(Duration::from_millis(500))? {
            Polled::Record(rec) => {
                n += 1;
                apply(&spec.data, rec);
            }
            Polled::Idle => {}
            Polled::End => break,
        }
    }
    info!(topic = spec.topic, records = n, "table loaded");
    let mut follow = reader_cfg(brokers, extra, &spec.topic).with_follow(true);
    for s in &spans {
        follow = follow.with_range(s.partition, StartAt::Offset(s.end), None);
    }
    let mut reader = PartitionReader::open(&follow)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, data, topic) = (stop.clone(), spec.data.clone(), spec.topic.clone());
    let thread = std::thread::Builder::new()
        .name(format!("table-{topic}"))
        .spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match reader.poll(Duration::from_millis(100)) {
                    Ok(Polled::Record(rec)) => apply(&data, rec),
                    Ok(_) => {}
                    Err(e) => {
                        warn!(topic, error = %rebound_core::DisplayChain(&e), "table follow failed; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        })
        .map_err(|e| StreamError::Stopped(format!("starting the table thread: {e}")))?;
    Ok(Follower { stop, thread })
}

impl<K: Codec, V: Codec> KStream<K, V> {
    /// Joins each record with the table's value for its key: `f(key,
    /// value, table value)`; records whose key is not in the table are
    /// dropped (inner join).
    pub fn join<TV: Codec, VR: Codec>(
        &self,
        table: &GlobalTable<K, TV>,
        f: impl Fn(&K, V, TV) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_with(table, move |k, v, tv: Option<TV>| tv.map(|tv| f(k, v, tv)))
    }

    /// Like [`join`](Self::join), keeping records whose key is not in the
    /// table: `f(key, value, None)`.
    pub fn left_join<TV: Codec, VR: Codec>(
        &self,
        table: &GlobalTable<K, TV>,
        f: impl Fn(&K, V, Option<TV>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_with(table, move |k, v, tv| Some(f(k, v, tv)))
    }

    fn join_with<TV: Codec, VR: Codec>(
        &self,
        table: &GlobalTable<K, TV>,
        f: impl Fn(&K, V, Option<TV>) -> Option<VR> + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let out: KStream<K, VR> = KStream::new(
            self.builder.clone(),
            Default::default(),
            self.source.clone(),
            self.rekeyed,
        );
        let (n, data, topic) = (
            out.next.clone(),
            table.spec.data.clone(),
            table.spec.topic.clone(),
        );
        attach(
            &self.next,
            Box::new(move |ctx, k, v| {
                let found = data
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&k.encode())
                    .map(|b| TV::decode(b));
                let tv = match found {
                    None => None,
                    Some(Ok(tv)) => Some(tv),
                    Some(Err(reason)) => {
                        let reason = format!("table {topic}: {reason}");
                        return Err(StreamError::Decode {
                            what: "joined table value",
                            topic: ctx.record.topic.to_string(),
                            partition: ctx.record.partition,
                            offset: ctx.record.offset,
                            reason,
                        });
                    }
                };
                match f(&k, v, tv) {
                    Some(vr) => forward(ctx, &n, k, vr),
                    None => Ok(()),
                }
            }),
        );
        out
    }
}
