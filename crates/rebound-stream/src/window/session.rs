//! Session windows: per key, records closer than the gap to each other form
//! one session `[first, last]`; a record that falls between sessions merges
//! them.
//!
//! **Store layout.** A key's sessions are one entry, `[2]` + key → the
//! sessions as `(start, end, aggregate)`, sorted by start. Each session also
//! has an expiry index entry, `[3]` + its end (sign bit flipped: byte order
//! is time order) + key → empty, so expired sessions are found by a range
//! scan instead of a walk over every key.
//!
//! **Expiry.** A record is accepted while its (merged) session's end plus
//! grace is at or after stream time. A session can still be reached by a
//! record joining it directly (at most `gap` after its end, and not late)
//! or by one bridging it to a later session that is itself still
//! reachable, or to a session a new record starts (at or after `stream
//! time - grace`). So a session is deleted once it ended before `stream
//! time - grace - 2 × gap` and the next session of its key is not both
//! within `2 × gap` of it and kept. Deleting removes the store and index
//! entries (tombstones in the changelog, like closed time windows); it is
//! checked each time stream time crosses a multiple of the gap.

use crate::codec::Codec;
use crate::error::Result;
use crate::topology::node::Ctx;

/// The store key of `key`'s sessions.
fn sessions_key(key: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(1 + key.len());
    b.push(2);
    b.extend_from_slice(key);
    b
}

/// The expiry index key of `key`'s session ending at `end`.
fn expiry_key(end: i64, key: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(9 + key.len());
    b.push(3);
    b.extend_from_slice(&flip(end).to_be_bytes());
    b.extend_from_slice(key);
    b
}

fn flip(t: i64) -> u64 {
    (t as u64) ^ (1 << 63)
}

/// What a record did to its key's sessions.
pub(crate) enum Outcome<A> {
    /// The record joined (or started) the session `[start, end]`, whose
    /// aggregate is now `acc`.
    Updated { start: i64, end: i64, acc: A },
    /// The record's session closed before it came: dropped.
    Late,
}

/// The session parameters, in ms.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    pub gap: i64,
    pub grace: i64,
}

impl Spec {
    /// Adds the record of key `kb` at `ts` (already folded into `acc` by
    /// the caller) to its sessions; `before` and `now` are stream time
    /// before and after the record. Expired sessions of every key are
    /// deleted first when stream time crossed a multiple of the gap.
    pub(crate) fn add<A: Codec>(
        self,
        ctx: &mut Ctx<'_>,
        id: usize,
        (before, now): (i64, i64),
        (kb, ts): (&[u8], i64),
        mut acc: A,
        merge: impl Fn(A, A) -> A,
    ) -> Result<Outcome<A>> {
        if before != i64::MIN && now.div_euclid(self.gap) > before.div_euclid(self.gap) {
            self.purge_expired(ctx, id, now)?;
        }
        let sk = sessions_key(kb);
        let sessions: Vec<(i64, i64, A)> = match ctx.task.get(id, &sk)? {
            Some(b) => decode_sessions(b),
            None => Vec::new(),
        };
        let g = self.gap;
        let (mut start, mut end) = (ts, ts);
        let mut kept = Vec::with_capacity(sessions.len() + 1);
        let mut merged_ends = Vec::new();
        for (s, e, a) in sessions {
            if s - g <= ts && ts <= e + g {
                start = start.min(s);
                end = end.max(e);
                acc = merge(a, acc);
                merged_ends.push(e);
            } else {
                kept.push((s, e, a));
            }
        }
        if end.saturating_add(self.grace) < now {
            return Ok(Outcome::Late);
        }
        let tag = ctx.record.offset;
        for e in merged_ends {
            ctx.task.put(id, expiry_key(e, kb), None, tag);
        }
        ctx.task.put(id, expiry_key(end, kb), Some(Vec::new()), tag);
        kept.push((start, end, acc.clone()));
        kept.sort_by_key(|(s, _, _)| *s);
        ctx.task.put(id, sk, Some(encode_sessions(&kept)), tag);
        Ok(Outcome::Updated { start, end, acc })
    }

    /// Deletes the sessions no acceptable record can reach any more (see
    /// the module docs), up to [`super::PURGE_AT_ONCE`] index entries.
    fn purge_expired(self, ctx: &mut Ctx<'_>, id: usize, now: i64) -> Result<()> {
        let reach = self.gap.saturating_mul(2);
        let cutoff = now.saturating_sub(self.grace).saturating_sub(reach);
        let (lower, upper) = (expiry_key(i64::MIN, &[]), expiry_key(cutoff, &[]));
        let tag = ctx.record.offset;
        for index in ctx.task.keys_in(id, &lower, &upper, super::PURGE_AT_ONCE)? {
            let end = i64::from_be_bytes(index[1..9].try_into().expect("8")) ^ i64::MIN;
            let key = &index[9..];
            let sk = sessions_key(key);
            let Some(b) = ctx.task.get(id, &sk)? else {
                ctx.task.put(id, index, None, tag);
                continue;
            };
            let (left, kept_end) = retain_reachable(b, cutoff, reach, end);
            if left.len() != b.len() {
                ctx.task
                    .put(id, sk, (!left.is_empty()).then_some(left), tag);
            }
            if !kept_end {
                ctx.task.put(id, index, None, tag);
            }
        }
        Ok(())
    }
}

pub(crate) fn encode_sessions<A: Codec>(sessions: &[(i64, i64, A)]) -> Vec<u8> {
    let mut b = Vec::new();
    for (s, e, a) in sessions {
        let ab = a.encode();
        b.extend_from_slice(&s.to_be_bytes());
        b.extend_from_slice(&e.to_be_bytes());
        b.extend_from_slice(&(ab.len() as u32).to_be_bytes());
        b.extend_from_slice(&ab);
    }
    b
}

/// The encoded sessions `(start, end, aggregate bytes)` (the store's own
/// bytes: an entry that does not parse ends the list).
fn raw_sessions(mut b: &[u8]) -> impl Iterator<Item = (i64, i64, &[u8], &[u8])> {
    std::iter::from_fn(move || {
        if b.len() < 20 {
            return None;
        }
        let s = i64::from_be_bytes(b[..8].try_into().expect("8"));
        let e = i64::from_be_bytes(b[8..16].try_into().expect("8"));
        let len = u32::from_be_bytes(b[16..20].try_into().expect("4")) as usize;
        let whole = b.get(..20 + len)?;
        b = &b[20 + len..];
        Some((s, e, &whole[20..], whole))
    })
}

/// Sessions as written by `encode_sessions`.
pub(crate) fn decode_sessions<A: Codec>(b: &[u8]) -> Vec<(i64, i64, A)> {
    raw_sessions(b)
        .map_while(|(s, e, ab, _)| A::decode(ab).ok().map(|a| (s, e, a)))
        .collect()
}

/// The encoded sessions (sorted by start) still reachable: those ending
/// at or after `cutoff`, and those whose next session starts within
/// `reach` of their end and is kept. Also whether the session ending at
/// `end` is kept.
fn retain_reachable(b: &[u8], cutoff: i64, reach: i64, end: i64) -> (Vec<u8>, bool) {
    let all: Vec<(i64, i64, &[u8])> = raw_sessions(b).map(|(s, e, _, w)| (s, e, w)).collect();
    let mut keep = vec![false; all.len()];
    // From the latest: (start of the next session, whether it is kept).
    let mut next: Option<(i64, bool)> = None;
    for (i, &(s, e, _)) in all.iter().enumerate().rev() {
        keep[i] =
            e >= cutoff || next.is_some_and(|(ns, kept)| kept && ns <= e.saturating_add(reach));
        next = Some((s, keep[i]));
    }
    let mut out = Vec::new();
    let mut kept_end = false;
    for (i, &(_, e, whole)) in all.iter().enumerate() {
        if keep[i] {
            out.extend_from_slice(whole);
            kept_end |= e == end;
        }
    }
    (out, kept_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_round_trip_and_unreachable_ones_are_dropped() {
        let s = vec![(1i64, 5i64, 3u64), (20, 20, 1)];
        let b = encode_sessions(&s);
        assert_eq!(decode_sessions::<u64>(&b), s);
        // Cutoff 10, reach 4: [1, 5] is too far from [20, 20] to be bridged.
        let (kept, end_5) = retain_reachable(&b, 10, 4, 5);
        assert_eq!(decode_sessions::<u64>(&kept), vec![(20, 20, 1)]);
        assert!(!end_5);
        // Reach 15: a record between them can still merge [1, 5] into [20, 20].
        assert_eq!(retain_reachable(&b, 10, 15, 5), (b.clone(), true));
        // Cutoff 30: neither is reachable.
        assert_eq!(retain_reachable(&b, 30, 15, 20), (Vec::new(), false));
    }

    #[test]
    fn expiry_keys_sort_by_end_time() {
        let k = |t| expiry_key(t, b"k");
        assert!(k(-5) < k(0) && k(0) < k(7) && k(7) < k(i64::MAX));
        assert!(expiry_key(i64::MIN, &[]) <= k(i64::MIN));
        assert!(
            k(9) < expiry_key(10, &[]),
            "the scan's upper bound excludes end 10"
        );
    }
}
