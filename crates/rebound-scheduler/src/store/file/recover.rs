//! Recovery at open: after a crash redb is back at its last checkpoint (the
//! last durable commit, whose `meta.seq` names the last group it holds); the
//! groups logged after it are read again, in order, into a memtable,
//! written to redb in one durable commit. Then the old log files go and a new one starts.
//!
//! A record missing in the sequence, a damaged record, or a record that
//! does not decode refuses the open with [`Error::Corrupt`] naming the log
//! file: acknowledged tasks are never dropped silently. Only the last batch
//! written before the crash, when cut short, is ignored with a warning
//! ([`super::record::read`] says how it is told from damage).

use std::path::Path;
use std::sync::Arc;

use redb::Database;

use super::log::{self, Log};
use super::memtable::Memtable;
use super::shared::Shared;
use super::tables::stored_seq;
use super::{record, redo};
use crate::error::{Error, Result};

/// Replays the log of the store in `dir` into `db` (file `path`); returns
/// the last group's sequence number and the started log.
pub(crate) fn recover(
    db: &Database,
    dir: &Path,
    path: &Path,
    shared: Arc<Shared>,
) -> Result<(u64, Log)> {
    let files = log::files(dir)?;
    let start = stored_seq(db, path)?;
    let mut seq = start;
    let mut mem = Memtable::default();
    let contents = files
        .iter()
        .map(|(_, f)| log::read_file(f))
        .collect::<Result<Vec<_>>>()?;
    // The file written last is the last one holding anything: the next
    // one may have been made (of zeros) already.
    let newest = contents.iter().rposition(|b| !b.is_empty()).unwrap_or(0);
    for (i, ((_, file), bytes)) in files.iter().zip(&contents).enumerate() {
        let damaged = |reason: String| Error::Corrupt {
            path: file.clone(),
            reason,
        };
        let (records, torn) = record::read(file, bytes, i == newest, seq)?;
        if let Some(note) = torn {
            tracing::warn!("{note}");
        }
        for (s, range) in records {
            if s <= seq {
                continue; // already in the checkpoint
            }
            if s != seq + 1 {
                return Err(damaged(format!(
                    "the redo log jumps from group {seq} to group {s}: records are missing"
                )));
            }
            redo::replay(&bytes[range], &mut mem)
                .map_err(|why| damaged(format!("redo log group {s}: {why}")))?;
            seq = s;
        }
    }
    if seq > start {
        mem.checkpoint(db, path, Some(seq))?;
        tracing::info!(path = %path.display(), groups = seq - start,
            "replayed the redo log written after the last checkpoint");
    }
    // The old files go for good before a new one starts: a crash in between
    // must not leave an old, possibly torn, file that is no longer the
    // newest (it would read as damage).
    for (_, old) in &files {
        std::fs::remove_file(old).map_err(Error::io(old))?;
    }
    sync_dir(dir)?;
    let next = files.last().map_or(0, |(n, _)| n + 1);
    let file = log::create(dir, next, log::FIRST_FILE_BYTES)?;
    Ok((
        seq,
        Log::start(dir.to_path_buf(), (next, file), seq, shared)?,
    ))
}

/// Makes the directory's entries (files created or removed) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}
