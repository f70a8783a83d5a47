//! What one group of operations changed in the tables: the payload of its
//! redo-log record ([`super::record`] frames it on disk).
//!
//! Every table write of the store goes through the `Tx` methods here, which
//! make the change and append it to the transaction's redo buffer: a group's
//! record is the exact list of puts and deletes it made (physical redo), so
//! replaying it after a crash reproduces the state whatever the code that
//! decided those changes. Index checksums are not logged: they are computed
//! again from the key on replay.

use std::path::Path;

use redb::{ReadableTable, Table, WriteTransaction};

use super::tables::{
    db_err, index_crc, DUE, EXPIRY, EXPIRY_TAG, FINISHED, FINISHED_TAG, LEASES, META, TASKS,
};
use crate::error::{Error, Result};

const TASK_PUT: u8 = 1;
const TASK_DEL: u8 = 2;
const DUE_PUT: u8 = 3;
const DUE_DEL: u8 = 4;
const LEASE_PUT: u8 = 5;
const LEASE_DEL: u8 = 6;
const EXPIRY_PUT: u8 = 7;
const EXPIRY_DEL: u8 = 8;
const FINISHED_PUT: u8 = 9;
const FINISHED_DEL: u8 = 10;

/// The two indexes keyed `(at, id)`.
#[derive(Debug, Clone, Copy)]
pub(super) enum AtIndex {
    /// Leases by expiry.
    Expiry,
    /// Final tasks by last change (retention).
    Finished,
}

impl AtIndex {
    fn tag(self, put: bool) -> u8 {
        match (self, put) {
            (AtIndex::Expiry, true) => EXPIRY_PUT,
            (AtIndex::Expiry, false) => EXPIRY_DEL,
            (AtIndex::Finished, true) => FINISHED_PUT,
            (AtIndex::Finished, false) => FINISHED_DEL,
        }
    }
}

/// The open tables of one write transaction.
/// The tables are private to this module: other modules read them through
/// the accessors and change them only through the logging writes below, so
/// no change can miss the redo log.
pub(crate) struct Tx<'t> {
    pub(super) path: &'t Path,
    tasks: Table<'t, &'static str, &'static [u8]>,
    due: Table<'t, (u8, u64, &'static str), u32>,
    leases: Table<'t, &'static str, &'static [u8]>,
    expiry: Table<'t, (u64, &'static str), u32>,
    finished: Table<'t, (u64, &'static str), u32>,
    meta: Table<'t, &'static str, u64>,
    /// The changes of the current group, for the redo log.
    redo: Vec<u8>,
}

impl<'t> Tx<'t> {
    pub(crate) fn open(path: &'t Path, txn: &'t WriteTransaction) -> Result<Self> {
        let e = |e| db_err(path, e);
        Ok(Tx {
            path,
            tasks: txn.open_table(TASKS).map_err(e)?,
            due: txn.open_table(DUE).map_err(e)?,
            leases: txn.open_table(LEASES).map_err(e)?,
            expiry: txn.open_table(EXPIRY).map_err(e)?,
            finished: txn.open_table(FINISHED).map_err(e)?,
            meta: txn.open_table(META).map_err(e)?,
            redo: Vec::new(),
        })
    }

    /// The tables, for reading.
    pub(super) fn tasks(&self) -> &Table<'t, &'static str, &'static [u8]> {
        &self.tasks
    }
    pub(super) fn due(&self) -> &Table<'t, (u8, u64, &'static str), u32> {
        &self.due
    }
    pub(super) fn leases(&self) -> &Table<'t, &'static str, &'static [u8]> {
        &self.leases
    }
    pub(super) fn expiry(&self) -> &Table<'t, (u64, &'static str), u32> {
        &self.expiry
    }
    pub(super) fn finished(&self) -> &Table<'t, (u64, &'static str), u32> {
        &self.finished
    }

    /// Where the redo buffer is now, for [`Tx::task_put_undo`].
    pub(super) fn redo_mark(&self) -> usize {
        self.redo.len()
    }
}

/// One table change, as a group's redo record lists it. Encoded and
/// decoded here, and made in the tables by [`Tx::make`] both when a group
/// is applied (logged) and when its record is replayed after a crash.
#[derive(Debug, Clone, Copy)]
enum Change<'a> {
    TaskPut(&'a str, &'a [u8]),
    TaskDel(&'a str),
    DuePut((u8, u64, &'a str)),
    DueDel((u8, u64, &'a str)),
    /// The lease's 20 stored bytes.
    LeasePut(&'a str, &'a [u8]),
    LeaseDel(&'a str),
    /// An `(at, id)` index entry put (`true`) or deleted.
    At(AtIndex, bool, u64, &'a str),
}

impl<'a> Change<'a> {
    fn encode(&self, buf: &mut Vec<u8>) {
        let put_id = |buf: &mut Vec<u8>, tag: u8, id: &str| {
            buf.push(tag);
            buf.extend_from_slice(&(id.len() as u32).to_le_bytes());
            buf.extend_from_slice(id.as_bytes());
        };
        match *self {
            Change::TaskPut(id, v) => {
                put_id(buf, TASK_PUT, id);
                buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
                buf.extend_from_slice(v);
            }
            Change::TaskDel(id) => put_id(buf, TASK_DEL, id),
            Change::DuePut((r, at, id)) | Change::DueDel((r, at, id)) => {
                let tag = if matches!(self, Change::DuePut(_)) {
                    DUE_PUT
                } else {
                    DUE_DEL
                };
                put_id(buf, tag, id);
                buf.push(r);
                buf.extend_from_slice(&at.to_le_bytes());
            }
            Change::LeasePut(id, v) => {
                put_id(buf, LEASE_PUT, id);
                buf.extend_from_slice(v);
            }
            Change::LeaseDel(id) => put_id(buf, LEASE_DEL, id),
            Change::At(index, put, at, id) => {
                put_id(buf, index.tag(put), id);
                buf.extend_from_slice(&at.to_le_bytes());
            }
        }
    }

    /// The next change of a payload; `Err` describes a malformed one.
    fn decode(c: &mut Cursor<'a>) -> std::result::Result<Change<'a>, String> {
        let Some((tag, id)) = c.tag_id() else {
            return Err(format!("entry at byte {} cut short", c.at));
        };
        Ok(match tag {
            TASK_PUT => Change::TaskPut(
                id,
                c.bytes().ok_or_else(|| format!("task {id:?} cut short"))?,
            ),
            TASK_DEL => Change::TaskDel(id),
            DUE_PUT | DUE_DEL => {
                let (Some(r), Some(at)) = (c.u8(), c.u64()) else {
                    return Err(format!("due entry of {id:?} cut short"));
                };
                if tag == DUE_PUT {
                    Change::DuePut((r, at, id))
                } else {
                    Change::DueDel((r, at, id))
                }
            }
            LEASE_PUT => Change::LeasePut(
                id,
                c.take(20)
                    .ok_or_else(|| format!("lease of {id:?} cut short"))?,
            ),
            LEASE_DEL => Change::LeaseDel(id),
            EXPIRY_PUT | EXPIRY_DEL | FINISHED_PUT | FINISHED_DEL => {
                let at = c
                    .u64()
                    .ok_or_else(|| format!("index entry of {id:?} cut short"))?;
                let index = if tag <= EXPIRY_DEL {
                    AtIndex::Expiry
                } else {
                    AtIndex::Finished
                };
                Change::At(index, tag == EXPIRY_PUT || tag == FINISHED_PUT, at, id)
            }
            t => return Err(format!("unknown entry kind {t} at byte {}", c.at)),
        })
    }
}

impl Tx<'_> {
    fn e(&self) -> impl Fn(redb::StorageError) -> Error + '_ {
        |e| db_err(self.path, e)
    }

    /// Makes `c` in the tables (index checksums computed from the key);
    /// a task put returns the bytes it replaced.
    fn make(&mut self, c: Change<'_>) -> std::result::Result<Option<Vec<u8>>, redb::StorageError> {
        match c {
            Change::TaskPut(id, v) => {
                return Ok(self.tasks.insert(id, v)?.map(|o| o.value().to_vec()));
            }
            Change::TaskDel(id) => drop(self.tasks.remove(id)?),
            Change::DuePut((r, at, id)) => {
                drop(self.due.insert((r, at, id), index_crc(r, at, id))?)
            }
            Change::DueDel(key) => drop(self.due.remove(key)?),
            Change::LeasePut(id, v) => drop(self.leases.insert(id, v)?),
            Change::LeaseDel(id) => drop(self.leases.remove(id)?),
            Change::At(index, put, at, id) => {
                let (table, sum_tag) = match index {
                    AtIndex::Expiry => (&mut self.expiry, EXPIRY_TAG),
                    AtIndex::Finished => (&mut self.finished, FINISHED_TAG),
                };
                if put {
                    table.insert((at, id), index_crc(sum_tag, at, id))?;
                } else {
                    table.remove((at, id))?;
                }
            }
        }
        Ok(None)
    }

    /// Appends `c` to the group's redo payload and makes it.
    fn log(&mut self, c: Change<'_>) -> Result<Option<Vec<u8>>> {
        c.encode(&mut self.redo);
        self.make(c).map_err(|e| db_err(self.path, e))
    }

    /// Puts a task's stored bytes; returns what it replaced.
    pub(super) fn task_put(&mut self, id: &str, v: &[u8]) -> Result<Option<Vec<u8>>> {
        self.log(Change::TaskPut(id, v))
    }

    /// Undoes the [`Tx::task_put`] made when the redo buffer was `mark`
    /// long (its entry goes too: the group changed nothing there).
    pub(super) fn task_put_undo(&mut self, mark: usize, id: &str, old: &[u8]) -> Result<()> {
        self.redo.truncate(mark);
        self.make(Change::TaskPut(id, old)).map_err(self.e())?;
        Ok(())
    }

    pub(super) fn task_del(&mut self, id: &str) -> Result<()> {
        self.log(Change::TaskDel(id)).map(drop)
    }

    pub(super) fn due_put(&mut self, key: (u8, u64, &str)) -> Result<()> {
        self.log(Change::DuePut(key)).map(drop)
    }

    pub(super) fn due_del(&mut self, key: (u8, u64, &str)) -> Result<()> {
        self.log(Change::DueDel(key)).map(drop)
    }

    pub(super) fn lease_put(&mut self, id: &str, v: &[u8; 20]) -> Result<()> {
        self.log(Change::LeasePut(id, v)).map(drop)
    }

    pub(super) fn lease_del(&mut self, id: &str) -> Result<()> {
        self.log(Change::LeaseDel(id)).map(drop)
    }

    /// Puts (`put`) or deletes an entry of the `expiry` or `finished` index.
    pub(super) fn at_set(&mut self, index: AtIndex, put: bool, at: u64, id: &str) -> Result<()> {
        self.log(Change::At(index, put, at, id)).map(drop)
    }

    /// The changes made since the last call: one group's redo payload.
    pub(crate) fn take_redo(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.redo)
    }

    /// Applies a logged payload again (at open, after a crash). `Err` is a
    /// description of a malformed payload.
    pub(crate) fn replay(&mut self, payload: &[u8]) -> Result<std::result::Result<(), String>> {
        let mut c = Cursor { b: payload, at: 0 };
        while c.at < payload.len() {
            match Change::decode(&mut c) {
                Ok(change) => drop(self.make(change).map_err(self.e())?),
                Err(why) => return Ok(Err(why)),
            }
        }
        Ok(Ok(()))
    }

    /// The sequence number of the last group in the committed state.
    pub(crate) fn applied_seq(&self) -> Result<u64> {
        Ok(self
            .meta
            .get("seq")
            .map_err(self.e())?
            .map_or(0, |v| v.value()))
    }

    pub(crate) fn set_applied_seq(&mut self, seq: u64) -> Result<()> {
        self.meta
            .insert("seq", seq)
            .map_err(|e| db_err(self.path, e))?;
        Ok(())
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn tag_id(&mut self) -> Option<(u8, &'a str)> {
        let tag = self.u8()?;
        let id = std::str::from_utf8(self.bytes()?).ok()?;
        Some((tag, id))
    }
}
