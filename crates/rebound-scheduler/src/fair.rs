//! Dispatch order within a claimed batch: priority tasks first, then
//! round-robin across `client_id`s so one client's backlog cannot starve the
//! others. Within a client the claim order (due time) is kept.

use std::collections::VecDeque;

use crate::store::Claimed;

/// Reorders a claimed batch fairly.
pub fn order(batch: Vec<Claimed>) -> Vec<Claimed> {
    let (prio, normal): (Vec<_>, Vec<_>) = batch.into_iter().partition(|c| c.task.spec.is_priority);
    let mut out = round_robin(prio);
    out.extend(round_robin(normal));
    out
}

fn round_robin(batch: Vec<Claimed>) -> Vec<Claimed> {
    let n = batch.len();
    let mut lanes: Vec<(String, VecDeque<Claimed>)> = Vec::new();
    for c in batch {
        match lanes.iter_mut().find(|(k, _)| *k == c.task.spec.client_id) {
            Some((_, q)) => q.push_back(c),
            None => lanes.push((c.task.spec.client_id.clone(), VecDeque::from([c]))),
        }
    }
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        for (_, q) in lanes.iter_mut() {
            if let Some(c) = q.pop_front() {
                out.push(c);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::{Destination, DestinationType, Task, TaskSpec};

    fn claimed(id: &str, client: &str, prio: bool) -> Claimed {
        let spec = TaskSpec {
            id: id.into(),
            source: "s".into(),
            destination: Destination::default(),
            dead_destination: None,
            max_retries: 0,
            base_delay: 1,
            first_delay: 1,
            client_id: client.into(),
            is_priority: prio,
            message_data: String::new(),
            destination_type: DestinationType::Http,
            trace_parent: Default::default(),
        };
        Claimed {
            task: Task::new(spec, 0),
            token: String::new(),
        }
    }

    #[test]
    fn priority_first_then_round_robin() {
        let batch = vec![
            claimed("a1", "a", false),
            claimed("a2", "a", false),
            claimed("a3", "a", false),
            claimed("b1", "b", false),
            claimed("p1", "a", true),
            claimed("c1", "c", false),
        ];
        let ids: Vec<String> = order(batch).into_iter().map(|c| c.task.spec.id).collect();
        assert_eq!(ids, ["p1", "a1", "b1", "c1", "a2", "a3"]);
    }
}
