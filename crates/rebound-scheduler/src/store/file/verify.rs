//! Damage detection. What redb guarantees, from its design notes and source
//! (4.6): every page is checksummed (XXH3-128, each parent holding its
//! children's checksums, the commit slot the root's), but the checksums are
//! verified only when an open repairs after a crash or when
//! `set_check_integrity_on_open` asks for it; a plain open after a clean
//! shutdown trusts the file, and reads never verify. With quick-repair
//! (two-phase) commits, a newest commit that fails verification is an error,
//! not a silent fall back to the commit before it.
//!
//! So, here:
//! - files up to [`VERIFY_AT_OPEN_MAX`] are verified page by page at every
//!   open (redb's integrity check): damage anywhere refuses the open;
//! - larger files open at once (start-up must not read gigabytes) and are
//!   walked in the background, every task checked against its own CRC; found
//!   damage stops the store (writes and `/health` fail, naming the file);
//! - every read checks the CRC of what it reads in any case ([`super::tables`]).
//!
//! There is no automatic recovery: a damaged file is for an operator to move
//! aside (`mv PATH/tasks.redb PATH/tasks.redb.damaged`; the store then starts
//! empty) or to restore from a backup.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

use redb::{Database, ReadableDatabase};

use super::memtable::Memtable;
use super::shared::Shared;
use super::tables::{db_err, verify_task, TASKS};
use super::view::{Stored, Tx};
use super::CACHE_BYTES;
use crate::error::{Error, Result};

/// Files up to this size are fully verified at open (~0.1 s per 64 MiB here).
pub const VERIFY_AT_OPEN_MAX: u64 = 64 * 1024 * 1024;

/// Entries checked per read transaction by the background walk.
const WALK_CHUNK: usize = 8_192;

/// The message of a caught panic (redb may panic on a damaged file).
pub(crate) fn panic_reason(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Opens or creates the database file, verifying it when small enough.
pub(crate) fn open_file(path: &Path, verify_max: u64) -> Result<(Database, bool)> {
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let full = size <= verify_max;
    let mut b = redb::Builder::new();
    b.set_cache_size(CACHE_BYTES);
    b.set_check_integrity_on_open(full);
    // redb may panic on a file damaged in a way it does not expect.
    let db = std::panic::catch_unwind(AssertUnwindSafe(|| b.create(path)))
        .map_err(|p| Error::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "the database engine panicked opening it: {}",
                panic_reason(&*p)
            ),
        })?
        .map_err(|e| match e {
            redb::DatabaseError::Storage(redb::StorageError::Io(source)) => Error::Io {
                path: path.to_path_buf(),
                source,
            },
            e => db_err(path, e),
        })?;
    Ok((db, full))
}

/// Requeues the leases of the previous process, in one durable commit.
/// Returns how many tasks were requeued.
pub(crate) fn prepare(db: &Database, path: &Path) -> Result<usize> {
    let stored = Stored::open(db, path)?;
    let mut mem = Memtable::default();
    let n = Tx::new(path, &stored, None, &mut mem).requeue_leased()?;
    if n > 0 {
        mem.checkpoint(db, path, None)?;
    }
    Ok(n)
}

/// After an open that did not verify the file: walk it in the background.
pub(crate) fn after_open(db: &Arc<Database>, verified: bool, path: PathBuf, shared: Arc<Shared>) {
    if verified {
        return;
    }
    let weak = Arc::downgrade(db);
    let spawned = std::thread::Builder::new()
        .name("rebound-store-verify".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            let r = std::panic::catch_unwind(AssertUnwindSafe(|| walk(&weak, &path)))
                .unwrap_or_else(|p| {
                    Err(Error::Corrupt {
                        path: path.clone(),
                        reason: format!("the database engine panicked: {}", panic_reason(&*p)),
                    })
                });
            match r {
                Ok(Some(n)) => tracing::info!(path = %path.display(), tasks = n,
                    secs = started.elapsed().as_secs_f64(), "store verified"),
                Ok(None) => {} // the store was closed first
                Err(e) => {
                    let why = rebound_core::DisplayChain(&e).to_string();
                    tracing::error!(error = %why, "store is damaged; it stops accepting writes");
                    shared.fail_with(&e);
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start the store verification thread");
    }
}

/// Checks every task against its CRC, a chunk per read transaction (a long
/// read would keep redb from reusing the pages freed meanwhile, and closing
/// the store is never held up). Index entries are checked whenever they are
/// read (claim, retention).
/// `Ok(None)` when the store was closed before the end.
fn walk(db: &Weak<Database>, path: &Path) -> Result<Option<u64>> {
    let mut after: Option<String> = None;
    let mut n = 0u64;
    loop {
        let Some(db) = db.upgrade() else {
            return Ok(None);
        };
        let txn = db.begin_read().map_err(|x| db_err(path, x))?;
        let t = txn.open_table(TASKS).map_err(|x| db_err(path, x))?;
        let rows = match &after {
            Some(a) => t.range::<&str>((
                std::ops::Bound::Excluded(a.as_str()),
                std::ops::Bound::Unbounded,
            )),
            None => t.range::<&str>(..),
        }
        .map_err(|x| db_err(path, x))?;
        let mut seen = 0;
        for row in rows.take(WALK_CHUNK) {
            let (k, v) = row.map_err(|x| db_err(path, x))?;
            verify_task(path, k.value(), v.value())?;
            after = Some(k.value().to_string());
            seen += 1;
        }
        n += seen as u64;
        if seen < WALK_CHUNK {
            break;
        }
    }
    Ok(Some(n))
}
