//! Consumer groups as the coordinator describes them: state, members and
//! what each member is assigned (decoded from the consumer protocol).

use anyhow::Context;
use rdkafka::consumer::Consumer;

use crate::cluster::Cluster;

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// Its `client.id`.
    pub client_id: String,
    /// The host it connected from.
    pub host: String,
    /// `topic` → partitions it is assigned.
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// A group, its state and members.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    /// The group id.
    pub group: String,
    /// `Stable`, `Empty`, `PreparingRebalance`, `Dead`, ...
    pub state: String,
    /// `consumer` for Kafka consumers (empty for a group that only commits).
    pub protocol_type: String,
    /// Its members.
    pub members: Vec<Member>,
}

/// Every group (or the one named), by id. Blocking.
pub fn groups(cluster: &Cluster, only: Option<&str>) -> anyhow::Result<Vec<Group>> {
    let c = cluster.consumer("rebound-group")?;
    let list = c
        .fetch_group_list(only, cluster.timeout)
        .with_context(|| format!("could not list the groups of {}", cluster.brokers))?;
    let mut out: Vec<Group> = list
        .groups()
        .iter()
        .map(|g| Group {
            group: g.name().to_string(),
            state: g.state().to_string(),
            protocol_type: g.protocol_type().to_string(),
            members: g
                .members()
                .iter()
                .map(|m| Member {
                    member_id: m.id().to_string(),
                    client_id: m.client_id().to_string(),
                    host: m.client_host().to_string(),
                    assignment: m.assignment().map(decode_assignment).unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    out.sort_by(|a, b| a.group.cmp(&b.group));
    Ok(out)
}

/// The consumer protocol's assignment: version (i16), then topics (i32
/// count; each an i16-length name and an i32 count of i32 partitions),
/// then user data. Anything unreadable gives what was read so far.
fn decode_assignment(bytes: &[u8]) -> Vec<(String, Vec<i32>)> {
    let mut r = Reader(bytes);
    let mut out = Vec::new();
    let _version = r.i16();
    let topics = r.i32().unwrap_or(0);
    for _ in 0..topics.max(0) {
        let Some(len) = r.i16() else { break };
        let Some(name) = r.take(len.max(0) as usize) else {
            break;
        };
        let name = String::from_utf8_lossy(name).into_owned();
        let count = r.i32().unwrap_or(0);
        let partitions: Vec<i32> = (0..count.max(0)).map_while(|_| r.i32()).collect();
        out.push((name, partitions));
    }
    out
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn i16(&mut self) -> Option<i16> {
        self.take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Option<i32> {
        self.take(4)
            .map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_a_consumer_protocol_assignment() {
        let mut b = vec![0, 1, 0, 0, 0, 2];
        for (name, parts) in [("orders", vec![0i32, 2]), ("t", vec![])] {
            b.extend((name.len() as i16).to_be_bytes());
            b.extend(name.as_bytes());
            b.extend((parts.len() as i32).to_be_bytes());
            for p in parts {
                b.extend(p.to_be_bytes());
            }
        }
        b.extend([0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            decode_assignment(&b),
            vec![
                ("orders".to_string(), vec![0, 2]),
                ("t".to_string(), vec![])
            ]
        );
        assert_eq!(decode_assignment(&b[..9]), Vec::<(String, Vec<i32>)>::new());
    }
}
