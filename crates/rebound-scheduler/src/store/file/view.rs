//! The tables as the store sees them: the active memtable over the frozen
//! one over redb ([`super::memtable`]). A key's newest layer wins; a
//! deletion there hides the older layers. Index entries read from redb are
//! checked against their checksums on the way.

use std::collections::BTreeMap;
use std::ops::RangeBounds;
use std::path::Path;

use redb::{Database, ReadOnlyTable, ReadableDatabase, ReadableTable};

use super::memtable::{due_slot, AtKey, DueKey, Memtable};
use super::redo::AtIndex;
use super::tables::{
    check_index, db_errs, decode_lease, decode_task, Lease, DUE, EXPIRY, EXPIRY_TAG, FINISHED,
    FINISHED_TAG, LEASES, TASKS,
};
use crate::error::{Error, Result};
use crate::task::Task;

/// redb's tables in one read transaction.
pub(crate) struct Stored {
    pub(crate) tasks: ReadOnlyTable<&'static str, &'static [u8]>,
    leases: ReadOnlyTable<&'static str, &'static [u8]>,
    due: ReadOnlyTable<(u8, u64, &'static str), u32>,
    expiry: ReadOnlyTable<(u64, &'static str), u32>,
    finished: ReadOnlyTable<(u64, &'static str), u32>,
}

impl Stored {
    /// Begins a read transaction (the tables exist: [`super::tables::create`]).
    pub(crate) fn open(db: &Database, path: &Path) -> Result<Stored> {
        let txn = db.begin_read().map_err(db_errs(path))?;
        Ok(Stored {
            tasks: txn.open_table(TASKS).map_err(db_errs(path))?,
            leases: txn.open_table(LEASES).map_err(db_errs(path))?,
            due: txn.open_table(DUE).map_err(db_errs(path))?,
            expiry: txn.open_table(EXPIRY).map_err(db_errs(path))?,
            finished: txn.open_table(FINISHED).map_err(db_errs(path))?,
        })
    }

    /// A task's stored bytes.
    pub(crate) fn task_bytes(&self, path: &Path, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tasks
            .get(id)
            .map_err(db_errs(path))?
            .map(|v| v.value().to_vec()))
    }
}

/// Sorted `(key, value)` rows; `None`: deleted in this layer.
pub(crate) type Source<'a, K, V> = Box<dyn Iterator<Item = Result<(K, Option<V>)>> + 'a>;

/// The live rows of layers merged, each given newest first.
pub(crate) struct Merge<'a, K, V> {
    sources: Vec<Source<'a, K, V>>,
    heads: Vec<Option<(K, Option<V>)>>,
    started: bool,
}

pub(crate) fn merge<K: Ord, V>(sources: Vec<Source<'_, K, V>>) -> Merge<'_, K, V> {
    let heads = sources.iter().map(|_| None).collect();
    Merge {
        sources,
        heads,
        started: false,
    }
}

impl<K: Ord, V> Merge<'_, K, V> {
    fn advance(&mut self, i: usize) -> Result<()> {
        self.heads[i] = self.sources[i].next().transpose()?;
        Ok(())
    }

    fn step(&mut self) -> Result<Option<(K, V)>> {
        if !self.started {
            self.started = true;
            for i in 0..self.sources.len() {
                self.advance(i)?;
            }
        }
        loop {
            // The first source holding the smallest key: the newest layer.
            let mut best: Option<usize> = None;
            for (i, h) in self.heads.iter().enumerate() {
                if let Some((k, _)) = h {
                    let smaller = best
                        .and_then(|b| self.heads[b].as_ref())
                        .is_none_or(|(bk, _)| k < bk);
                    if smaller {
                        best = Some(i);
                    }
                }
            }
            let Some(b) = best else {
                return Ok(None);
            };
            let (k, v) = self.heads[b].take().expect("the head just found");
            self.advance(b)?;
            // Older layers' rows under the same key are hidden.
            for j in 0..self.heads.len() {
                while self.heads[j].as_ref().is_some_and(|(hk, _)| *hk == k) {
                    self.advance(j)?;
                }
            }
            if let Some(v) = v {
                return Ok(Some((k, v)));
            }
        }
    }
}

impl<K: Ord, V> Iterator for Merge<'_, K, V> {
    type Item = Result<(K, V)>;
    fn next(&mut self) -> Option<Self::Item> {
        self.step().transpose()
    }
}

/// The entry `pick` finds in the active memtable, else in the frozen one.
pub(crate) fn newest<'m, T: ?Sized>(
    active: &'m Memtable,
    frozen: Option<&'m Memtable>,
    pick: impl Fn(&'m Memtable) -> Option<&'m T>,
) -> Option<&'m T> {
    pick(active).or_else(|| frozen.and_then(&pick))
}

/// A memtable's rows in `range` as a [`Source`].
pub(crate) fn layer<'a, K: Ord + Clone, V: Clone, R: RangeBounds<K>>(
    rows: &'a BTreeMap<K, Option<V>>,
    range: R,
) -> Source<'a, K, V> {
    Box::new(rows.range(range).map(|(k, v)| Ok((k.clone(), v.clone()))))
}

/// An index memtable's rows in `range` as a [`Source`].
fn index_layer<'a, K: Ord + Clone, R: RangeBounds<K>>(
    rows: &'a BTreeMap<K, bool>,
    range: R,
) -> Source<'a, K, ()> {
    Box::new(
        rows.range(range)
            .map(|(k, put)| Ok((k.clone(), put.then_some(())))),
    )
}

/// The open view of one group of writes: reads see every layer; writes
/// ([`super::redo`]) go to the active memtable and the group's redo record.
pub(crate) struct Tx<'a> {
    pub(super) path: &'a Path,
    stored: &'a Stored,
    frozen: Option<&'a Memtable>,
    pub(super) active: &'a mut Memtable,
    /// The changes of the current group, for the redo log.
    pub(super) redo: Vec<u8>,
}

impl<'a> Tx<'a> {
    pub(crate) fn new(
        path: &'a Path,
        stored: &'a Stored,
        frozen: Option<&'a Memtable>,
        active: &'a mut Memtable,
    ) -> Self {
        Tx {
            path,
            stored,
            frozen,
            active,
            redo: Vec::new(),
        }
    }

    /// The newest memtable's entry, if either has one.
    fn newest<'m, T>(&'m self, pick: impl Fn(&'m Memtable) -> Option<&'m T>) -> Option<&'m T> {
        newest(&*self.active, self.frozen, pick)
    }

    pub(super) fn task(&self, id: &str) -> Result<Option<Task>> {
        let bytes = match self.newest(|m| m.tasks.get(id)) {
            Some(Some(v)) => return decode_task(self.path, id, v).map(Some),
            Some(None) => return Ok(None),
            None => self.stored.task_bytes(self.path, id)?,
        };
        bytes.map(|v| decode_task(self.path, id, &v)).transpose()
    }

    /// The task an index names: its absence is damage.
    pub(super) fn indexed(&self, id: &str) -> Result<Task> {
        self.task(id)?.ok_or_else(|| Error::Corrupt {
            path: self.path.to_path_buf(),
            reason: format!("an index names task {id:?}, which is not stored"),
        })
    }

    pub(super) fn lease(&self, id: &str) -> Result<Option<Lease>> {
        match self.newest(|m| m.leases.get(id)) {
            Some(Some(v)) => decode_lease(self.path, id, v).map(Some),
            Some(None) => Ok(None),
            None => match self.stored.leases.get(id).map_err(db_errs(self.path))? {
                Some(v) => decode_lease(self.path, id, v.value()).map(Some),
                None => Ok(None),
            },
        }
    }

    /// Up to `max` live keys of an index in `range`: the memtables' rows
    /// (`rows` picks the index in one) over `stored`, redb's rows in the
    /// same range, checked.
    fn index_keys<'s, K: Ord + Clone + 's>(
        &'s self,
        rows: impl Fn(&'s Memtable) -> &'s BTreeMap<K, bool>,
        range: std::ops::Range<K>,
        stored: impl Iterator<Item = Result<K>> + 's,
        max: usize,
    ) -> Result<Vec<K>> {
        let mut sources = vec![index_layer(rows(&*self.active), range.clone())];
        if let Some(f) = self.frozen {
            sources.push(index_layer(rows(f), range));
        }
        sources.push(Box::new(stored.map(|k| k.map(|k| (k, Some(()))))));
        merge(sources)
            .take(max)
            .map(|r| r.map(|(k, ())| k))
            .collect()
    }

    /// Walks an index from its floor ([`Memtable::floors`], `slot`) up to
    /// `(end, "")`: `walk` gets the start and returns up to `max` live
    /// keys in order (`at_id` gives a key's `(at, id)`). The floor then
    /// becomes the first key found, or `(end, "")` when none is: nothing
    /// live lies below either.
    fn walk_floored<K>(
        &mut self,
        slot: usize,
        end: u64,
        max: usize,
        walk: impl FnOnce(&Self, u64, &str) -> Result<Vec<K>>,
        at_id: impl Fn(&K) -> (u64, String),
    ) -> Result<Vec<K>> {
        if max == 0 {
            // (Found nothing because it looked for nothing: no floor.)
            return Ok(Vec::new());
        }
        let (from, from_id) = self.active.floors[slot].clone().unwrap_or_default();
        if (from, from_id.as_str()) >= (end, "") {
            return Ok(Vec::new());
        }
        let keys = walk(self, from, &from_id)?;
        let floor = keys.first().map(at_id).unwrap_or((end, String::new()));
        self.active.floors[slot] = Some(floor);
        Ok(keys)
    }

    /// The entries of a walk's index up to `(at, id)` are deleted (claimed
    /// or swept): the next walk starts after them.
    pub(super) fn removed_to(&mut self, slot: usize, at: u64, id: &str) {
        self.active.floors[slot] = Some((at, id.to_string()));
    }

    /// Up to `max` entries of rank `r` (0 or 1) of the due index due by
    /// `upto`, from the rank's floor.
    pub(super) fn due_keys(&mut self, r: u8, upto: u64, max: usize) -> Result<Vec<DueKey>> {
        let Some(slot) = due_slot(r) else {
            return Ok(Vec::new());
        };
        let end = upto.saturating_add(1);
        let walk = |tx: &Self, from: u64, from_id: &str| {
            let path = tx.path;
            let rows = (tx.stored.due)
                .range((r, from, from_id)..(r, end, ""))
                .map_err(db_errs(path))?;
            let stored = rows.map(move |row| {
                let (k, v) = row.map_err(db_errs(path))?;
                let (r, at, id) = k.value();
                check_index(path, "due", r, at, id, v.value())?;
                Ok((r, at, id.to_string()))
            });
            let range = (r, from, from_id.to_string())..(r, end, String::new());
            tx.index_keys(|m| &m.due, range, stored, max)
        };
        self.walk_floored(slot, end, max, walk, |(_, at, id)| (*at, id.clone()))
    }

    /// Up to `max` entries of `index` with `at < to`, from its floor.
    pub(super) fn at_keys(&mut self, index: AtIndex, to: u64, max: usize) -> Result<Vec<AtKey>> {
        let walk = |tx: &Self, from: u64, from_id: &str| {
            let (table, name, tag) = match index {
                AtIndex::Expiry => (&tx.stored.expiry, "expiry", EXPIRY_TAG),
                AtIndex::Finished => (&tx.stored.finished, "finished", FINISHED_TAG),
            };
            let path = tx.path;
            let rows = table
                .range((from, from_id)..(to, ""))
                .map_err(db_errs(path))?;
            let stored = rows.map(move |row| {
                let (k, v) = row.map_err(db_errs(path))?;
                let (at, id) = k.value();
                check_index(path, name, tag, at, id, v.value())?;
                Ok((at, id.to_string()))
            });
            let range = (from, from_id.to_string())..(to, String::new());
            tx.index_keys(|m| m.at(index), range, stored, max)
        };
        self.walk_floored(index.slot(), to, max, walk, AtKey::clone)
    }

    /// The ids of every task under a lease.
    pub(super) fn leased_ids(&self) -> Result<Vec<String>> {
        let mut sources = vec![layer(&self.active.leases, ..)];
        if let Some(f) = self.frozen {
            sources.push(layer(&f.leases, ..));
        }
        let path = self.path;
        let rows = self.stored.leases.iter().map_err(db_errs(path))?;
        sources.push(Box::new(rows.map(move |row| {
            let (k, _) = row.map_err(db_errs(path))?;
            Ok((k.value().to_string(), Some([0u8; 20])))
        })));
        merge(sources).map(|r| r.map(|(id, _)| id)).collect()
    }
}
