//! Per-partition state: a redb file per input partition holding every
//! store of that partition, with a write-back cache in front.
//!
//! **Write-back cache.** Operators read and write the cache; a changed key
//! is marked dirty with the input offset that changed it last. At each
//! commit the dirty keys go to the changelog (one record per key, however
//! many records changed it) and then to the file in one redb transaction,
//! together with the checkpoint (the next input offset) and each
//! changelog's next offset. An aborted transaction drops the dirty keys:
//! the file still holds the last committed state.
//!
//! - `db`: the state directory, its lock, opening a file.
//! - `restore`: the changelog tail (or all of it) into the file.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use redb::{Database, ReadableDatabase, ReadableTable};

use crate::error::Result;

pub(crate) mod db;
pub(crate) mod restore;

use db::{db_err, store_table, OrDb, META};

/// How often the state file is made durable while processing.
pub const SYNC_EVERY: Duration = Duration::from_secs(2);

/// Clean entries kept in memory per store before the cache is emptied
/// (after a commit): memory is bounded whatever the number of keys.
const CACHE_ENTRIES: usize = 100_000;

/// A cached value; `tag` is set while dirty: the input offset that changed it last.
struct Slot {
    value: Option<Vec<u8>>,
    tag: Option<i64>,
}

/// One store of one partition.
pub(crate) struct Store {
    pub name: String,
    pub changelog: String,
    /// The next changelog offset the file reflects.
    pub changelog_next: i64,
    entries: HashMap<Vec<u8>, Slot>,
    dirty: usize,
}

impl Store {
    /// Dirty entries: key, value (`None`: deleted), tag.
    pub fn dirty(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>, i64)> {
        self.entries
            .iter()
            .filter_map(|(k, s)| s.tag.map(|t| (k.as_slice(), s.value.as_deref(), t)))
    }

    /// How many keys changed since the last commit.
    pub fn dirty_count(&self) -> usize {
        self.dirty
    }
}

/// The state of one input partition.
pub(crate) struct Task {
    pub partition: i32,
    /// The partition's file; `None` for a source topic without stores.
    file: Option<(Database, PathBuf)>,
    /// By store id; `None` for stores of other source topics.
    pub stores: Vec<Option<Store>>,
    /// The next input offset the state reflects: records below it are in it.
    pub checkpoint: i64,
    /// When the file was last made durable.
    synced: Instant,
}

impl Drop for Task {
    /// Makes the last commits durable (an empty durable transaction).
    fn drop(&mut self) {
        if let Some((db, path)) = &self.file {
            let r = db
                .begin_write()
                .map_err(redb::Error::from)
                .and_then(|t| t.commit().map_err(Into::into));
            if let Err(e) = r {
                tracing::warn!(file = %path.display(), error = %e, "could not sync the state file");
            }
        }
    }
}

impl Task {
    /// Opens the file at `path` for stores `owned` (id, name, changelog
    /// topic) out of `total` stores.
    pub fn open(
        partition: i32,
        path: PathBuf,
        owned: &[(usize, String, String)],
        total: usize,
    ) -> Result<Task> {
        if owned.is_empty() {
            return Ok(Task {
                partition,
                file: None,
                stores: (0..total).map(|_| None).collect(),
                checkpoint: 0,
                synced: Instant::now(),
            });
        }
        let db = db::open_file(&path)?;
        let file: &std::path::Path = &path;
        let mut checkpoint = 0;
        let mut stores: Vec<Option<Store>> = (0..total).map(|_| None).collect();
        let mut next_of = HashMap::new();
        {
            let txn = db.begin_read().or_db(file)?;
            match txn.open_table(META) {
                Ok(meta) => {
                    for row in meta.iter().or_db(file)? {
                        let (k, v) = row.or_db(file)?;
                        next_of.insert(k.value().to_string(), v.value());
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(x) => return Err(db_err(file, x)),
            }
        }
        if let Some(c) = next_of.get("checkpoint") {
            checkpoint = *c;
        }
        for (id, name, changelog) in owned {
            stores[*id] = Some(Store {
                name: name.clone(),
                changelog: changelog.clone(),
                changelog_next: next_of
                    .get(&format!("changelog:{name}"))
                    .copied()
                    .unwrap_or(0),
                entries: HashMap::new(),
                dirty: 0,
            });
        }
        Ok(Task {
            partition,
            file: Some((db, path)),
            stores,
            checkpoint,
            synced: Instant::now(),
        })
    }

    fn store(&mut self, id: usize) -> &mut Store {
        self.stores[id]
            .as_mut()
            .expect("an operator reads only stores of its own source topic")
    }

    /// The value of `key` in store `id`.
    pub fn get(&mut self, id: usize, key: &[u8]) -> Result<Option<&[u8]>> {
        if !self.store(id).entries.contains_key(key) {
            let value = self.read_file(id, key)?;
            self.store(id)
                .entries
                .insert(key.to_vec(), Slot { value, tag: None });
        }
        Ok(self
            .store(id)
            .entries
            .get(key)
            .and_then(|s| s.value.as_deref()))
    }

    fn read_file(&self, id: usize, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let name = &self.stores[id].as_ref().expect("store").name;
        read_file(self.file.as_ref(), name, key)
    }

    /// Replaces the value of `key` in store `id` with `f(old value)`,
    /// changed by input offset `tag`; returns what `f` returns besides the
    /// new value. One hash lookup per call: the per-record path of an
    /// aggregation.
    pub fn update<R>(
        &mut self,
        id: usize,
        key: Vec<u8>,
        tag: i64,
        f: impl FnOnce(Option<&[u8]>) -> Result<(Option<Vec<u8>>, R)>,
    ) -> Result<R> {
        let Task { file, stores, .. } = self;
        let store = stores[id]
            .as_mut()
            .expect("an operator reads only stores of its own source topic");
        let slot = match store.entries.entry(key) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                let value = read_file(file.as_ref(), &store.name, v.key())?;
                v.insert(Slot { value, tag: None })
            }
        };
        let (value, out) = f(slot.value.as_deref())?;
        slot.value = value;
        if slot.tag.replace(tag).is_none() {
            store.dirty += 1;
        }
        Ok(out)
    }

    /// Keys of store `id` in `lower..upper` that hold a value (the file's,
    /// overlaid with the uncommitted changes), in key order; when there are
    /// more than `limit`, `limit` of them at most (some, not necessarily the
    /// smallest: at most `limit` are read from the file).
    pub fn keys_in(
        &mut self,
        id: usize,
        lower: &[u8],
        upper: &[u8],
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let mut keys = std::collections::BTreeSet::new();
        if self.file.is_some() {
            let name = &self.stores[id].as_ref().expect("store").name;
            let (db, path) = self.db();
            let file: &std::path::Path = path;
            let txn = db.begin_read().or_db(file)?;
            match txn.open_table(store_table(name)) {
                Ok(table) => {
                    for row in table.range(lower..upper).or_db(file)?.take(limit) {
                        keys.insert(row.or_db(file)?.0.value().to_vec());
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(x) => return Err(db_err(file, x)),
            }
        }
        for (k, slot) in &self.store(id).entries {
            if k.as_slice() >= lower && k.as_slice() < upper {
                match slot.value {
                    Some(_) => keys.insert(k.clone()),
                    None => keys.remove(k),
                };
            }
        }
        Ok(keys.into_iter().take(limit).collect())
    }

    /// Sets `key` in store `id` (`None` deletes it), changed by input offset `tag`.
    pub fn put(&mut self, id: usize, key: Vec<u8>, value: Option<Vec<u8>>, tag: i64) {
        let store = self.store(id);
        let was_dirty = store.entries.get(&key).is_some_and(|s| s.tag.is_some());
        store.entries.insert(
            key,
            Slot {
                value,
                tag: Some(tag),
            },
        );
        if !was_dirty {
            store.dirty += 1;
        }
    }

    /// Forgets uncommitted changes (their transaction was aborted).
    pub fn rollback(&mut self) {
        for s in self.stores.iter_mut().flatten() {
            s.entries.retain(|_, slot| slot.tag.is_none());
            s.dirty = 0;
        }
    }

    /// Writes the dirty entries, `checkpoint` and the changelog positions
    /// (`changelog_next` by store id, for stores that sent records) to the
    /// file in one transaction; the entries become clean.
    ///
    /// Made durable (fsync) at most every [`SYNC_EVERY`] and when the
    /// partition is closed: a crash can take the file back to an earlier
    /// commit, which is consistent (entries, checkpoint and changelog
    /// positions move together) and is brought forward from the changelog
    /// at the next assignment. An fsync per commit cost ~100 ms here.
    pub fn persist(&mut self, checkpoint: i64, changelog_next: &[(usize, i64)]) -> Result<()> {
        for &(id, next) in changelog_next {
            self.store(id).changelog_next = next;
        }
        self.checkpoint = checkpoint;
        let Some((db, path)) = &self.file else {
            return Ok(());
        };
        let file: &std::path::Path = path;
        let mut txn = db.begin_write().or_db(file)?;
        let sync = self.synced.elapsed() >= SYNC_EVERY;
        if !sync {
            txn.set_durability(redb::Durability::None).or_db(file)?;
        }
        {
            let mut meta = txn.open_table(META).or_db(file)?;
            meta.insert("checkpoint", checkpoint).or_db(file)?;
            for s in self.stores.iter().flatten() {
                let key = format!("changelog:{}", s.name);
                meta.insert(key.as_str(), s.changelog_next).or_db(file)?;
                if s.dirty == 0 {
                    continue;
                }
                let mut table = txn.open_table(store_table(&s.name)).or_db(file)?;
                for (k, v, _) in s.dirty() {
                    match v {
                        Some(v) => table.insert(k, v).map(drop),
                        None => table.remove(k).map(drop),
                    }
                    .or_db(file)?;
                }
            }
        }
        txn.commit().or_db(file)?;
        if sync {
            self.synced = Instant::now();
        }
        for s in self.stores.iter_mut().flatten() {
            if s.entries.len() > CACHE_ENTRIES {
                s.entries.clear();
            } else {
                s.entries.values_mut().for_each(|slot| slot.tag = None);
            }
            s.dirty = 0;
        }
        Ok(())
    }

    /// Bytes of the partition's file.
    pub fn file_bytes(&self) -> u64 {
        self.file
            .as_ref()
            .and_then(|(_, p)| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    }

    /// The partition's file (only tasks with stores have one).
    pub(crate) fn db(&self) -> (&Database, &PathBuf) {
        let (db, path) = self.file.as_ref().expect("a task with stores has a file");
        (db, path)
    }
}

/// The value of `key` in the store table `name` of `file`.
fn read_file(
    file: Option<&(Database, PathBuf)>,
    name: &str,
    key: &[u8],
) -> Result<Option<Vec<u8>>> {
    let (db, path) = file.expect("a task with stores has a file");
    let file: &std::path::Path = path;
    let txn = db.begin_read().or_db(file)?;
    let table = match txn.open_table(store_table(name)) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(x) => return Err(db_err(file, x)),
    };
    Ok(table.get(key).or_db(file)?.map(|v| v.value().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file() -> PathBuf {
        std::env::temp_dir()
            .join(format!("rebound-stream-task-{}", rand::random::<u64>()))
            .join("state.redb")
    }

    fn open(path: &std::path::Path) -> Task {
        let owned = vec![(0, "counts".to_string(), "app-counts-changelog".to_string())];
        Task::open(0, path.to_path_buf(), &owned, 1).unwrap()
    }

    #[test]
    fn a_commit_writes_each_changed_key_once_and_an_abort_forgets_the_changes() {
        let path = temp_file();
        let mut t = open(&path);
        for i in 0..1000i64 {
            let key = format!("k{}", i % 10).into_bytes();
            let n = t.get(0, &key).unwrap().map_or(0, |b| b[0]) + 1;
            t.put(0, key, Some(vec![n]), i);
        }
        let store = t.stores[0].as_ref().unwrap();
        assert_eq!(
            store.dirty_count(),
            10,
            "ten keys changed, a thousand records"
        );
        let tags: Vec<i64> = store.dirty().map(|(_, _, tag)| tag).collect();
        assert!(
            tags.iter().all(|t| (990..1000).contains(t)),
            "tagged with the last offset: {tags:?}"
        );
        // update: one lookup, counted dirty once, the old value handed in.
        let seen = t
            .update(0, b"k1".to_vec(), 999, |old| {
                Ok((Some(vec![7]), old.map(<[u8]>::to_vec)))
            })
            .unwrap();
        assert_eq!(seen, Some(vec![100]));
        assert_eq!(t.stores[0].as_ref().unwrap().dirty_count(), 10);
        t.put(0, b"k1".to_vec(), Some(vec![100]), 999);
        t.persist(1000, &[(0, 10)]).unwrap();

        // An aborted batch: its changes are gone, the file's are back.
        t.put(0, b"k0".to_vec(), Some(vec![0]), 1000);
        t.rollback();
        assert_eq!(t.get(0, b"k0").unwrap(), Some(&[100u8][..]));
        drop(t);

        let mut t = open(&path);
        assert_eq!(
            (t.checkpoint, t.stores[0].as_ref().unwrap().changelog_next),
            (1000, 10)
        );
        assert_eq!(t.get(0, b"k9").unwrap(), Some(&[100u8][..]));

        // A range: the file's keys overlaid with uncommitted ones, in key
        // order; with a limit, at most that many of them.
        t.put(0, b"k0".to_vec(), None, 1001);
        t.put(0, b"k35".to_vec(), Some(vec![1]), 1001);
        let range = |t: &mut Task, limit| t.keys_in(0, b"k0", b"k5", limit).unwrap();
        let all = range(&mut t, 100);
        assert_eq!(all, [&b"k1"[..], b"k2", b"k3", b"k35", b"k4"]);
        let some = range(&mut t, 2);
        assert_eq!(some.len(), 2);
        assert!(some.windows(2).all(|w| w[0] < w[1]) && some.iter().all(|k| all.contains(k)));
        std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
