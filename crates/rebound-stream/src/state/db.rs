//! The state directory on disk: one lock for the whole directory (one
//! process at a time), a stable instance id, and one redb file per input
//! partition, opened the way the scheduler's `file://` store opens its file
//! (bounded page cache, integrity check at open for small files, damage
//! refused with the file named, never repaired by dropping data).

use std::fs::File;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};

use redb::{Database, TableDefinition};

use crate::error::{Result, StreamError};

/// redb's page cache per partition file: memory per partition is bounded
/// whatever the number of keys.
pub const CACHE_BYTES: usize = 4 * 1024 * 1024;

/// Files up to this size are verified page by page at open.
pub const VERIFY_AT_OPEN_MAX: u64 = 64 * 1024 * 1024;

/// Meta table: `checkpoint` (the next input offset the state reflects) and
/// `changelog:<store>` (the next changelog offset the state reflects).
pub(crate) const META: TableDefinition<&str, i64> = TableDefinition::new("meta");

/// The table of store `name`.
pub(crate) fn store_table(name: &str) -> TableDefinition<'_, &'static [u8], &'static [u8]> {
    TableDefinition::new(name)
}

/// A locked state directory.
#[derive(Debug)]
pub(crate) struct StateDir {
    pub root: PathBuf,
    /// Stable across restarts of this directory: names the transactional id.
    pub instance_id: String,
    _lock: File,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StreamError + '_ {
    move |source| StreamError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl StateDir {
    /// Creates and locks `root`; reads (or makes) its instance id.
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(io(root))?;
        let lock_path = root.join("LOCK");
        let lock = File::create(&lock_path).map_err(io(&lock_path))?;
        lock.try_lock().map_err(|e| match e {
            std::fs::TryLockError::WouldBlock => StreamError::Locked {
                dir: root.to_path_buf(),
            },
            std::fs::TryLockError::Error(source) => StreamError::Io {
                path: lock_path.clone(),
                source,
            },
        })?;
        let id_path = root.join("instance-id");
        let instance_id = match std::fs::read_to_string(&id_path) {
            Ok(s) if !s.trim().is_empty() => s.trim().to_string(),
            _ => {
                let id = format!("{:016x}", rand::random::<u64>());
                std::fs::write(&id_path, &id).map_err(io(&id_path))?;
                id
            }
        };
        Ok(StateDir {
            root: root.to_path_buf(),
            instance_id,
            _lock: lock,
        })
    }

    /// Where the state of `topic`/`partition` lives.
    pub fn partition_file(&self, topic: &str, partition: i32) -> PathBuf {
        self.root
            .join(format!("{topic}-{partition}"))
            .join("state.redb")
    }
}

/// Opens (creating) the database file at `path`.
pub(crate) fn open_file(path: &Path) -> Result<Database> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut b = redb::Builder::new();
    b.set_cache_size(CACHE_BYTES);
    b.set_check_integrity_on_open(size <= VERIFY_AT_OPEN_MAX);
    // redb may panic on a file damaged in a way it does not expect.
    let opened = std::panic::catch_unwind(AssertUnwindSafe(|| b.create(path))).map_err(|p| {
        StreamError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "the database engine panicked opening it: {}",
                panic_reason(p)
            ),
        }
    })?;
    opened.map_err(|e| db_err(path, e))
}

fn panic_reason(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// `.or_db(path)`: a redb result with the error mapped by [`db_err`].
pub(crate) trait OrDb<T> {
    fn or_db(self, path: &Path) -> Result<T>;
}

impl<T, E: Into<redb::Error>> OrDb<T> for std::result::Result<T, E> {
    fn or_db(self, path: &Path) -> Result<T> {
        self.map_err(|e| db_err(path, e))
    }
}

/// Maps a redb error: damage it detects becomes [`StreamError::Corrupt`].
pub(crate) fn db_err(path: &Path, e: impl Into<redb::Error>) -> StreamError {
    match e.into() {
        redb::Error::Corrupted(reason) => StreamError::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
        redb::Error::Io(source) => StreamError::Io {
            path: path.to_path_buf(),
            source,
        },
        source => StreamError::Db {
            path: path.to_path_buf(),
            source,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_directory_is_refused_and_the_instance_id_is_stable() {
        let dir =
            std::env::temp_dir().join(format!("rebound-stream-lock-{}", rand::random::<u64>()));
        let a = StateDir::open(&dir).unwrap();
        let err = StateDir::open(&dir).unwrap_err();
        assert!(matches!(err, StreamError::Locked { .. }), "{err}");
        let id = a.instance_id.clone();
        drop(a);
        assert_eq!(StateDir::open(&dir).unwrap().instance_id, id);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_file_is_refused_naming_it() {
        let dir =
            std::env::temp_dir().join(format!("rebound-stream-bad-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.redb");
        std::fs::write(&path, vec![0x5a; 64 * 1024]).unwrap();
        let err = open_file(&path).unwrap_err();
        let text = err.to_string();
        assert!(text.contains(&path.display().to_string()), "{text}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
