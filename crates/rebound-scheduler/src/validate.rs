//! Validation shared by the HTTP API, the Kafka ingress and the library API.

use crate::error::{Error, ValidationError};
use crate::task::{Destination, DestinationType, NewTask, TaskSpec, TraceParent};

/// Default limit on `message_data`, in bytes (1 MiB).
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// Size limits applied to incoming tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted `message_data`, in bytes.
    pub max_message_bytes: usize,
    /// Largest accepted request body, in bytes (batches included).
    pub max_body_bytes: usize,
    /// Largest accepted batch, in tasks.
    pub max_batch: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_body_bytes: 16 * 1024 * 1024,
            max_batch: 1000,
        }
    }
}

/// Parses a JSON body into a [`NewTask`]; type errors name the field.
pub fn parse_new_task(body: &[u8]) -> Result<NewTask, Error> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            Error::InvalidBody(e.into_inner().to_string())
        } else {
            Error::InvalidBody(format!("{path}: {}", e.into_inner()))
        }
    })
}

/// Converts one element of a batch into a [`NewTask`]; type errors name the
/// field.
pub fn parse_new_task_value(v: &serde_json::Value) -> Result<NewTask, Error> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        Error::InvalidBody(format!("{path}: {}", e.into_inner()))
    })
}

fn required(field: &str, v: Option<String>) -> Result<String, ValidationError> {
    match v {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(ValidationError::new(field, "is required")),
    }
}

fn check_destination(
    field: &str,
    d: &Destination,
    kind: DestinationType,
) -> Result<(), ValidationError> {
    match kind {
        DestinationType::Kafka => {
            if d.topic.trim().is_empty() {
                return Err(ValidationError::new(
                    format!("{field}.topic"),
                    "is required when destination_type is kafka",
                ));
            }
            if !d.port.is_empty() && d.port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(ValidationError::new(
                    format!("{field}.port"),
                    format!("must be a port number 1-65535, got {:?}", d.port),
                ));
            }
        }
        DestinationType::Http => {
            let url = d.url.trim();
            if url.is_empty() {
                return Err(ValidationError::new(
                    format!("{field}.url"),
                    "is required when destination_type is http",
                ));
            }
            match url::Url::parse(url) {
                Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
                Ok(u) => {
                    return Err(ValidationError::new(
                        format!("{field}.url"),
                        format!("scheme must be http or https, got {:?}", u.scheme()),
                    ))
                }
                Err(e) => {
                    return Err(ValidationError::new(
                        format!("{field}.url"),
                        format!("is not a valid URL: {e}"),
                    ))
                }
            }
        }
    }
    Ok(())
}

/// Validates a request into a [`TaskSpec`]. The order of checks is stable, so
/// the first offending field is reported.
pub fn validate(t: NewTask, limits: &Limits) -> Result<TaskSpec, Error> {
    let id = required("id", t.id)?;
    if id.len() > 512 {
        return Err(ValidationError::new("id", "must be at most 512 bytes").into());
    }
    let source = required("source", t.source)?;
    let kind = match t.destination_type.as_deref().map(str::trim) {
        None | Some("") => {
            return Err(ValidationError::new(
                "destination_type",
                "is required (\"kafka\" or \"http\")",
            )
            .into())
        }
        Some("kafka") => DestinationType::Kafka,
        Some("http") => DestinationType::Http,
        Some(other) => {
            return Err(ValidationError::new(
                "destination_type",
                format!("must be \"kafka\" or \"http\", got {other:?}"),
            )
            .into())
        }
    };
    let destination = t
        .destination
        .ok_or_else(|| ValidationError::new("destination", "is required"))?;
    check_destination("destination", &destination, kind)?;
    if let Some(dead) = &t.dead_destination {
        check_destination("dead_destination", dead, kind)?;
    }
    let max_retries = match t.max_retries {
        None => 0,
        Some(n @ 0..=100) => n as u32,
        Some(n) => {
            return Err(ValidationError::new(
                "max_retries",
                format!("must be between 0 and 100, got {n}"),
            )
            .into())
        }
    };
    let base_delay = match t.base_delay {
        None => {
            return Err(
                ValidationError::new("base_delay", "is required (whole seconds, 1-3600)").into(),
            )
        }
        Some(n @ 1..=3600) => n as u32,
        Some(n) => {
            return Err(ValidationError::new(
                "base_delay",
                format!("must be between 1 and 3600 seconds, got {n}"),
            )
            .into())
        }
    };
    let first_delay = match t.first_delay {
        None => 0,
        Some(n @ 0..=3600) => n as u32,
        Some(n) => {
            return Err(ValidationError::new(
                "first_delay",
                format!("must be between 0 and 3600 seconds, got {n}"),
            )
            .into())
        }
    };
    let message_data = t.message_data.unwrap_or_default();
    if message_data.len() > limits.max_message_bytes {
        return Err(Error::PayloadTooLarge {
            id,
            size: message_data.len(),
            limit: limits.max_message_bytes,
        });
    }
    Ok(TaskSpec {
        id,
        source,
        destination,
        dead_destination: t.dead_destination,
        max_retries,
        base_delay,
        first_delay,
        client_id: t.client_id.unwrap_or_default(),
        is_priority: t.is_priority.unwrap_or(false),
        message_data,
        destination_type: kind,
        trace_parent: TraceParent(
            t.trace_parent
                .filter(|tp| rebound_core::trace::is_traceparent(tp)),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_json() -> serde_json::Value {
        serde_json::json!({
            "id": "t1", "source": "s", "destination": {"topic": "out"},
            "max_retries": 3, "base_delay": 5, "destination_type": "kafka",
            "message_data": "hi"
        })
    }

    fn check(v: serde_json::Value) -> Result<TaskSpec, Error> {
        validate(
            parse_new_task(v.to_string().as_bytes())?,
            &Limits::default(),
        )
    }

    fn field_of(r: Result<TaskSpec, Error>) -> String {
        match r {
            Err(Error::Validation(v)) => v.field,
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_valid_task() {
        let s = check(ok_json()).unwrap();
        assert_eq!(s.max_retries, 3);
        assert_eq!(s.base_delay, 5);
        assert_eq!(s.first_delay, 0, "first attempt at once, as Rebound");
        assert_eq!(s.destination_type, DestinationType::Kafka);
    }

    #[test]
    fn names_the_offending_field() {
        let mut v = ok_json();
        v["max_retries"] = 101.into();
        assert_eq!(field_of(check(v)), "max_retries");
        let mut v = ok_json();
        v["base_delay"] = 0.into();
        assert_eq!(field_of(check(v)), "base_delay");
        let mut v = ok_json();
        v["first_delay"] = (-1).into();
        assert_eq!(field_of(check(v)), "first_delay");
        let mut v = ok_json();
        v["destination"] = serde_json::json!({});
        assert_eq!(field_of(check(v)), "destination.topic");
        let mut v = ok_json();
        v["destination_type"] = "http".into();
        assert_eq!(field_of(check(v)), "destination.url");
        let mut v = ok_json();
        v.as_object_mut().unwrap().remove("source");
        assert_eq!(field_of(check(v)), "source");
    }

    #[test]
    fn type_errors_name_the_field() {
        let mut v = ok_json();
        v["max_retries"] = "three".into();
        match check(v) {
            Err(Error::InvalidBody(m)) => assert!(m.starts_with("max_retries"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
