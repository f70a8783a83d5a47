//! The writes not yet in redb: an in-memory layer over the tables (a
//! memtable, as in an LSM tree).
//!
//! A write is acknowledged once its group is in the fsync'd redo log; its
//! table changes go to the *active* memtable, which every read consults
//! before redb. Now and then the flusher thread freezes the active memtable
//! (it becomes read-only, and a new one takes the writes) and writes it
//! into redb in one durable commit — a checkpoint, after which the log
//! files it covered go. So redb's write
//! cost is paid in large sorted batches, off the path of the callers, and
//! at most two memtables are in memory: the writer waits for the flusher
//! when the active one is full ([`super::writer`]).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use redb::{Database, Durability};

use super::redo::{AtIndex, Change};
use super::tables::{db_errs, index_crc, DUE, EXPIRY, EXPIRY_TAG, FINISHED, FINISHED_TAG};
use super::tables::{LEASES, META, TASKS};
use crate::error::Result;

/// Key of the due index: `(rank, due_ms, id)`.
pub(crate) type DueKey = (u8, u64, String);
/// Key of the `(at, id)` indexes.
pub(crate) type AtKey = (u64, String);

/// Table changes not yet in redb. `None` and `false` record a deletion,
/// which hides what redb holds under the key.
#[derive(Debug, Default)]
pub(crate) struct Memtable {
    pub(crate) tasks: BTreeMap<String, Option<Vec<u8>>>,
    pub(crate) leases: BTreeMap<String, Option<[u8; 20]>>,
    pub(crate) due: BTreeMap<DueKey, bool>,
    pub(crate) expiry: BTreeMap<AtKey, bool>,
    pub(crate) finished: BTreeMap<AtKey, bool>,
    /// Per index walked by time, a key `(at, id)` below which no layer
    /// holds a live entry: a walk starts there, not at the head, where the
    /// entries deleted lie until a checkpoint takes them out of redb. Set
    /// by each walk ([`super::view::Tx::due_keys`], `at_keys`), lowered by
    /// any entry put below it ([`Memtable::apply`]: every change goes
    /// through it); a new memtable knows none. Slots: [`due_slot`], then
    /// [`AtIndex::slot`].
    pub(crate) floors: [Option<(u64, String)>; 4],
    /// Roughly the memory held: keys, values and a per-entry overhead.
    bytes: usize,
}

/// Per-entry overhead counted in [`Memtable::bytes`] (tree node share,
/// `String` and `Vec` headers).
const ENTRY: usize = 64;

impl Memtable {
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes == 0
    }

    /// Roughly the memory it holds.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The rows of an `(at, id)` index.
    pub(crate) fn at(&self, index: AtIndex) -> &BTreeMap<AtKey, bool> {
        match index {
            AtIndex::Expiry => &self.expiry,
            AtIndex::Finished => &self.finished,
        }
    }

    /// Makes `c` here.
    pub(crate) fn apply(&mut self, c: Change<'_>) {
        let (id, value) = match c {
            Change::TaskPut(id, v) => {
                self.tasks.insert(id.to_string(), Some(v.to_vec()));
                (id, v.len())
            }
            Change::TaskDel(id) => {
                self.tasks.insert(id.to_string(), None);
                (id, 0)
            }
            Change::DuePut((r, at, id)) | Change::DueDel((r, at, id)) => {
                let put = matches!(c, Change::DuePut(_));
                self.due.insert((r, at, id.to_string()), put);
                if let (true, Some(slot)) = (put, due_slot(r)) {
                    lower(&mut self.floors[slot], at, id);
                }
                (id, 9)
            }
            Change::LeasePut(id, v) => {
                let v: [u8; 20] = v.try_into().expect("a lease is 20 bytes");
                self.leases.insert(id.to_string(), Some(v));
                (id, 20)
            }
            Change::LeaseDel(id) => {
                self.leases.insert(id.to_string(), None);
                (id, 0)
            }
            Change::At(index, put, at, id) => {
                let table = match index {
                    AtIndex::Expiry => &mut self.expiry,
                    AtIndex::Finished => &mut self.finished,
                };
                table.insert((at, id.to_string()), put);
                if put {
                    lower(&mut self.floors[index.slot()], at, id);
                }
                (id, 8)
            }
        };
        // Counted per change, not per distinct key: an overestimate when
        // a key changes twice, which only makes a freeze come earlier.
        self.bytes += ENTRY + id.len() + value;
    }

    /// Writes everything here into redb in one durable commit, recording
    /// `seq` (the last redo-log group it holds) when given: a checkpoint.
    pub(crate) fn checkpoint(&self, db: &Database, path: &Path, seq: Option<u64>) -> Result<()> {
        let mut txn = db.begin_write().map_err(db_errs(path))?;
        txn.set_durability(Durability::Immediate)
            .map_err(db_errs(path))?;
        // Quick repair commits in two phases and records the allocator
        // state: a restart after a crash needs no walk of the whole file,
        // and a damaged newest commit is reported as corruption instead of
        // being rolled back to the one before.
        txn.set_quick_repair(true);
        {
            let e = db_errs(path);
            let mut tasks = txn.open_table(TASKS).map_err(db_errs(path))?;
            write_by_id(&mut tasks, &self.tasks, Vec::as_slice).map_err(&e)?;
            let mut leases = txn.open_table(LEASES).map_err(db_errs(path))?;
            write_by_id(&mut leases, &self.leases, |v| &v[..]).map_err(&e)?;
            let mut due = txn.open_table(DUE).map_err(db_errs(path))?;
            for ((r, at, id), put) in &self.due {
                let key = (*r, *at, id.as_str());
                if *put {
                    due.insert(key, index_crc(*r, *at, id)).map_err(&e)?;
                } else {
                    due.remove(key).map_err(&e)?;
                }
            }
            for (def, tag, rows) in [
                (EXPIRY, EXPIRY_TAG, &self.expiry),
                (FINISHED, FINISHED_TAG, &self.finished),
            ] {
                let mut table = txn.open_table(def).map_err(db_errs(path))?;
                for ((at, id), put) in rows {
                    if *put {
                        table
                            .insert((*at, id.as_str()), index_crc(tag, *at, id))
                            .map_err(&e)?;
                    } else {
                        table.remove((*at, id.as_str())).map_err(&e)?;
                    }
                }
            }
            if let Some(seq) = seq {
                let mut meta = txn.open_table(META).map_err(db_errs(path))?;
                meta.insert("seq", seq).map_err(&e)?;
            }
        }
        txn.commit().map_err(db_errs(path))?;
        Ok(())
    }
}

/// The floor slot of rank `r` of the due index (ranks 0 and 1; any other
/// has none, and no walk ever reads one).
pub(crate) fn due_slot(r: u8) -> Option<usize> {
    (r < 2).then_some(usize::from(r))
}

/// A live entry `(at, id)` exists now: `floor`, if set, is at most that.
fn lower(floor: &mut Option<(u64, String)>, at: u64, id: &str) {
    if let Some(f) = floor {
        if (at, id) < (f.0, f.1.as_str()) {
            *f = (at, id.to_string());
        }
    }
}

/// Writes the rows of a table keyed by id (`None`: deleted) into redb.
fn write_by_id<V>(
    table: &mut redb::Table<&str, &[u8]>,
    rows: &BTreeMap<String, Option<V>>,
    bytes: impl Fn(&V) -> &[u8],
) -> std::result::Result<(), redb::StorageError> {
    for (id, v) in rows {
        match v {
            Some(v) => drop(table.insert(id.as_str(), bytes(v))?),
            None => drop(table.remove(id.as_str())?),
        }
    }
    Ok(())
}

/// The memtables, shared by the writer (which changes the active one),
/// the flusher and the readers.
#[derive(Debug, Default)]
pub(crate) struct Layers {
    pub(crate) active: Memtable,
    /// Being written into redb by the flusher.
    pub(crate) frozen: Option<Arc<Memtable>>,
    /// The last group applied to `active`.
    pub(crate) seq: u64,
    /// Checkpoints made by the flusher: a reader of redb must begin a new
    /// read transaction after one (redb now holds what `frozen` held).
    pub(crate) checkpoints: u64,
    /// The store is closing: the flusher writes what is left and stops.
    pub(crate) closing: bool,
}

/// [`Layers`] behind their lock, and the signal that they changed in a way
/// the writer or the flusher waits for.
#[derive(Debug, Default)]
pub(crate) struct Overlay {
    layers: Mutex<Layers>,
    pub(crate) changed: Condvar,
}

impl Overlay {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Layers> {
        self.layers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for [`Overlay::changed`], at most `timeout`.
    pub(crate) fn wait<'a>(
        &self,
        guard: MutexGuard<'a, Layers>,
        timeout: Duration,
    ) -> MutexGuard<'a, Layers> {
        self.changed
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|p| p.into_inner())
            .0
    }
}
