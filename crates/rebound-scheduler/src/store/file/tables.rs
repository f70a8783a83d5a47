//! The embedded store's tables and their checksummed encodings.
//!
//! redb checksums every page (a Merkle tree of XXH3-128), but it verifies
//! those checksums only when it repairs after a crash, or on an open with
//! `set_check_integrity_on_open`; ordinary reads trust the page. So every
//! value here carries its own CRC-32 over key and value, checked on every
//! read: a flipped byte in a data page becomes [`Error::Corrupt`] naming the
//! file, never a task that silently changed or vanished.
//!
//! | table | key | value |
//! |---|---|---|
//! | `tasks` | id | `crc · task` ([`codec`]'s binary form; JSON in stores written before it) |
//! | `due` | `(rank, due_ms, id)`, rank 0 = priority, 1 = normal | `crc` |
//! | `leases` | id | `crc · until_ms · token` |
//! | `expiry` | `(until_ms, id)` | `crc` |
//! | `finished` | `(updated_at_ms, id)` of final tasks (retention) | `crc` |
//! | `meta` | `seq` | the last redo-log group the tables hold |
//! | `meta` | `format` | the store format ([`FORMAT`]) |

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use super::codec;
use crate::error::{Error, Result};
use crate::task::Task;

pub(crate) const TASKS: TableDefinition<&str, &[u8]> = TableDefinition::new("tasks");
pub(crate) const DUE: TableDefinition<(u8, u64, &str), u32> = TableDefinition::new("due");
pub(crate) const LEASES: TableDefinition<&str, &[u8]> = TableDefinition::new("leases");
pub(crate) const EXPIRY: TableDefinition<(u64, &str), u32> = TableDefinition::new("expiry");
pub(crate) const FINISHED: TableDefinition<(u64, &str), u32> = TableDefinition::new("finished");
/// `seq`: the redo log's last group contained in the committed state.
pub(crate) const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// First byte of the checksummed form of an `expiry` and a `finished` key
/// (a `due` key starts with its rank).
pub(crate) const EXPIRY_TAG: u8 = 0x10;
pub(crate) const FINISHED_TAG: u8 = 0x20;

/// Rank of a task in the due index: priority tasks sort before all others,
/// which is the claim order (priority first, then by due time).
pub(crate) fn rank(prio: bool) -> u8 {
    if prio {
        0
    } else {
        1
    }
}

/// The due-index key of a scheduled task.
pub(crate) fn due_key(t: &Task) -> (u8, u64, &str) {
    (
        rank(t.spec.is_priority),
        t.next_due_ms.unwrap_or(t.created_at_ms),
        t.id(),
    )
}

fn crc(parts: &[&[u8]]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    for p in parts {
        h.update(p);
    }
    h.finalize()
}

/// Checksum of an index entry `(a, b, id)`.
pub(crate) fn index_crc(a: u8, b: u64, id: &str) -> u32 {
    crc(&[&[a], &b.to_le_bytes(), id.as_bytes()])
}

/// Encodes a task as stored: CRC of id and body, then the body (the
/// binary form of [`codec`]). Done by the caller, off the writer thread.
pub(crate) fn encode_task(t: &Task) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + t.spec.message_data.len());
    out.extend_from_slice(&[0; 4]);
    codec::encode(t, &mut out);
    let sum = crc(&[t.id().as_bytes(), &out[4..]]);
    out[..4].copy_from_slice(&sum.to_le_bytes());
    out
}

/// Checks a stored task's CRC; returns its body.
pub(crate) fn verify_task<'b>(path: &Path, id: &str, bytes: &'b [u8]) -> Result<&'b [u8]> {
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("task {id:?}: {reason}"),
    };
    if bytes.len() < 4 {
        return Err(corrupt(format!("record of {} bytes", bytes.len())));
    }
    let (sum, body) = bytes.split_at(4);
    if u32::from_le_bytes(sum.try_into().expect("4 bytes")) != crc(&[id.as_bytes(), body]) {
        return Err(corrupt("checksum mismatch".into()));
    }
    Ok(body)
}

/// Decodes and verifies a stored task.
pub(crate) fn decode_task(path: &Path, id: &str, bytes: &[u8]) -> Result<Task> {
    let corrupt = |reason: String| Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("task {id:?}: {reason}"),
    };
    let body = verify_task(path, id, bytes)?;
    // A store written before the binary form holds JSON, which still reads.
    let t: Task = match body.first() {
        Some(b'{') => serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))?,
        _ => codec::decode(body).map_err(corrupt)?,
    };
    if t.id() != id {
        return Err(corrupt(format!("record holds task {:?}", t.id())));
    }
    Ok(t)
}

/// A lease: who holds the current attempt of a task, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) until_ms: u64,
    pub(crate) token: u64,
}

pub(crate) fn encode_lease(id: &str, l: Lease) -> [u8; 20] {
    let (u, t) = (l.until_ms.to_le_bytes(), l.token.to_le_bytes());
    let mut out = [0u8; 20];
    out[..4].copy_from_slice(&crc(&[id.as_bytes(), &u, &t]).to_le_bytes());
    out[4..12].copy_from_slice(&u);
    out[12..].copy_from_slice(&t);
    out
}

pub(crate) fn decode_lease(path: &Path, id: &str, b: &[u8]) -> Result<Lease> {
    let ok = b.len() == 20
        && u32::from_le_bytes(b[..4].try_into().expect("4 bytes"))
            == crc(&[id.as_bytes(), &b[4..12], &b[12..]]);
    if !ok {
        return Err(Error::Corrupt {
            path: path.to_path_buf(),
            reason: format!("lease of task {id:?}: checksum mismatch"),
        });
    }
    Ok(Lease {
        until_ms: u64::from_le_bytes(b[4..12].try_into().expect("8 bytes")),
        token: u64::from_le_bytes(b[12..].try_into().expect("8 bytes")),
    })
}

/// The store format this version writes, recorded in `meta` as `format`:
/// 1 is tasks in [`codec`]'s binary form (stores from before it record no
/// format, and hold JSON tasks, which still read). A store recording a
/// newer format is refused at open ([`Error::NewerFormat`]) instead of
/// having its tasks reported as damage.
pub(crate) const FORMAT: u64 = 1;

/// Creates the tables that do not exist yet and records [`FORMAT`], in
/// one durable commit; refuses a store of a newer format.
pub(crate) fn create(db: &Database, path: &Path) -> Result<()> {
    let mut txn = db.begin_write().map_err(db_errs(path))?;
    // As every commit of the store: a commit without it would make the
    // open after a crash walk the whole file (seconds for gigabytes).
    txn.set_quick_repair(true);
    txn.open_table(TASKS).map_err(db_errs(path))?;
    txn.open_table(DUE).map_err(db_errs(path))?;
    txn.open_table(LEASES).map_err(db_errs(path))?;
    txn.open_table(EXPIRY).map_err(db_errs(path))?;
    txn.open_table(FINISHED).map_err(db_errs(path))?;
    {
        let mut meta = txn.open_table(META).map_err(db_errs(path))?;
        let found = meta
            .get("format")
            .map_err(db_errs(path))?
            .map(|v| v.value());
        match found {
            Some(found) if found > FORMAT => {
                return Err(Error::NewerFormat {
                    path: path.to_path_buf(),
                    found,
                    known: FORMAT,
                })
            }
            Some(FORMAT) => {}
            _ => drop(meta.insert("format", FORMAT).map_err(db_errs(path))?),
        }
    }
    txn.commit().map_err(db_errs(path))
}

/// The last redo-log group redb holds (its last checkpoint's).
pub(crate) fn stored_seq(db: &Database, path: &Path) -> Result<u64> {
    let txn = db.begin_read().map_err(db_errs(path))?;
    let meta = txn.open_table(META).map_err(db_errs(path))?;
    Ok(meta
        .get("seq")
        .map_err(db_errs(path))?
        .map_or(0, |v| v.value()))
}

/// [`db_err`] for `map_err`, whatever redb error type it maps.
pub(crate) fn db_errs<E: Into<redb::Error>>(path: &Path) -> impl Fn(E) -> Error + '_ {
    move |e| db_err(path, e)
}

/// Checks an index entry's checksum.
pub(crate) fn check_index(
    path: &Path,
    table: &str,
    a: u8,
    b: u64,
    id: &str,
    sum: u32,
) -> Result<()> {
    if index_crc(a, b, id) == sum {
        return Ok(());
    }
    Err(Error::Corrupt {
        path: path.to_path_buf(),
        reason: format!("{table} entry ({a}, {b}, {id:?}): checksum mismatch"),
    })
}

/// Maps a redb error: corruption it detects becomes [`Error::Corrupt`].
pub(crate) fn db_err(path: &Path, e: impl Into<redb::Error>) -> Error {
    match e.into() {
        redb::Error::Corrupted(reason) => Error::Corrupt {
            path: path.to_path_buf(),
            reason,
        },
        source => Error::Db {
            path: path.to_path_buf(),
            source: Box::new(source),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Destination, DestinationType, TaskSpec};

    fn task() -> Task {
        let spec = TaskSpec {
            id: "a".into(),
            source: "s".into(),
            destination: Destination::default(),
            dead_destination: None,
            max_retries: 0,
            base_delay: 1,
            first_delay: 0,
            client_id: String::new(),
            is_priority: false,
            message_data: "payload".into(),
            destination_type: DestinationType::Http,
            trace_parent: Default::default(),
        };
        Task::new(spec, 7)
    }

    #[test]
    fn every_flipped_byte_of_a_task_is_detected() {
        let p = Path::new("x.redb");
        let enc = encode_task(&task());
        assert_eq!(decode_task(p, "a", &enc).unwrap(), task());
        for i in 0..enc.len() {
            let mut bad = enc.clone();
            bad[i] ^= 0x10;
            let err = decode_task(p, "a", &bad).unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "byte {i}: {err}");
        }
        assert!(
            decode_task(p, "b", &enc).is_err(),
            "stored under another id"
        );
    }

    /// `crc · body` as a store writes it, whatever the body.
    fn stored(id: &str, body: &[u8]) -> Vec<u8> {
        let mut out = crc(&[id.as_bytes(), body]).to_le_bytes().to_vec();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn a_task_stored_as_json_before_the_binary_form_still_reads() {
        let p = Path::new("x.redb");
        let json = serde_json::to_vec(&task()).unwrap();
        assert_eq!(json[0], b'{');
        assert_eq!(decode_task(p, "a", &stored("a", &json)).unwrap(), task());
        assert_eq!(encode_task(&task())[4], codec::BINARY);
    }

    /// A body that passes the checksum but does not read (a newer format,
    /// or a bug) is damage naming the task and what failed, not a panic.
    #[test]
    fn a_body_that_does_not_read_is_reported_with_the_task() {
        let p = Path::new("x.redb");
        let enc = encode_task(&task());
        for body in [&enc[4..enc.len() - 1], &[9u8, 1, 2][..], &b"{\"spec\":"[..]] {
            match decode_task(p, "a", &stored("a", body)).unwrap_err() {
                Error::Corrupt { path, reason } => {
                    assert_eq!(path, p);
                    assert!(reason.starts_with("task \"a\": "), "{reason}");
                }
                e => panic!("not damage: {e}"),
            }
        }
    }

    #[test]
    fn leases_round_trip_and_detect_damage() {
        let p = Path::new("x.redb");
        let l = Lease {
            until_ms: 5,
            token: 9,
        };
        let mut enc = encode_lease("a", l);
        assert_eq!(decode_lease(p, "a", &enc).unwrap(), l);
        enc[13] ^= 1;
        assert!(decode_lease(p, "a", &enc).is_err());
    }
}
