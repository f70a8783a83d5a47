//! Writing one commit to a partition's file: its changed entries, the
//! checkpoint and the changelog positions in one redb transaction.

use std::path::PathBuf;
use std::time::Instant;

use redb::Database;

use super::db::{store_table, OrDb, META};
use super::{Store, SYNC_EVERY};
use crate::error::Result;

/// A row to write: key, value (`None` deletes it).
pub(super) type Row<'a> = (&'a [u8], Option<&'a [u8]>);

/// Writes `entries` (key, value; `None` deletes) by store id, the
/// checkpoint and the changelog positions (those in `changelog_next`,
/// the stores' current ones otherwise) in one transaction; durable when
/// [`SYNC_EVERY`] has passed since `synced`. Returns whether it synced.
pub(super) fn write(
    file: Option<&(Database, PathBuf)>,
    synced: &Instant,
    checkpoint: i64,
    stores: &[Option<Store>],
    changelog_next: &[(usize, i64)],
    entries: &[Vec<Row<'_>>],
) -> Result<bool> {
    let Some((db, path)) = file else {
        return Ok(false);
    };
    let file: &std::path::Path = path;
    let mut txn = db.begin_write().or_db(file)?;
    let sync = synced.elapsed() >= SYNC_EVERY;
    if !sync {
        txn.set_durability(redb::Durability::None).or_db(file)?;
    }
    {
        let mut meta = txn.open_table(META).or_db(file)?;
        meta.insert("checkpoint", checkpoint).or_db(file)?;
        for (id, s) in stores.iter().enumerate() {
            let Some(s) = s else { continue };
            let next = changelog_next
                .iter()
                .find(|(i, _)| *i == id)
                .map_or(s.changelog_next, |(_, n)| *n);
            let key = format!("changelog:{}", s.name);
            meta.insert(key.as_str(), next).or_db(file)?;
            let Some(rows) = entries.get(id).filter(|r| !r.is_empty()) else {
                continue;
            };
            let mut table = txn.open_table(store_table(&s.name)).or_db(file)?;
            for (k, v) in rows {
                match v {
                    Some(v) => table.insert(*k, *v).map(drop),
                    None => table.remove(*k).map(drop),
                }
                .or_db(file)?;
            }
        }
    }
    txn.commit().or_db(file)?;
    Ok(sync)
}
