//! Recovery at open: after a crash redb is back at its last checkpoint (the
//! last durable commit, whose `meta.seq` names the last group it holds); the
//! groups logged after it are applied again, in order, in one durable
//! commit. Then the old log files go and a new one starts.
//!
//! A record missing in the sequence, a damaged record, or a record that
//! does not decode refuses the open with [`Error::Corrupt`] naming the log
//! file: acknowledged tasks are never dropped silently. Only the last batch
//! written before the crash, when cut short, is ignored with a warning
//! ([`super::record::read`] says how it is told from damage).

use std::path::Path;
use std::sync::Arc;

use redb::{Database, Durability};

use super::log::{self, Log};
use super::record;
use super::redo::Tx;
use super::shared::Shared;
use super::tables::db_err;
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
    let mut txn = db.begin_write().map_err(|x| db_err(path, x))?;
    txn.set_durability(Durability::Immediate)
        .map_err(|x| db_err(path, x))?;
    txn.set_quick_repair(true);
    let (seq, replayed) = {
        let mut tx = Tx::open(path, &txn)?;
        let start = tx.applied_seq()?;
        let mut seq = start;
        for (i, (_, file)) in files.iter().enumerate() {
            let damaged = |reason: String| Error::Corrupt {
                path: file.clone(),
                reason,
            };
            let bytes = std::fs::read(file).map_err(Error::io(file))?;
            let (records, torn) = record::read(file, &bytes, i + 1 == files.len(), seq)?;
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
                tx.replay(&bytes[range])?
                    .map_err(|why| damaged(format!("redo log group {s}: {why}")))?;
                seq = s;
            }
        }
        tx.set_applied_seq(seq)?;
        (seq, seq - start)
    };
    txn.commit().map_err(|x| db_err(path, x))?;
    if replayed > 0 {
        tracing::info!(path = %path.display(), groups = replayed,
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
    let file = log::create(dir, next)?;
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
