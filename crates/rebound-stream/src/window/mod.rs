//! Windowed aggregation: tumbling, hopping and session windows on record
//! timestamps, each with a grace period for late records.
//!
//! **Stream time** is the largest record timestamp a partition's store has
//! seen (kept in the store, so it survives restarts and restores). A time
//! window `[start, end)` accepts records while `end + grace > stream
//! time`; a session `[first, last]` while `last + grace >= stream time`.
//! A record no window accepts any more is dropped and counted in
//! `rebound_stream_late_records_dropped_total{store}`. Out-of-order
//! records within the grace period update their window as if in order.
//!
//! Each update is forwarded as [`Windowed`] key → new aggregate. When a
//! record joins sessions, the merged session is forwarded; the sessions it
//! replaced are not retracted downstream (their entries are removed from
//! the store). Time windows are deleted from the store once closed (when
//! stream time crosses a window boundary); sessions once stream time is
//! past their end plus grace plus twice the gap, checked each time stream
//! time crosses a multiple of the gap (see `session`).

use std::time::Duration;

use crate::codec::Codec;
use crate::error::Result;
use crate::topology::node::{attach, forward, Ctx};
use crate::topology::{KGroupedStream, KStream};

mod session;

/// Which windows records fall into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Windows {
    /// Fixed, non-overlapping windows of `size`.
    Tumbling {
        /// Window length.
        size: Duration,
        /// How long after its end a window still accepts records.
        grace: Duration,
    },
    /// Windows of `size` starting every `advance` (overlapping).
    Hopping {
        /// Window length.
        size: Duration,
        /// Distance between window starts.
        advance: Duration,
        /// How long after its end a window still accepts records.
        grace: Duration,
    },
    /// Per key, records closer than `gap` to each other form one session.
    Session {
        /// Inactivity that ends a session.
        gap: Duration,
        /// How long after its last record a session still accepts records.
        grace: Duration,
    },
}

impl Windows {
    /// Tumbling windows of `size`, no grace.
    pub fn tumbling(size: Duration) -> Self {
        Windows::Tumbling {
            size,
            grace: Duration::ZERO,
        }
    }
    /// Hopping windows of `size` every `advance`, no grace.
    pub fn hopping(size: Duration, advance: Duration) -> Self {
        Windows::Hopping {
            size,
            advance,
            grace: Duration::ZERO,
        }
    }
    /// Session windows closed by `gap` of inactivity, no grace.
    pub fn session(gap: Duration) -> Self {
        Windows::Session {
            gap,
            grace: Duration::ZERO,
        }
    }
    /// The same windows with grace period `g`.
    pub fn with_grace(self, g: Duration) -> Self {
        match self {
            Windows::Tumbling { size, .. } => Windows::Tumbling { size, grace: g },
            Windows::Hopping { size, advance, .. } => Windows::Hopping {
                size,
                advance,
                grace: g,
            },
            Windows::Session { gap, .. } => Windows::Session { gap, grace: g },
        }
    }

    /// Starts of the time windows containing `ts` (none for sessions).
    pub(crate) fn starts(&self, ts: i64) -> Vec<(i64, i64)> {
        let (size, advance) = match *self {
            Windows::Tumbling { size, .. } => (len_ms(size), len_ms(size)),
            Windows::Hopping { size, advance, .. } => (len_ms(size), len_ms(advance)),
            Windows::Session { .. } => return Vec::new(),
        };
        let last = ts.div_euclid(advance) * advance;
        let mut out = Vec::new();
        let mut start = last;
        while start > ts - size {
            out.push((start, start + size));
            start -= advance;
        }
        out.reverse();
        out
    }
}

/// A length in ms (at least 1: windows are never empty).
fn len_ms(d: Duration) -> i64 {
    d.as_millis().max(1) as i64
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

/// A windowed key: the key and its window `[start, end)` in epoch ms (a
/// session's `end` is its last record's timestamp).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    /// The record key.
    pub key: K,
    /// Window start, epoch ms.
    pub start: i64,
    /// Window end, epoch ms.
    pub end: i64,
}

impl<K: Codec> Codec for Windowed<K> {
    /// `start` and `end` as 8 bytes big-endian each, then the key.
    fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(16);
        b.extend_from_slice(&self.start.to_be_bytes());
        b.extend_from_slice(&self.end.to_be_bytes());
        b.extend_from_slice(&self.key.encode());
        b
    }
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() < 16 {
            return Err(format!(
                "a windowed key has at least 16 bytes, not {}",
                bytes.len()
            ));
        }
        let start = i64::from_be_bytes(bytes[..8].try_into().expect("8 bytes"));
        let end = i64::from_be_bytes(bytes[8..16].try_into().expect("8 bytes"));
        Ok(Windowed {
            key: K::decode(&bytes[16..])?,
            start,
            end,
        })
    }
}

/// A grouped stream cut into windows.
#[derive(Debug)]
pub struct WindowedStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: Windows,
}

/// Store key of the stream time.
const STREAM_TIME: &[u8] = b"\x01stream-time";

/// `[0]`, the start (sign bit flipped: byte order is time order), the key.
fn window_key(start: i64, key: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(9 + key.len());
    b.push(0);
    b.extend_from_slice(&((start as u64) ^ (1 << 63)).to_be_bytes());
    b.extend_from_slice(key);
    b
}

/// Most store entries one purge (of closed windows or expired sessions)
/// deletes: a large jump in stream time spreads the work (and the
/// tombstones) over the next boundaries instead of one record's batch.
pub(crate) const PURGE_AT_ONCE: usize = 10_000;

/// Deletes the time windows that closed: those starting at or before
/// `now - size - grace` (their end plus grace is at or before `now`), up to
/// [`PURGE_AT_ONCE`] of them. Run when stream time crosses a window
/// boundary, so closed windows do not pile up in the store; the deletions
/// reach the changelog as tombstones like any change.
fn purge_closed(ctx: &mut Ctx<'_>, id: usize, now: i64, size: i64, grace: i64) -> Result<()> {
    let cutoff = now
        .saturating_sub(size)
        .saturating_sub(grace)
        .saturating_add(1);
    let (lower, upper) = (window_key(i64::MIN, &[]), window_key(cutoff, &[]));
    for key in ctx.task.keys_in(id, &lower, &upper, PURGE_AT_ONCE)? {
        ctx.task.put(id, key, None, ctx.record.offset);
    }
    Ok(())
}

/// Advances the store's stream time with `ts`; returns it before and after.
fn advance(ctx: &mut Ctx<'_>, id: usize, ts: i64) -> Result<(i64, i64)> {
    let now = crate::topology::read_state::<i64>(ctx, id, STREAM_TIME)?.unwrap_or(i64::MIN);
    if ts > now {
        ctx.task.put(
            id,
            STREAM_TIME.to_vec(),
            Some(ts.encode()),
            ctx.record.offset,
        );
        return Ok((now, ts));
    }
    Ok((now, now))
}

impl<K: Codec, V: Codec> WindowedStream<K, V> {
    pub(crate) fn new(grouped: KGroupedStream<K, V>, windows: Windows) -> Self {
        WindowedStream { grouped, windows }
    }

    /// Counts the records of each key per window.
    pub fn count(&self, store: &str) -> KStream<Windowed<K>, u64> {
        self.aggregate(store, || 0u64, |_, _, n| n + 1, |a, b| a + b)
    }

    /// Folds each key's values per window into an aggregate from `init()`;
    /// `merge` combines two sessions' aggregates when a record joins them
    /// (unused for time windows).
    pub fn aggregate<A: Codec>(
        &self,
        store: &str,
        init: impl Fn() -> A + Send + Sync + 'static,
        agg: impl Fn(&K, V, A) -> A + Send + Sync + 'static,
        merge: impl Fn(A, A) -> A + Send + Sync + 'static,
    ) -> KStream<Windowed<K>, A> {
        let input = self.grouped.partitioned(store);
        let id = input.builder.add_store(store, &input.source);
        let out: KStream<Windowed<K>, A> = KStream::new(
            input.builder.clone(),
            Default::default(),
            input.source.clone(),
            false,
        );
        let n = out.next.clone();
        let (windows, name) = (self.windows, store.to_string());
        attach(
            &input.next,
            Box::new(move |ctx, k: K, v: V| {
                let ts = ctx.timestamp;
                let (before, now) = advance(ctx, id, ts)?;
                let kb = k.encode();
                match windows {
                    Windows::Session { gap, grace } => {
                        let spec = session::Spec {
                            gap: len_ms(gap),
                            grace: ms(grace),
                        };
                        let acc = agg(&k, v, init());
                        match spec.add(ctx, id, (before, now), (&kb, ts), acc, &merge)? {
                            session::Outcome::Late => {
                                ctx.metrics.late(&name);
                                Ok(())
                            }
                            session::Outcome::Updated { start, end, acc } => {
                                forward(ctx, &n, Windowed { key: k, start, end }, acc)
                            }
                        }
                    }
                    _ => {
                        let (size, step, grace) = match windows {
                            Windows::Tumbling { size, grace } => {
                                (len_ms(size), len_ms(size), ms(grace))
                            }
                            Windows::Hopping {
                                size,
                                advance,
                                grace,
                            } => (len_ms(size), len_ms(advance), ms(grace)),
                            Windows::Session { .. } => unreachable!("sessions are handled above"),
                        };
                        if before != i64::MIN && now.div_euclid(step) > before.div_euclid(step) {
                            purge_closed(ctx, id, now, size, grace)?;
                        }
                        let open: Vec<(i64, i64)> = windows
                            .starts(ts)
                            .into_iter()
                            .filter(|&(_, end)| end.saturating_add(grace) > now)
                            .collect();
                        if open.is_empty() {
                            ctx.metrics.late(&name);
                            return Ok(());
                        }
                        for (start, end) in open {
                            let wk = window_key(start, &kb);
                            let old = crate::topology::read_state::<A>(ctx, id, &wk)?
                                .unwrap_or_else(&init);
                            let new = agg(&k, v.clone(), old);
                            ctx.task.put(id, wk, Some(new.encode()), ctx.record.offset);
                            forward(
                                ctx,
                                &n,
                                Windowed {
                                    key: k.clone(),
                                    start,
                                    end,
                                },
                                new,
                            )?;
                        }
                        Ok(())
                    }
                }
            }),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_and_hopping_windows_of_a_timestamp() {
        let t = Windows::tumbling(Duration::from_millis(10));
        assert_eq!(t.starts(0), vec![(0, 10)]);
        assert_eq!(t.starts(19), vec![(10, 20)]);
        let h = Windows::hopping(Duration::from_millis(10), Duration::from_millis(5));
        assert_eq!(h.starts(12), vec![(5, 15), (10, 20)]);
        assert_eq!(h.starts(10), vec![(5, 15), (10, 20)]);
        assert_eq!(h.starts(4), vec![(-5, 5), (0, 10)]);
    }

    #[test]
    fn windowed_keys_round_trip() {
        let w = Windowed {
            key: "k".to_string(),
            start: 10,
            end: 20,
        };
        assert_eq!(Windowed::<String>::decode(&w.encode()), Ok(w));
    }
}
