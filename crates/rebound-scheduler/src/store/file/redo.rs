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

fn put_id(buf: &mut Vec<u8>, tag: u8, id: &str) {
    buf.push(tag);
    buf.extend_from_slice(&(id.len() as u32).to_le_bytes());
    buf.extend_from_slice(id.as_bytes());
}

fn put_bytes(buf: &mut Vec<u8>, v: &[u8]) {
    buf.extend_from_slice(&(v.len() as u32).to_le_bytes());
    buf.extend_from_slice(v);
}

impl Tx<'_> {
    fn e(&self) -> impl Fn(redb::StorageError) -> Error + '_ {
        |e| db_err(self.path, e)
    }

    /// Puts a task's stored bytes; returns what it replaced.
    pub(super) fn task_put(&mut self, id: &str, v: &[u8]) -> Result<Option<Vec<u8>>> {
        put_id(&mut self.redo, TASK_PUT, id);
        put_bytes(&mut self.redo, v);
        let old = self.tasks.insert(id, v).map_err(|e| db_err(self.path, e))?;
        Ok(old.map(|o| o.value().to_vec()))
    }

    /// Undoes the [`Tx::task_put`] made when the redo buffer was `mark`
    /// long (its entry goes too: the group changed nothing there).
    pub(super) fn task_put_undo(&mut self, mark: usize, id: &str, old: &[u8]) -> Result<()> {
        self.redo.truncate(mark);
        self.tasks
            .insert(id, old)
            .map_err(|e| db_err(self.path, e))?;
        Ok(())
    }

    pub(super) fn task_del(&mut self, id: &str) -> Result<()> {
        put_id(&mut self.redo, TASK_DEL, id);
        self.tasks.remove(id).map_err(|e| db_err(self.path, e))?;
        Ok(())
    }

    pub(super) fn due_put(&mut self, (r, at, id): (u8, u64, &str)) -> Result<()> {
        put_id(&mut self.redo, DUE_PUT, id);
        self.redo.push(r);
        self.redo.extend_from_slice(&at.to_le_bytes());
        let v = index_crc(r, at, id);
        self.due
            .insert((r, at, id), v)
            .map_err(|e| db_err(self.path, e))?;
        Ok(())
    }

    pub(super) fn due_del(&mut self, (r, at, id): (u8, u64, &str)) -> Result<()> {
        put_id(&mut self.redo, DUE_DEL, id);
        self.redo.push(r);
        self.redo.extend_from_slice(&at.to_le_bytes());
        self.due
            .remove((r, at, id))
            .map_err(|e| db_err(self.path, e))?;
        Ok(())
    }

    pub(super) fn lease_put(&mut self, id: &str, v: &[u8; 20]) -> Result<()> {
        put_id(&mut self.redo, LEASE_PUT, id);
        self.redo.extend_from_slice(v);
        self.leases
            .insert(id, v.as_slice())
            .map_err(|e| db_err(self.path, e))?;
        Ok(())
    }

    pub(super) fn lease_del(&mut self, id: &str) -> Result<()> {
        put_id(&mut self.redo, LEASE_DEL, id);
        self.leases.remove(id).map_err(|e| db_err(self.path, e))?;
        Ok(())
    }

    /// Puts (`put`) or deletes an entry of the `expiry` or `finished` index.
    pub(super) fn at_set(&mut self, index: AtIndex, put: bool, at: u64, id: &str) -> Result<()> {
        put_id(&mut self.redo, index.tag(put), id);
        self.redo.extend_from_slice(&at.to_le_bytes());
        self.at_apply(index, put, at, id)
            .map_err(|e| db_err(self.path, e))
    }

    fn at_apply(
        &mut self,
        index: AtIndex,
        put: bool,
        at: u64,
        id: &str,
    ) -> std::result::Result<(), redb::StorageError> {
        let (table, sum_tag) = match index {
            AtIndex::Expiry => (&mut self.expiry, EXPIRY_TAG),
            AtIndex::Finished => (&mut self.finished, FINISHED_TAG),
        };
        if put {
            table.insert((at, id), index_crc(sum_tag, at, id))?;
        } else {
            table.remove((at, id))?;
        }
        Ok(())
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
            let Some((tag, id)) = c.tag_id() else {
                return Ok(Err(format!("entry at byte {} cut short", c.at)));
            };
            let done = match tag {
                TASK_PUT => match c.bytes() {
                    Some(v) => self.tasks.insert(id, v).map(|_| ()),
                    None => return Ok(Err(format!("task {id:?} cut short"))),
                },
                TASK_DEL => self.tasks.remove(id).map(|_| ()),
                DUE_PUT | DUE_DEL => {
                    let (Some(r), Some(at)) = (c.u8(), c.u64()) else {
                        return Ok(Err(format!("due entry of {id:?} cut short")));
                    };
                    if tag == DUE_PUT {
                        self.due
                            .insert((r, at, id), index_crc(r, at, id))
                            .map(|_| ())
                    } else {
                        self.due.remove((r, at, id)).map(|_| ())
                    }
                }
                LEASE_PUT => match c.take(20) {
                    Some(v) => self.leases.insert(id, v).map(|_| ()),
                    None => return Ok(Err(format!("lease of {id:?} cut short"))),
                },
                LEASE_DEL => self.leases.remove(id).map(|_| ()),
                EXPIRY_PUT | EXPIRY_DEL | FINISHED_PUT | FINISHED_DEL => {
                    let Some(at) = c.u64() else {
                        return Ok(Err(format!("index entry of {id:?} cut short")));
                    };
                    let index = if tag <= EXPIRY_DEL {
                        AtIndex::Expiry
                    } else {
                        AtIndex::Finished
                    };
                    let put = tag == EXPIRY_PUT || tag == FINISHED_PUT;
                    self.at_apply(index, put, at, id)
                }
                t => return Ok(Err(format!("unknown entry kind {t} at byte {}", c.at))),
            };
            done.map_err(self.e())?;
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
