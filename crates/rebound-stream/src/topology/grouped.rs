//! [`KGroupedStream`] (records grouped by key) and [`KTable`] (an
//! aggregate per key, kept in the state store of the key's partition).

use std::sync::Arc;

use super::node::{attach, forward, Ctx};
use super::stream::KStream;
use crate::codec::Codec;
use crate::error::{Result, StreamError};

/// A stream grouped by key: aggregate it with [`count`](Self::count),
/// [`reduce`](Self::reduce) or [`aggregate`](Self::aggregate), or window it
/// first with [`windowed_by`](Self::windowed_by).
#[derive(Debug)]
pub struct KGroupedStream<K, V> {
    pub(crate) stream: KStream<K, V>,
}

/// A table: the latest aggregate of each key. Each change is also a record
/// of [`to_stream`](Self::to_stream).
#[derive(Debug)]
pub struct KTable<K, A> {
    changes: KStream<K, A>,
}

impl<K: Codec, A: Codec> KTable<K, A> {
    /// The stream of changes: one record per update, key → new aggregate.
    pub fn to_stream(&self) -> KStream<K, A> {
        KStream::new(
            self.changes.builder.clone(),
            self.changes.next.clone(),
            self.changes.source.clone(),
            false,
        )
    }
}

impl<K: Codec, V: Codec> KGroupedStream<K, V> {
    pub(crate) fn new(stream: KStream<K, V>) -> Self {
        KGroupedStream { stream }
    }

    /// The stream to aggregate: re-keyed streams go through a repartition
    /// topic named after `store` first.
    pub(crate) fn partitioned(&self, store: &str) -> KStream<K, V> {
        if self.stream.rekeyed {
            self.stream.repartition(store)
        } else {
            KStream::new(
                self.stream.builder.clone(),
                self.stream.next.clone(),
                self.stream.source.clone(),
                false,
            )
        }
    }

    /// Counts the records of each key, in store `store`.
    pub fn count(&self, store: &str) -> KTable<K, u64> {
        self.aggregate(store, || 0u64, |_, _, n| n + 1)
    }

    /// Combines the values of each key with `f(aggregate, value)`; the first
    /// value of a key is its first aggregate.
    pub fn reduce(
        &self,
        store: &str,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
    ) -> KTable<K, V> {
        self.fold(store, move |_, v, old: Option<V>| match old {
            Some(o) => f(o, v),
            None => v,
        })
    }

    /// Folds the values of each key into an aggregate starting at `init()`.
    pub fn aggregate<A: Codec>(
        &self,
        store: &str,
        init: impl Fn() -> A + Send + Sync + 'static,
        f: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
    ) -> KTable<K, A> {
        self.fold(store, move |k, v, old: Option<A>| {
            f(k, v, old.unwrap_or_else(&init))
        })
    }

    fn fold<A: Codec>(
        &self,
        store: &str,
        f: impl Fn(&K, V, Option<A>) -> A + Send + Sync + 'static,
    ) -> KTable<K, A> {
        let input = self.partitioned(store);
        let id = input.builder.add_store(store, &input.source);
        let changes: KStream<K, A> = KStream::new(
            input.builder.clone(),
            Arc::default(),
            input.source.clone(),
            false,
        );
        let n = changes.next.clone();
        attach(
            &input.next,
            Box::new(move |ctx, k, v| {
                let rec = ctx.record;
                let new = ctx.task.update(id, k.encode(), rec.offset, |old| {
                    let old = old.map(|b| decode_state::<A>(rec, b)).transpose()?;
                    let new = f(&k, v, old);
                    Ok((Some(new.encode()), new))
                })?;
                forward(ctx, &n, k, new)
            }),
        );
        KTable { changes }
    }

    /// Cuts the grouped records into windows (see [`crate::window`]).
    pub fn windowed_by(
        &self,
        windows: crate::window::Windows,
    ) -> crate::window::WindowedStream<K, V> {
        let same = KStream::new(
            self.stream.builder.clone(),
            self.stream.next.clone(),
            self.stream.source.clone(),
            self.stream.rekeyed,
        );
        crate::window::WindowedStream::new(KGroupedStream::new(same), windows)
    }
}

/// Reads and decodes the stored value of `key` in store `id`.
pub(crate) fn read_state<A: Codec>(ctx: &mut Ctx<'_>, id: usize, key: &[u8]) -> Result<Option<A>> {
    let rec = ctx.record;
    ctx.task
        .get(id, key)?
        .map(|b| decode_state(rec, b))
        .transpose()
}

/// Decodes a stored aggregate; the error names the record being processed.
fn decode_state<A: Codec>(rec: &rebound_core::Record, bytes: &[u8]) -> Result<A> {
    A::decode(bytes).map_err(|reason| StreamError::Decode {
        what: "state",
        topic: rec.topic.to_string(),
        partition: rec.partition,
        offset: rec.offset,
        reason,
    })
}
