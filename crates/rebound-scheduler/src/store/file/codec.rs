//! The binary form of a stored task (the `tasks` table and the redo log).
//!
//! JSON spelled every field name in every task: a task with a 100-byte
//! payload took 517 bytes, and writing those into redb was most of a
//! checkpoint's cost. This form holds the values only, in a fixed order:
//! 198 bytes for that task, and no escaping or number formatting.
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

/// A new state must be given a byte here (the match is exhaustive) and
/// a place in [`STATES`] (checked by a test).
fn state_byte(s: TaskState) -> u8 {
    match s {
        TaskState::Scheduled => 0,
        TaskState::Delivering => 1,
        TaskState::Delivered => 2,
        TaskState::Dead => 3,
        TaskState::Cancelled => 4,
    }
}

/// The states by their byte.
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
    let kind = match s.destination_type {
        DestinationType::Kafka => KAFKA,
        DestinationType::Http => 0,
    };
    out.push(if s.is_priority { PRIORITY } else { 0 } | kind);
    string(out, &s.message_data);
    option(out, s.trace_parent.0.as_deref(), string);
    out.push(state_byte(t.state));
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
                "{field}: wanted {n} byte(s) at byte {}, {} left",
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

    /// A string: its length in at most five LEB128 bytes (below 2^35),
    /// then its bytes.
    fn string(&mut self, field: &str) -> Result<String, String> {
        let start = self.at;
        let mut len = 0u64;
        for shift in (0..35).step_by(7) {
            let b = self.u8(field)?;
            len |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                let len = usize::try_from(len).map_err(|_| format!("{field}: length {len}"))?;
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

    /// Priority and destination type are two bits of one byte: each of
    /// the four pairs reads back as written.
    #[test]
    fn the_flags_read_back_apart() {
        for prio in [false, true] {
            for kind in [DestinationType::Http, DestinationType::Kafka] {
                let mut t = full();
                t.spec.is_priority = prio;
                t.spec.destination_type = kind;
                let back = decode(&bytes(&t)).unwrap();
                assert_eq!(back.spec.is_priority, prio);
                assert_eq!(back.spec.destination_type, kind);
            }
        }
    }

    #[test]
    fn every_state_byte_is_its_place_in_the_table() {
        for (i, s) in STATES.iter().enumerate() {
            assert_eq!(usize::from(state_byte(*s)), i, "{s:?}");
        }
    }

    /// The layout, byte for byte: stores hold it, so a change of order
    /// made alike in `encode` and `decode` must still fail a test.
    #[test]
    fn the_layout_is_pinned() {
        let t = Task {
            spec: TaskSpec {
                id: "i".into(),
                source: "s".into(),
                destination: Destination {
                    host: "h".into(),
                    port: String::new(),
                    topic: "t".into(),
                    url: String::new(),
                },
                dead_destination: None,
                max_retries: 3,
                base_delay: 5,
                first_delay: 0x0102,
                client_id: "c".into(),
                is_priority: true,
                message_data: "m".into(),
                destination_type: DestinationType::Http,
                trace_parent: TraceParent(None),
            },
            state: TaskState::Delivering,
            attempts: 2,
            created_at_ms: 0x0a0b,
            next_due_ms: Some(7),
            last_error: Some("e".into()),
            updated_at_ms: 9,
        };
        let expected: &[u8] = &[
            1, // format
            1, b'i', 1, b's', // id, source
            1, b'h', 0, 1, b't', 0, // destination
            0, // dead_destination
            3, 0, 0, 0, 5, 0, 0, 0, 2, 1, 0, 0, // retries, base, first delay
            1, b'c', // client_id
            1,    // flags: priority, HTTP
            1, b'm', // message_data
            0,    // trace_parent
            1,    // state: delivering
            2, 0, 0, 0, // attempts
            0x0b, 0x0a, 0, 0, 0, 0, 0, 0, // created_at_ms
            1, 7, 0, 0, 0, 0, 0, 0, 0, // next_due_ms
            1, 1, b'e', // last_error
            9, 0, 0, 0, 0, 0, 0, 0, // updated_at_ms
        ];
        assert_eq!(bytes(&t), expected);
        assert_eq!(decode(expected).unwrap(), t);
    }

    #[test]
    fn a_length_longer_than_five_bytes_is_refused() {
        let mut b = vec![BINARY];
        b.extend_from_slice(&[0xff; 6]);
        assert_eq!(decode(&b).unwrap_err(), "id: length at byte 1 does not end");
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
