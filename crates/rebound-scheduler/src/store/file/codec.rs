//! The binary form of a stored task (the `tasks` table and the redo log).
//!
//! JSON spelled every field name in every task: a task with a 100-byte
//! payload took about 450 bytes, and writing those into redb was most of a
//! checkpoint's cost. This form holds the values only, in a fixed order:
//! about half the bytes, and no escaping or number formatting.
//!
//! A value starts with its format byte: [`BINARY`] for this form, `{` for
//! the JSON of stores written before it, which still reads. Strings are a
//! length (LEB128) and UTF-8; integers are little-endian, `u32` and `u64`
//! at their size; an `Option` is a presence byte (0 or 1), then the value.
//!
//! | field | form |
//! |---|---|
//! | spec: id, source | string, string |
//! | destination | host, port, topic, url: four strings |
//! | dead_destination | option of the four strings |
//! | max_retries, base_delay, first_delay | `u32` each |
//! | client_id | string |
//! | flags | bit 0: is_priority; bit 1: Kafka destination (else HTTP) |
//! | message_data | string |
//! | trace_parent | option of a string |
//! | state | 0 scheduled, 1 delivering, 2 delivered, 3 dead, 4 cancelled |
//! | attempts | `u32` |
//! | created_at_ms | `u64` |
//! | next_due_ms | option of a `u64` |
//! | last_error | option of a string |
//! | updated_at_ms | `u64` |

use crate::task::{Destination, DestinationType, Task, TaskSpec, TaskState, TraceParent};

/// Format byte of this form.
pub(crate) const BINARY: u8 = 1;

const PRIORITY: u8 = 1;
const KAFKA: u8 = 2;

const STATES: [TaskState; 5] = [
    TaskState::Scheduled,
    TaskState::Delivering,
    TaskState::Delivered,
    TaskState::Dead,
    TaskState::Cancelled,
];

/// Appends `t` in the binary form, format byte first.
pub(crate) fn encode(t: &Task, out: &mut Vec<u8>) {
    let s = &t.spec;
    out.push(BINARY);
    string(out, &s.id);
    string(out, &s.source);
    destination(out, &s.destination);
    option(out, s.dead_destination.as_ref(), destination);
    for n in [s.max_retries, s.base_delay, s.first_delay] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    string(out, &s.client_id);
    let kafka = matches!(s.destination_type, DestinationType::Kafka);
    out.push(if s.is_priority { PRIORITY } else { 0 } | if kafka { KAFKA } else { 0 });
    string(out, &s.message_data);
    option(out, s.trace_parent.0.as_deref(), string);
    let state = STATES.iter().position(|x| *x == t.state);
    out.push(state.expect("every state is listed") as u8);
    out.extend_from_slice(&t.attempts.to_le_bytes());
    out.extend_from_slice(&t.created_at_ms.to_le_bytes());
    option(out, t.next_due_ms, |out, n| {
        out.extend_from_slice(&n.to_le_bytes())
    });
    option(out, t.last_error.as_deref(), string);
    out.extend_from_slice(&t.updated_at_ms.to_le_bytes());
}

fn string(out: &mut Vec<u8>, s: &str) {
    let mut n = s.len();
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(s.as_bytes());
}

fn destination(out: &mut Vec<u8>, d: &Destination) {
    for s in [&d.host, &d.port, &d.topic, &d.url] {
        string(out, s);
    }
}

fn option<T>(out: &mut Vec<u8>, v: Option<T>, put: impl FnOnce(&mut Vec<u8>, T)) {
    match v {
        Some(v) => {
            out.push(1);
            put(out, v);
        }
        None => out.push(0),
    }
}

/// Reads a task in the binary form, format byte first. The error says
/// what could not be read, and at which byte.
pub(crate) fn decode(bytes: &[u8]) -> Result<Task, String> {
    let mut r = Reader { bytes, at: 0 };
    let format = r.u8("format")?;
    if format != BINARY {
        return Err(format!("unknown task format {format:#04x}"));
    }
    let id = r.string("id")?;
    let source = r.string("source")?;
    let destination = r.destination("destination")?;
    let dead_destination = r.option("dead_destination", |r| r.destination("dead_destination"))?;
    let max_retries = r.u32("max_retries")?;
    let base_delay = r.u32("base_delay")?;
    let first_delay = r.u32("first_delay")?;
    let client_id = r.string("client_id")?;
    let flags = r.u8("flags")?;
    if flags & !(PRIORITY | KAFKA) != 0 {
        return Err(format!("flags {flags:#04x} at byte {}", r.at - 1));
    }
    let message_data = r.string("message_data")?;
    let trace_parent = TraceParent(r.option("trace_parent", |r| r.string("trace_parent"))?);
    let state = r.u8("state")?;
    let state = *STATES
        .get(state as usize)
        .ok_or_else(|| format!("state {state} at byte {}", r.at - 1))?;
    let attempts = r.u32("attempts")?;
    let created_at_ms = r.u64("created_at_ms")?;
    let next_due_ms = r.option("next_due_ms", |r| r.u64("next_due_ms"))?;
    let last_error = r.option("last_error", |r| r.string("last_error"))?;
    let updated_at_ms = r.u64("updated_at_ms")?;
    if r.at != bytes.len() {
        return Err(format!(
            "bytes left over after the task: {}, from byte {}",
            bytes.len() - r.at,
            r.at
        ));
    }
    let destination_type = if flags & KAFKA != 0 {
        DestinationType::Kafka
    } else {
        DestinationType::Http
    };
    Ok(Task {
        spec: TaskSpec {
            id,
            source,
            destination,
            dead_destination,
            max_retries,
            base_delay,
            first_delay,
            client_id,
            is_priority: flags & PRIORITY != 0,
            message_data,
            destination_type,
            trace_parent,
        },
        state,
        attempts,
        created_at_ms,
        next_due_ms,
        last_error,
        updated_at_ms,
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, field: &str) -> Result<&[u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.bytes.len());
        let end = end.ok_or_else(|| {
            format!(
                "{field}: {n} bytes wanted at byte {}, {} left",
                self.at,
                self.bytes.len() - self.at
            )
        })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u8(&mut self, field: &str) -> Result<u8, String> {
        Ok(self.take(1, field)?[0])
    }

    fn u32(&mut self, field: &str) -> Result<u32, String> {
        let b = self.take(4, field)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }

    fn u64(&mut self, field: &str) -> Result<u64, String> {
        let b = self.take(8, field)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }

    fn string(&mut self, field: &str) -> Result<String, String> {
        let start = self.at;
        let mut len = 0usize;
        for shift in (0..64).step_by(7) {
            let b = self.u8(field)?;
            len |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                let bytes = self.take(len, field)?.to_vec();
                return String::from_utf8(bytes)
                    .map_err(|e| format!("{field} at byte {start}: {e}"));
            }
        }
        Err(format!("{field}: length at byte {start} does not end"))
    }

    fn destination(&mut self, field: &str) -> Result<Destination, String> {
        Ok(Destination {
            host: self.string(field)?,
            port: self.string(field)?,
            topic: self.string(field)?,
            url: self.string(field)?,
        })
    }

    fn option<T>(
        &mut self,
        field: &str,
        get: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.u8(field)? {
            0 => Ok(None),
            1 => get(self).map(Some),
            b => Err(format!(
                "{field}: presence byte {b} at byte {}",
                self.at - 1
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Task {
        let d = |s: &str| Destination {
            host: format!("{s}-host"),
            port: "9092".into(),
            topic: format!("{s}-topic"),
            url: format!("http://{s}/é"),
        };
        Task {
            spec: TaskSpec {
                id: "id-ü".into(),
                source: "src".into(),
                destination: d("dest"),
                dead_destination: Some(d("dead")),
                max_retries: u32::MAX,
                base_delay: 7,
                first_delay: 3,
                client_id: "client".into(),
                is_priority: true,
                message_data: "m".repeat(300),
                destination_type: DestinationType::Kafka,
                trace_parent: TraceParent(Some("00-abc-def-01".into())),
            },
            state: TaskState::Dead,
            attempts: 4,
            created_at_ms: 1,
            next_due_ms: Some(u64::MAX),
            last_error: Some("boom\n\"quoted\"".into()),
            updated_at_ms: 99,
        }
    }

    fn bytes(t: &Task) -> Vec<u8> {
        let mut out = Vec::new();
        encode(t, &mut out);
        out
    }

    /// Every field, in both of its shapes, reads back as written
    /// (`TraceParent` compares equal whatever it holds: checked apart).
    #[test]
    fn every_field_round_trips() {
        let t = full();
        let back = decode(&bytes(&t)).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.spec.trace_parent.0, t.spec.trace_parent.0);
        assert_eq!(back.spec.dead_destination, t.spec.dead_destination);

        let mut bare = full();
        bare.spec.dead_destination = None;
        bare.spec.is_priority = false;
        bare.spec.destination_type = DestinationType::Http;
        bare.spec.trace_parent = TraceParent(None);
        bare.spec.message_data = String::new();
        bare.next_due_ms = None;
        bare.last_error = None;
        bare.state = TaskState::Scheduled;
        let back = decode(&bytes(&bare)).unwrap();
        assert_eq!(back, bare);
        assert_eq!(back.spec.trace_parent.0, None);
        for state in STATES {
            let t = Task { state, ..full() };
            assert_eq!(decode(&bytes(&t)).unwrap().state, state);
        }
    }

    #[test]
    fn long_strings_take_several_length_bytes() {
        for n in [127, 128, 16_383, 16_384, 1 << 20] {
            let mut t = full();
            t.spec.message_data = "x".repeat(n);
            assert_eq!(decode(&bytes(&t)).unwrap(), t, "{n} bytes");
        }
    }

    #[test]
    fn half_the_bytes_of_json() {
        let mut t = full();
        t.spec.message_data = "x".repeat(100);
        t.spec.dead_destination = None;
        let json = serde_json::to_vec(&t).unwrap().len();
        let binary = bytes(&t).len();
        assert!(binary * 2 <= json, "binary {binary} bytes, JSON {json}");
    }

    /// Whatever is cut off or appended, reading fails with a reason
    /// (the store's checksum catches damage first; this is its backstop).
    #[test]
    fn a_cut_or_extended_value_is_an_error_not_a_task() {
        let b = bytes(&full());
        for n in 0..b.len() {
            let e = decode(&b[..n]).unwrap_err();
            assert!(
                e.contains("wanted") || e.contains("does not end"),
                "{n}: {e}"
            );
        }
        let mut long = b.clone();
        long.push(0);
        assert!(decode(&long)
            .unwrap_err()
            .contains("left over after the task: 1,"));
        let mut other = b;
        other[0] = 2;
        assert_eq!(decode(&other).unwrap_err(), "unknown task format 0x02");
    }
}
