//! The typed topology API: [`StreamBuilder`] makes [`KStream`]s from
//! topics; operators make new streams; [`StreamBuilder::build`] freezes it
//! all into a [`Topology`] for [`StreamApp::start`](crate::StreamApp::start).
//!
//! - `stream` — [`KStream`] and its stateless operators.
//! - `grouped` — [`KGroupedStream`] and [`KTable`]: `count`, `reduce`, `aggregate`.
//! - `node` — the run-time graph: operators as closures, the context.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::codec::Codec;
use crate::error::{Result, StreamError};
use crate::table::{GlobalTable, TableSpec};

mod grouped;
pub(crate) mod node;
mod stream;

pub(crate) use grouped::read_state;
pub use grouped::{KGroupedStream, KTable};
pub use stream::{KStream, Predicate};

use node::{forward, Ctx, Next, Source};

/// A state store: its name and the topic whose partitions own its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreSpec {
    /// The name given by the user (unique in the topology).
    pub name: String,
    /// The source topic: one store instance per partition of it.
    pub source: String,
}

/// An internal topic the application creates: `partitions_like` says whose
/// partition count it copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Internal {
    pub topic: String,
    pub partitions_like: String,
    pub compacted: bool,
}

#[derive(Default)]
struct Inner {
    app: String,
    sources: BTreeMap<String, Source>,
    stores: Vec<StoreSpec>,
    repartitions: Vec<Internal>,
    sinks: Vec<String>,
    tables: Vec<TableSpec>,
    errors: Vec<StreamError>,
}

/// Builds a topology. Cloning gives another handle to the same builder.
#[derive(Clone)]
pub struct StreamBuilder {
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for StreamBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamBuilder").finish_non_exhaustive()
    }
}

impl StreamBuilder {
    /// A builder for application `application_id`: the consumer group, and
    /// the prefix of its internal topics (`<id>-<store>-changelog`,
    /// `<id>-<name>-repartition`).
    pub fn new(application_id: impl Into<String>) -> Self {
        StreamBuilder {
            inner: Arc::new(Mutex::new(Inner {
                app: application_id.into(),
                ..Default::default()
            })),
        }
    }

    fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The application id.
    pub fn application_id(&self) -> String {
        self.inner().app.clone()
    }

    /// The records of `topic`, keys decoded as `K` and values as `V`.
    /// Records without a value (tombstones) are skipped; a record that does
    /// not decode stops the application with an error naming it.
    pub fn stream<K: Codec, V: Codec>(&self, topic: &str) -> KStream<K, V> {
        let next: Next<K, V> = Arc::default();
        let n = next.clone();
        let source: Source = Arc::new(move |ctx: &mut Ctx<'_>, key, value| {
            let rec = ctx.record;
            let Some(value) = value else {
                return Ok(());
            };
            let k = K::decode_owned(key.unwrap_or_default())
                .map_err(|e| decode_error("key", rec, e))?;
            let v = V::decode_owned(value).map_err(|e| decode_error("value", rec, e))?;
            forward(ctx, &n, k, v)
        });
        let mut inner = self.inner();
        if inner.sources.insert(topic.to_string(), source).is_some() {
            inner.errors.push(StreamError::config(
                format!("stream({topic})"),
                "the topic is already a source of this topology: use the first stream again",
            ));
        }
        drop(inner);
        KStream::new(self.clone(), next, topic.to_string(), false)
    }

    /// Registers a store; returns its id (its index in the topology).
    /// A table of `topic` (ideally compacted): every partition, on every
    /// instance, kept up to date while the application runs (see
    /// [`crate::table`]). Join streams with it by key.
    pub fn global_table<K: Codec, V: Codec>(&self, topic: &str) -> GlobalTable<K, V> {
        let spec = TableSpec {
            topic: topic.to_string(),
            data: Default::default(),
        };
        self.inner().tables.push(spec.clone());
        GlobalTable::new(spec)
    }

    pub(crate) fn add_store(&self, name: &str, source: &str) -> usize {
        let mut inner = self.inner();
        if inner.stores.iter().any(|s| s.name == name) {
            inner.errors.push(StreamError::config(
                format!("store {name:?}"),
                "two state stores have this name",
            ));
        }
        inner.stores.push(StoreSpec {
            name: name.to_string(),
            source: source.to_string(),
        });
        inner.stores.len() - 1
    }

    pub(crate) fn add_repartition(&self, name: &str, like: &str) -> String {
        let mut inner = self.inner();
        let topic = format!("{}-{name}-repartition", inner.app);
        inner.repartitions.push(Internal {
            topic: topic.clone(),
            partitions_like: like.to_string(),
            compacted: false,
        });
        topic
    }

    pub(crate) fn add_sink(&self, topic: &str) {
        self.inner().sinks.push(topic.to_string());
    }

    /// Checks and freezes the topology.
    pub fn build(&self) -> Result<Topology> {
        let mut inner = self.inner();
        if let Some(e) = inner.errors.drain(..).next() {
            return Err(e);
        }
        if inner.app.is_empty() {
            return Err(StreamError::config("application_id", "must not be empty"));
        }
        if inner.sources.is_empty() {
            return Err(StreamError::config(
                "topology",
                "it reads no topic: call StreamBuilder::stream first",
            ));
        }
        if let Some(t) = inner.sinks.iter().find(|t| inner.sources.contains_key(*t)) {
            return Err(StreamError::config(
                format!("to({t})"),
                "the topology reads this topic too: writing to it would loop",
            ));
        }
        Ok(Topology {
            app: inner.app.clone(),
            sources: inner.sources.clone(),
            stores: inner.stores.clone(),
            repartitions: inner.repartitions.clone(),
            tables: inner.tables.clone(),
        })
    }
}

fn decode_error(what: &'static str, rec: &rebound_core::Record, reason: String) -> StreamError {
    StreamError::Decode {
        what,
        topic: rec.topic.to_string(),
        partition: rec.partition,
        offset: rec.offset,
        reason,
    }
}

/// A checked topology, ready to run.
#[derive(Clone)]
pub struct Topology {
    pub(crate) app: String,
    pub(crate) sources: BTreeMap<String, Source>,
    pub(crate) stores: Vec<StoreSpec>,
    pub(crate) repartitions: Vec<Internal>,
    pub(crate) tables: Vec<TableSpec>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology")
            .field("app", &self.app)
            .field("sources", &self.sources.keys().collect::<Vec<_>>())
            .field("stores", &self.stores)
            .field("repartitions", &self.repartitions)
            .finish()
    }
}

impl Topology {
    /// The application id.
    pub fn application_id(&self) -> &str {
        &self.app
    }

    /// Every topic the application reads (inputs and repartition topics).
    pub fn source_topics(&self) -> Vec<String> {
        self.sources.keys().cloned().collect()
    }

    /// The changelog topic of store `name`.
    pub fn changelog_topic(&self, name: &str) -> String {
        changelog_topic(&self.app, name)
    }

    /// Topics the topology reads that the user provides (not repartition topics).
    pub(crate) fn input_topics(&self) -> Vec<String> {
        self.sources
            .keys()
            .filter(|t| !self.repartitions.iter().any(|r| &r.topic == *t))
            .cloned()
            .collect()
    }

    /// Internal topics to create, in an order where each one's
    /// `partitions_like` exists before it (inputs, then repartitions, then changelogs).
    pub(crate) fn internal_topics(&self) -> Vec<Internal> {
        let mut all = self.repartitions.clone();
        all.extend(self.stores.iter().map(|s| Internal {
            topic: changelog_topic(&self.app, &s.name),
            partitions_like: s.source.clone(),
            compacted: true,
        }));
        all
    }
}

pub(crate) fn changelog_topic(app: &str, store: &str) -> String {
    format!("{app}-{store}-changelog")
}
