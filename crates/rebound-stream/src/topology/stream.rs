//! [`KStream`]: a typed stream of key–value records and its stateless
//! operators.

use std::sync::Arc;

use rebound_producer::OutRecord;

use super::grouped::KGroupedStream;
use super::node::{attach, forward, Next};
use super::StreamBuilder;
use crate::codec::Codec;

/// A predicate of [`KStream::branch`].
pub type Predicate<K, V> = Box<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// A stream of records with keys `K` and values `V`.
///
/// Operators that change the key (`map`, `flat_map`, `select_key`) mark
/// the stream re-keyed: grouping it then goes through a repartition topic,
/// so every record of a key reaches the same partition's state.
pub struct KStream<K, V> {
    pub(crate) builder: StreamBuilder,
    pub(crate) next: Next<K, V>,
    /// The topic whose partitions this stream's records come from.
    pub(crate) source: String,
    pub(crate) rekeyed: bool,
}

impl<K, V> std::fmt::Debug for KStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KStream")
            .field("source", &self.source)
            .field("rekeyed", &self.rekeyed)
            .finish_non_exhaustive()
    }
}

impl<K: Codec, V: Codec> KStream<K, V> {
    pub(crate) fn new(
        builder: StreamBuilder,
        next: Next<K, V>,
        source: String,
        rekeyed: bool,
    ) -> Self {
        KStream {
            builder,
            next,
            source,
            rekeyed,
        }
    }

    fn derive<K2: Codec, V2: Codec>(&self, rekeyed: bool) -> KStream<K2, V2> {
        KStream::new(
            self.builder.clone(),
            Arc::default(),
            self.source.clone(),
            self.rekeyed || rekeyed,
        )
    }

    /// Each record becomes `f(key, value)`. Marks the stream re-keyed.
    pub fn map<K2: Codec, V2: Codec>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let out = self.derive(true);
        let n = out.next.clone();
        attach(
            &self.next,
            Box::new(move |ctx, k, v| {
                let (k2, v2) = f(k, v);
                forward(ctx, &n, k2, v2)
            }),
        );
        out
    }

    /// Each value becomes `f(key, value)`; keys stay.
    pub fn map_values<V2: Codec>(
        &self,
        f: impl Fn(&K, V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let out = self.derive(false);
        let n = out.next.clone();
        attach(
            &self.next,
            Box::new(move |ctx, k, v| {
                let v2 = f(&k, v);
                forward(ctx, &n, k, v2)
            }),
        );
        out
    }

    /// A new key from `f(key, value)`; values stay. Marks the stream re-keyed.
    pub fn select_key<K2: Codec>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        let out = self.derive(true);
        let n = out.next.clone();
        attach(
            &self.next,
            Box::new(move |ctx, k, v| {
                let k2 = f(&k, &v);
                forward(ctx, &n, k2, v)
            }),
        );
        out
    }

    /// Only the records for which `pred` holds.
    pub fn filter(&self, pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        let out = self.derive(false);
        let n = out.next.clone();
        attach(
            &self.next,
            Box::new(move |ctx, k, v| {
                if pred(&k, &v) {
                    forward(ctx, &n, k, v)
                } else {
                    Ok(())
                }
            }),
        );
        out
    }

    /// Each record becomes the records `f` returns (zero or more). Marks
    /// the stream re-keyed.
    pub fn flat_map<K2: Codec, V2: Codec, I>(
        &self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        let out = self.derive(true);
        let n = out.next.clone();
        attach(
            &self.next,
            Box::new(move |ctx, k, v| {
                for (k2, v2) in f(k, v) {
                    forward(ctx, &n, k2, v2)?;
                }
                Ok(())
            }),
        );
        out
    }

    /// Splits the stream: a record goes to the stream of the first
    /// predicate that holds for it, or nowhere when none does. Returns one
    /// stream per predicate, in order.
    pub fn branch(&self, preds: Vec<Predicate<K, V>>) -> Vec<KStream<K, V>> {
        let outs: Vec<KStream<K, V>> = preds.iter().map(|_| self.derive(false)).collect();
        let nexts: Vec<Next<K, V>> = outs.iter().map(|o| o.next.clone()).collect();
        attach(
            &self.next,
            Box::new(
                move |ctx, k, v| match preds.iter().position(|p| p(&k, &v)) {
                    Some(i) => forward(ctx, &nexts[i], k, v),
                    None => Ok(()),
                },
            ),
        );
        outs
    }

    /// Calls `f` for each record (for logging, tests); the stream goes on unchanged.
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        let out = self.derive(false);
        let n = out.next.clone();
        attach(
            &self.next,
            Box::new(move |ctx, k, v| {
                f(&k, &v);
                forward(ctx, &n, k, v)
            }),
        );
        out
    }

    /// Writes every record to `topic` (partitioned by key), with the input
    /// record's timestamp. In exactly-once mode the writes commit with the
    /// input offsets.
    pub fn to(&self, topic: &str) {
        self.builder.add_sink(topic);
        self.to_internal(topic);
    }

    /// Writes the stream to the repartition topic `<app>-<name>-repartition`
    /// (partitioned by the current key) and reads it back: afterwards every
    /// record of a key is in the same partition. Created with the source
    /// topic's partition count.
    pub fn repartition(&self, name: &str) -> KStream<K, V> {
        let topic = self.builder.add_repartition(name, &self.source);
        self.to_internal(&topic);
        self.builder.stream::<K, V>(&topic)
    }

    /// Writes every record to `topic`, keyed, with the input's timestamp.
    fn to_internal(&self, topic: &str) {
        let topic = topic.to_string();
        attach(
            &self.next,
            Box::new(move |ctx, k: K, v: V| {
                ctx.out.push(OutRecord {
                    topic: topic.clone(),
                    partition: None,
                    key: Some(k.encode()),
                    value: Some(v.encode()),
                    headers: Vec::new(),
                    timestamp: Some(ctx.timestamp),
                });
                Ok(())
            }),
        );
    }

    /// Groups the records by their key, for aggregation. A re-keyed stream
    /// goes through a repartition topic named after the first store
    /// aggregated from the grouping (see [`KGroupedStream`]).
    pub fn group_by_key(&self) -> KGroupedStream<K, V> {
        KGroupedStream::new(self.clone_handle())
    }

    /// Groups by a new key `f(key, value)` (always through a repartition topic).
    pub fn group_by<K2: Codec>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KGroupedStream<K2, V> {
        KGroupedStream::new(self.select_key(f))
    }

    fn clone_handle(&self) -> KStream<K, V> {
        KStream::new(
            self.builder.clone(),
            self.next.clone(),
            self.source.clone(),
            self.rekeyed,
        )
    }
}
