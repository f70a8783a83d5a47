//! The redo log on disk: each record is a 32-byte header — magic, payload
//! length, sequence number, sync watermark, payload CRC-32, CRC-32 of the
//! 28 bytes before it — then the payload ([`super::redo`]).
//!
//! The log thread writes everything waiting in one `write` and syncs once
//! (a batch); callers are answered only after that sync. The watermark of a
//! record is the last sequence number synced before its batch was written,
//! so a valid record proves that every record up to its watermark reached
//! the disk. That is how [`read`] tells a torn write from damage after a
//! crash (a power loss may leave any part of the last batch unwritten, in
//! any order):
//! - bytes that do not read as records, where every record they could hold
//!   is already in the database's checkpoint: skipped;
//! - in a file that is not the newest: damage (a file is complete, and
//!   synced, before the next one starts);
//! - a later valid record whose watermark covers a record they could hold:
//!   damage, since that record was synced (and maybe acknowledged);
//! - otherwise: the last batch, cut by the crash and never acknowledged;
//!   it and everything after it are ignored, with a warning.
//!
//! What no reader can tell apart: a record of the *last* batch that was
//! synced and acknowledged and then damaged on disk before the restart
//! looks like that torn batch.

use std::ops::Range;
use std::path::Path;

use crate::error::{Error, Result};

const MAGIC: u32 = 0x5242_4c47;
pub(crate) const HEADER: usize = 32;

/// Appends the framed record of group `seq` to `out`; `synced`: the last
/// group synced before the batch it goes in.
pub(crate) fn frame(seq: u64, synced: u64, payload: &[u8], out: &mut Vec<u8>) {
    let len = u32::try_from(payload.len()).expect("the writer caps payloads below 4 GiB");
    let start = out.len();
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&synced.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    let h = crc32fast::hash(&out[start..start + 28]);
    out.extend_from_slice(&h.to_le_bytes());
    out.extend_from_slice(payload);
}

/// A valid header.
#[derive(Debug, Clone, Copy)]
struct Header {
    len: usize,
    seq: u64,
    synced: u64,
    crc: u32,
}

fn header(b: &[u8], at: usize) -> Option<Header> {
    let h = b.get(at..at.checked_add(HEADER)?)?;
    let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().expect("4 bytes"));
    let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().expect("8 bytes"));
    if u32_at(0) != MAGIC || u32_at(28) != crc32fast::hash(&h[..28]) {
        return None;
    }
    Some(Header {
        len: u32_at(4) as usize,
        seq: u64_at(8),
        synced: u64_at(16),
        crc: u32_at(24),
    })
}

/// The records of one log file, in order: `(seq, payload range)`.
pub(crate) type Records = Vec<(u64, Range<usize>)>;

/// Reads a log file. `newest`: the file written last (the only one a crash
/// can cut); zeros from some point to the end are the part of a file not
/// written yet (files are made of zeros, [`super::log::create`]); `after`: every group up to it is in the checkpoint or read
/// before this file. The second value reports a torn batch that was ignored.
pub(crate) fn read(
    path: &Path,
    b: &[u8],
    newest: bool,
    after: u64,
) -> Result<(Records, Option<String>)> {
    let damaged = |at: usize, what: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("redo log record at byte {at}: {what}"),
    };
    let mut out = Vec::new();
    let mut last = after;
    let mut at = 0;
    while at < b.len() {
        if let Some(h) = header(b, at) {
            let body = at + HEADER..(at + HEADER).saturating_add(h.len);
            if b.get(body.clone()).map(crc32fast::hash) == Some(h.crc) {
                at = body.end;
                last = last.max(h.seq);
                out.push((h.seq, body));
                continue;
            }
        }
        // Zeros to the end: the part of the file not written yet.
        if b[at..].iter().all(|&x| x == 0) {
            break;
        }
        // Bytes that are not a record: what could they hold?
        let later: Vec<(usize, Header)> = (at + 1..b.len())
            .filter_map(|i| header(b, i).map(|h| (i, h)))
            .collect();
        if let Some(&(next, h)) = later.first() {
            if h.seq <= last + 1 {
                // No group after `last` fits before the next record.
                at = next;
                continue;
            }
        }
        if !newest {
            return Err(damaged(at, "damaged in a file that was complete".into()));
        }
        if let Some((i, _)) = later.iter().find(|(_, h)| h.synced > last) {
            return Err(damaged(
                at,
                format!(
                    "damaged, and the record at byte {i} shows group {} was synced before it",
                    last + 1
                ),
            ));
        }
        let note = format!(
            "{}: ignoring the last batch from byte {at} ({} bytes), cut short when the \
             process stopped and never acknowledged",
            path.display(),
            b.len() - at
        );
        return Ok((out, Some(note)));
    }
    Ok((out, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records `seqs`, written in batches of `batch` (the watermark of each
    /// is the last record of the batch before it).
    fn log(seqs: std::ops::RangeInclusive<u64>, batch: u64) -> Vec<u8> {
        let mut out = Vec::new();
        let first = *seqs.start();
        for s in seqs {
            let synced = (s - first) / batch * batch + first - 1;
            frame(s, synced, format!("group {s}").as_bytes(), &mut out);
        }
        out
    }

    fn read_new(b: &[u8]) -> Result<(Records, Option<String>)> {
        read(Path::new("l"), b, true, 0)
    }

    #[test]
    fn records_read_back_in_order() {
        let b = log(1..=3, 1);
        let (recs, torn) = read_new(&b).unwrap();
        let seqs: Vec<u64> = recs.iter().map(|r| r.0).collect();
        assert_eq!(seqs, [1, 2, 3]);
        assert_eq!(&b[recs[1].1.clone()], b"group 2");
        assert!(torn.is_none());
    }

    #[test]
    fn a_cut_last_record_is_torn_only_in_the_newest_file() {
        let b = log(1..=3, 1);
        for cut in [b.len() - 1, b.len() - 8, b.len() - 20] {
            let (recs, torn) = read_new(&b[..cut]).unwrap();
            assert_eq!(recs.len(), 2, "cut at {cut}");
            assert!(torn.unwrap().contains("never acknowledged"));
            let err = read(Path::new("l"), &b[..cut], false, 0).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        }
    }

    #[test]
    fn any_flipped_byte_of_a_synced_record_is_damage() {
        // One record per batch: each proves the one before it synced.
        let b = log(1..=3, 1);
        let last = b.len() - (HEADER + "group 3".len());
        for i in 0..last {
            let mut bad = b.clone();
            bad[i] ^= 0x04;
            let err = read_new(&bad).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "byte {i}: {err}");
        }
    }

    #[test]
    fn a_hole_in_the_unsynced_last_batch_is_torn() {
        // Groups 1-3 in one batch, 4-5 in the last: a power loss wrote 5
        // but not 4 (zeros where it should be).
        let b = log(1..=5, 3);
        let (recs, _) = read_new(&b).unwrap();
        let mut hole = b.clone();
        hole[recs[3].1.start - HEADER..recs[3].1.end].fill(0);
        let (recs, torn) = read_new(&hole).unwrap();
        let seqs: Vec<u64> = recs.iter().map(|r| r.0).collect();
        assert_eq!(seqs, [1, 2, 3], "4 and 5 were never acknowledged");
        assert!(torn.is_some());
        // The same hole in group 2, which group 4's watermark proves synced.
        let mut hole = b.clone();
        let (recs, _) = read_new(&b).unwrap();
        hole[recs[1].1.start..recs[1].1.end].fill(0);
        assert!(matches!(read_new(&hole), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn damage_to_checkpointed_records_is_skipped() {
        let b = log(1..=4, 1);
        let mut bad = b.clone();
        bad[3] ^= 1; // the header of group 1
        let (recs, torn) = read(Path::new("l"), &bad, true, 1).unwrap();
        let seqs: Vec<u64> = recs.iter().map(|r| r.0).collect();
        assert_eq!(seqs, [2, 3, 4]);
        assert!(torn.is_none());
        assert!(read(Path::new("l"), &bad, true, 0).is_err());
    }
}
