//! Retry-tier records wait in their partition's `held` queue, neither
//! started nor committed, until their `rebound.due` time.

use rebound_core::Record;

use super::Dispatcher;

impl Dispatcher {
    /// Moves held retry-tier records whose due time has come into their
    /// lanes. Returns the earliest due time still waiting (epoch ms).
    pub fn release_due(&mut self) -> Option<i64> {
        if self.held == 0 {
            return None;
        }
        let now = (self.clock)();
        let mut next: Option<i64> = None;
        for slot in 0..self.parts.len() {
            let Some(p) = self.parts[slot].as_mut() else {
                continue;
            };
            let mut moved = false;
            while let Some((due, _)) = p.held.front() {
                if *due > now {
                    next = Some(next.map_or(*due, |n| n.min(*due)));
                    break;
                }
                let (_, item) = p.held.pop_front().expect("front exists");
                p.lanes.push(item);
                self.held -= 1;
                moved = true;
            }
            if moved {
                self.refresh(slot);
            }
        }
        next
    }
}

/// The `rebound.due` time of a record; missing or unreadable means now.
pub(super) fn due_of(rec: &Record) -> i64 {
    rebound_core::Provenance::due(rec).unwrap_or(0)
}
