//! A batch's changes taken apart from the next batch's, for at-least-once
//! pipelining: while batch N waits for its acknowledgements, batch N+1 is
//! processed on the same cache.
//!
//! [`Task::seal`] copies N's dirty entries out (its changelog is sent from
//! that copy) and marks them clean, so N+1 starts an empty dirty set; the
//! values stay cached, so N+1 reads them although the file does not hold
//! them yet. [`Task::persist_sealed`] writes the copy once N is
//! acknowledged. It must run before the next `seal`: it may empty the
//! cache of clean entries, and only then is every clean entry in the file.

use super::{write, Row, Task, CACHE_ENTRIES};
use crate::error::Result;

/// One batch's changes: by store id, each changed key's value (`None`:
/// deleted) and the input offset that changed it last.
#[derive(Debug, Default)]
pub(crate) struct Sealed {
    pub stores: Vec<Vec<SealedEntry>>,
}

/// Key, value (`None`: deleted), tag.
pub(crate) type SealedEntry = (Vec<u8>, Option<Vec<u8>>, i64);

impl Task {
    /// Takes the dirty entries out as one batch's changes; they stay cached, clean.
    pub fn seal(&mut self) -> Sealed {
        let stores = self
            .stores
            .iter_mut()
            .map(|s| match s {
                Some(s) if s.dirty > 0 => {
                    let mut rows = Vec::with_capacity(s.dirty);
                    for (k, slot) in s.entries.iter_mut() {
                        if let Some(tag) = slot.tag.take() {
                            rows.push((k.clone(), slot.value.clone(), tag));
                        }
                    }
                    s.dirty = 0;
                    rows
                }
                _ => Vec::new(),
            })
            .collect();
        Sealed { stores }
    }

    /// Writes a sealed batch, `checkpoint` and the changelog positions in
    /// one transaction (see [`Task::persist`]); the changes of the batch
    /// being built stay dirty in the cache.
    pub fn persist_sealed(
        &mut self,
        sealed: &Sealed,
        checkpoint: i64,
        changelog_next: &[(usize, i64)],
    ) -> Result<()> {
        let rows: Vec<Vec<Row<'_>>> = sealed
            .stores
            .iter()
            .map(|rows| {
                rows.iter()
                    .map(|(k, v, _)| (k.as_slice(), v.as_deref()))
                    .collect()
            })
            .collect();
        let sync = write(
            self.file.as_ref(),
            &self.synced,
            checkpoint,
            &self.stores,
            changelog_next,
            &rows,
        )?;
        self.written(checkpoint, changelog_next, sync);
        for s in self.stores.iter_mut().flatten() {
            if s.entries.len() > CACHE_ENTRIES {
                s.entries.retain(|_, slot| slot.tag.is_some());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_batch_is_written_with_its_own_values_and_the_next_stays_dirty() {
        let dir =
            std::env::temp_dir().join(format!("rebound-stream-seal-{}", rand::random::<u64>()));
        let path = dir.join("state.redb");
        let owned = vec![(0, "counts".to_string(), "app-counts-changelog".to_string())];
        let mut t = Task::open(0, path.clone(), &owned, 1).unwrap();
        t.put(0, b"a".to_vec(), Some(vec![1]), 10);
        t.put(0, b"b".to_vec(), Some(vec![1]), 11);
        let n = t.seal();
        assert_eq!(n.stores[0].len(), 2);
        assert_eq!(t.stores[0].as_ref().unwrap().dirty_count(), 0);
        // Batch N+1 changes `a` again before N is written.
        let v = t.get(0, b"a").unwrap().map(<[u8]>::to_vec);
        assert_eq!(v, Some(vec![1]), "N's value is read from the cache");
        t.put(0, b"a".to_vec(), Some(vec![2]), 12);
        t.persist_sealed(&n, 12, &[(0, 2)]).unwrap();
        let dirty: Vec<_> = t.stores[0]
            .as_ref()
            .unwrap()
            .dirty()
            .map(|(k, v, tag)| (k.to_vec(), v.map(<[u8]>::to_vec), tag))
            .collect();
        assert_eq!(
            dirty,
            vec![(b"a".to_vec(), Some(vec![2]), 12)],
            "N+1's change is still dirty"
        );
        drop(t);
        // The file holds N: a's value of batch N, N's checkpoint.
        let mut t = Task::open(0, path, &owned, 1).unwrap();
        assert_eq!(
            (t.checkpoint, t.stores[0].as_ref().unwrap().changelog_next),
            (12, 2)
        );
        assert_eq!(t.get(0, b"a").unwrap(), Some(&[1u8][..]));
        assert_eq!(t.get(0, b"b").unwrap(), Some(&[1u8][..]));
        drop(t);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
