//! Per-partition offset tracking.
//!
//! A record's offset becomes committable only when it and every earlier record
//! of its partition are finished: the commit position is the first unfinished
//! offset. Records finished above that watermark are encoded into the commit
//! metadata (as Confluent's Parallel Consumer does), so a restart skips them.
//!
//! Metadata format: `rb1:<watermark>:<bits>` where `<bits>` is URL-safe base64
//! (no padding) of a little-endian bitset; bit `i` set means offset
//! `watermark + i` finished. The watermark is repeated so metadata written
//! against another commit position is ignored rather than misapplied.

use std::collections::{BTreeSet, VecDeque};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// Kafka's default `offset.metadata.max.bytes` is 4096; stay well below it.
pub const DEFAULT_METADATA_BUDGET: usize = 3000;

const PREFIX: &str = "rb1:";

#[derive(Debug, Clone, Copy)]
struct Entry {
    offset: i64,
    done: bool,
    /// Record timestamp, epoch ms (negative: unknown).
    timestamp: i64,
}

/// What happened to an offset handed to [`OffsetTracker::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Track it; complete it later with this sequence number.
    Track(u64),
    /// Already finished before a restart (from commit metadata): skip it.
    AlreadyDone,
    /// At or below a position already passed (a duplicate fetch): skip it.
    Stale,
}

/// Tracks which records of one partition are finished.
#[derive(Debug)]
pub struct OffsetTracker {
    entries: VecDeque<Entry>,
    head_seq: u64,
    /// Next offset expected from the fetcher (one past the last pushed).
    next_offset: Option<i64>,
    /// Offsets known finished from a previous owner's commit metadata.
    preloaded: BTreeSet<i64>,
}

impl OffsetTracker {
    /// A tracker starting at the committed position `start` (if any) with the
    /// finished-above-watermark offsets decoded from its metadata.
    pub fn new(start: Option<i64>, metadata: &str) -> Self {
        let preloaded = match start {
            Some(w) => decode_metadata(metadata, w),
            None => BTreeSet::new(),
        };
        OffsetTracker {
            entries: VecDeque::new(),
            head_seq: 0,
            next_offset: start,
            preloaded,
        }
    }

    /// Registers a fetched record without a timestamp.
    pub fn push(&mut self, offset: i64) -> Push {
        self.push_at(offset, None)
    }

    /// Registers a fetched record with its timestamp (epoch ms). Offsets
    /// must arrive in increasing order.
    pub fn push_at(&mut self, offset: i64, timestamp: Option<i64>) -> Push {
        if let Some(next) = self.next_offset {
            if offset < next {
                return Push::Stale;
            }
        }
        self.next_offset = Some(offset + 1);
        let done = !self.preloaded.is_empty() && self.take_preloaded(offset);
        let seq = self.head_seq + self.entries.len() as u64;
        self.entries.push_back(Entry {
            offset,
            done,
            timestamp: timestamp.unwrap_or(-1),
        });
        if done {
            self.advance();
            Push::AlreadyDone
        } else {
            Push::Track(seq)
        }
    }

    fn take_preloaded(&mut self, offset: i64) -> bool {
        // Offsets below this one can no longer arrive; forget them.
        while let Some(&first) = self.preloaded.first() {
            if first < offset {
                self.preloaded.pop_first();
            } else {
                break;
            }
        }
        self.preloaded.remove(&offset)
    }

    /// Marks the record with sequence number `seq` finished. Unknown or
    /// already-finished sequence numbers are ignored.
    pub fn complete(&mut self, seq: u64) {
        if seq < self.head_seq {
            return;
        }
        let idx = (seq - self.head_seq) as usize;
        if let Some(e) = self.entries.get_mut(idx) {
            e.done = true;
            if idx == 0 {
                self.advance();
            }
        }
    }

    fn advance(&mut self) {
        while let Some(e) = self.entries.front() {
            if !e.done {
                break;
            }
            self.entries.pop_front();
            self.head_seq += 1;
        }
    }

    /// The offset to commit: the first unfinished record, or one past the
    /// last fetched record when all are finished. `None` before anything
    /// is known about the partition's position.
    pub fn committable(&self) -> Option<i64> {
        match self.entries.front() {
            Some(e) => Some(e.offset),
            None => self.next_offset,
        }
    }

    /// Timestamp (epoch ms) of the first unfinished record, when known: how
    /// far behind the partition's processing is.
    pub fn oldest_unfinished_timestamp(&self) -> Option<i64> {
        self.entries
            .front()
            .map(|e| e.timestamp)
            .filter(|ts| *ts >= 0)
    }

    /// Number of records fetched and not yet below the watermark.
    pub fn pending(&self) -> usize {
        self.entries.len()
    }

    /// Offsets finished above the watermark, ascending.
    pub fn done_above(&self) -> impl Iterator<Item = i64> + '_ {
        self.entries.iter().filter(|e| e.done).map(|e| e.offset)
    }

    /// Commit position plus metadata of at most `budget` bytes.
    pub fn commit_point(&self, budget: usize) -> Option<(i64, String)> {
        let w = self.committable()?;
        Some((w, encode_metadata(w, self.done_above(), budget)))
    }
}

/// Encodes `done` offsets (all `> watermark`, ascending) into at most
/// `budget` bytes. Offsets that do not fit are left out: they are simply
/// processed again after a restart, which at-least-once allows.
pub fn encode_metadata(watermark: i64, done: impl Iterator<Item = i64>, budget: usize) -> String {
    let header = format!("{PREFIX}{watermark}:");
    if budget <= header.len() {
        return String::new();
    }
    // base64 turns 3 bytes into 4 characters.
    let max_bytes = (budget - header.len()) / 4 * 3;
    let mut bits: Vec<u8> = Vec::new();
    for off in done {
        let i = off - watermark;
        if i <= 0 {
            continue;
        }
        let byte = (i / 8) as usize;
        if byte >= max_bytes {
            break;
        }
        if bits.len() <= byte {
            bits.resize(byte + 1, 0);
        }
        bits[byte] |= 1 << (i % 8);
    }
    if bits.is_empty() {
        return String::new();
    }
    format!("{header}{}", URL_SAFE_NO_PAD.encode(&bits))
}

/// Decodes metadata written by [`encode_metadata`] for commit position
/// `watermark`. Anything else (other tools' metadata, another watermark,
/// corrupt text) yields no offsets, so nothing is skipped by mistake.
pub fn decode_metadata(metadata: &str, watermark: i64) -> BTreeSet<i64> {
    let mut out = BTreeSet::new();
    let Some(rest) = metadata.strip_prefix(PREFIX) else {
        return out;
    };
    let Some((w, bits)) = rest.split_once(':') else {
        return out;
    };
    if w.parse::<i64>().ok() != Some(watermark) {
        return out;
    }
    let Ok(bytes) = URL_SAFE_NO_PAD.decode(bits) else {
        return out;
    };
    for (byte_idx, b) in bytes.iter().enumerate() {
        for bit in 0..8 {
            if b & (1 << bit) != 0 {
                out.insert(watermark + (byte_idx * 8 + bit) as i64);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_waits_for_the_first_unfinished_record() {
        let mut t = OffsetTracker::new(Some(10), "");
        let seqs: Vec<u64> = (10..15)
            .map(|o| match t.push(o) {
                Push::Track(s) => s,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(t.committable(), Some(10));
        t.complete(seqs[1]);
        t.complete(seqs[3]);
        assert_eq!(t.committable(), Some(10));
        assert_eq!(t.done_above().collect::<Vec<_>>(), vec![11, 13]);
        t.complete(seqs[0]);
        assert_eq!(t.committable(), Some(12));
        t.complete(seqs[2]);
        t.complete(seqs[4]);
        assert_eq!(t.committable(), Some(15));
        assert_eq!(t.pending(), 0);
    }

    #[test]
    fn gaps_in_offsets_are_respected() {
        let mut t = OffsetTracker::new(Some(0), "");
        let Push::Track(a) = t.push(0) else { panic!() };
        let Push::Track(b) = t.push(5) else { panic!() };
        t.complete(a);
        assert_eq!(t.committable(), Some(5));
        t.complete(b);
        assert_eq!(t.committable(), Some(6));
    }

    #[test]
    fn stale_offsets_are_skipped() {
        let mut t = OffsetTracker::new(Some(7), "");
        assert_eq!(t.push(3), Push::Stale);
        assert!(matches!(t.push(7), Push::Track(_)));
        assert_eq!(t.push(7), Push::Stale);
    }

    #[test]
    fn metadata_round_trip_skips_finished_records_after_restart() {
        let mut t = OffsetTracker::new(Some(100), "");
        let seqs: Vec<u64> = (100..120)
            .map(|o| match t.push(o) {
                Push::Track(s) => s,
                _ => unreachable!(),
            })
            .collect();
        for (i, s) in seqs.iter().enumerate() {
            if i % 3 == 1 {
                t.complete(*s);
            }
        }
        let (w, meta) = t.commit_point(DEFAULT_METADATA_BUDGET).unwrap();
        assert_eq!(w, 100);
        let expected: Vec<i64> = t.done_above().collect();
        assert_eq!(
            decode_metadata(&meta, w).into_iter().collect::<Vec<_>>(),
            expected
        );

        let mut restarted = OffsetTracker::new(Some(w), &meta);
        let mut skipped = vec![];
        for o in 100..120 {
            if restarted.push(o) == Push::AlreadyDone {
                skipped.push(o);
            }
        }
        assert_eq!(skipped, expected);
    }

    #[test]
    fn metadata_for_another_watermark_is_ignored() {
        let meta = encode_metadata(10, [12, 13].into_iter(), 100);
        assert_eq!(decode_metadata(&meta, 10).len(), 2);
        assert!(decode_metadata(&meta, 11).is_empty());
        assert!(decode_metadata("someone else's metadata", 10).is_empty());
        assert!(decode_metadata("rb1:10:***", 10).is_empty());
    }

    #[test]
    fn metadata_respects_the_budget() {
        let done = (1..1_000_000i64).step_by(2);
        let meta = encode_metadata(0, done, 4096);
        assert!(meta.len() <= 4096, "{}", meta.len());
        let decoded = decode_metadata(&meta, 0);
        assert!(decoded.len() > 10_000);
        assert!(decoded.iter().all(|o| o % 2 == 1));
        // Truncation only drops a suffix: every decoded offset is contiguous from the start.
        let max = *decoded.last().unwrap();
        assert_eq!(decoded.len() as i64, (max + 1) / 2);
    }

    #[test]
    fn unknown_start_follows_the_first_fetch() {
        let mut t = OffsetTracker::new(None, "rb1:0:AQ");
        assert_eq!(t.committable(), None);
        assert!(matches!(t.push(42), Push::Track(_)));
        assert_eq!(t.committable(), Some(42));
    }
}
