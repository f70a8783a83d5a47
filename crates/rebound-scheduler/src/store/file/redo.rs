//! What one group of operations changed in the tables: the payload of its
//! redo-log record ([`super::record`] frames it on disk).
//!
//! Every table write of the store goes through the `Tx` methods here, which
//! make the change in the active memtable and append it to the group's redo
//! buffer: a group's record is the exact list of puts and deletes it made
//! (physical redo), so replaying it after a crash reproduces the state
//! whatever the code that decided those changes. Index checksums are not
//! logged: they are computed from the key when written to redb.

use super::memtable::Memtable;
use super::view::Tx;

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
pub(crate) enum AtIndex {
    /// Leases by expiry.
    Expiry,
    /// Final tasks by last change (retention).
    Finished,
}

impl AtIndex {
    /// Its slot in [`super::memtable::Memtable::floors`] (after the due
    /// index's two ranks).
    pub(crate) fn slot(self) -> usize {
        match self {
            AtIndex::Expiry => 2,
            AtIndex::Finished => 3,
        }
    }

    fn tag(self, put: bool) -> u8 {
        match (self, put) {
            (AtIndex::Expiry, true) => EXPIRY_PUT,
            (AtIndex::Expiry, false) => EXPIRY_DEL,
            (AtIndex::Finished, true) => FINISHED_PUT,
            (AtIndex::Finished, false) => FINISHED_DEL,
        }
    }
}

/// One table change, as a group's redo record lists it. Encoded and
/// decoded here, and made in a memtable by [`Memtable::apply`] both when a
/// group is applied (logged) and when its record is replayed after a crash.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
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
    /// Appends `c` to the group's redo payload and makes it in the active
    /// memtable.
    fn log(&mut self, c: Change<'_>) {
        c.encode(&mut self.redo);
        self.active.apply(c);
    }

    pub(super) fn task_put(&mut self, id: &str, v: &[u8]) {
        self.log(Change::TaskPut(id, v))
    }

    pub(super) fn task_del(&mut self, id: &str) {
        self.log(Change::TaskDel(id))
    }

    pub(super) fn due_put(&mut self, key: (u8, u64, &str)) {
        self.log(Change::DuePut(key))
    }

    pub(super) fn due_del(&mut self, key: (u8, u64, &str)) {
        self.log(Change::DueDel(key))
    }

    pub(super) fn lease_put(&mut self, id: &str, v: &[u8; 20]) {
        self.log(Change::LeasePut(id, v))
    }

    pub(super) fn lease_del(&mut self, id: &str) {
        self.log(Change::LeaseDel(id))
    }

    /// Puts (`put`) or deletes an entry of the `expiry` or `finished` index.
    pub(super) fn at_set(&mut self, index: AtIndex, put: bool, at: u64, id: &str) {
        self.log(Change::At(index, put, at, id))
    }

    /// The changes made since the last call: one group's redo payload.
    pub(crate) fn take_redo(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.redo)
    }
}

/// Applies a logged payload to `mem` again (at open, after a crash). `Err`
/// describes a malformed payload.
pub(crate) fn replay(payload: &[u8], mem: &mut Memtable) -> std::result::Result<(), String> {
    let mut c = Cursor { b: payload, at: 0 };
    while c.at < payload.len() {
        mem.apply(Change::decode(&mut c)?);
    }
    Ok(())
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
