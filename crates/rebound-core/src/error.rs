//! Handler errors and their kinds.

use std::fmt;
use std::time::Duration;

/// How a failure should be treated by the failure layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// May succeed if tried again (timeouts, 5xx, unavailable downstream).
    Transient,
    /// Will never succeed for this record (decode or validation failure, 4xx).
    Permanent,
    /// The downstream asked us to slow down; retry after a pause.
    Throttled,
}

impl ErrorKind {
    /// The lowercase name used in headers and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Permanent => "permanent",
            ErrorKind::Throttled => "throttled",
        }
    }

    /// Parses the name written by [`ErrorKind::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "transient" => Some(ErrorKind::Transient),
            "permanent" => Some(ErrorKind::Permanent),
            "throttled" => Some(ErrorKind::Throttled),
            _ => None,
        }
    }

    /// Whether another attempt may succeed.
    pub fn is_retriable(self) -> bool {
        !matches!(self, ErrorKind::Permanent)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error a handler returns: a kind plus a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} failure: {message}")]
pub struct HandlerError {
    /// How to treat the failure.
    pub kind: ErrorKind,
    /// What went wrong.
    pub message: String,
    /// For throttled errors: how long the downstream asked us to wait.
    pub retry_after: Option<Duration>,
    /// Attempts made for the record that ended in this error (set by the
    /// in-place retry layer; 1 when nothing retried).
    pub attempts: u32,
}

impl HandlerError {
    /// A failure that may succeed on a later attempt.
    pub fn transient(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Transient, message)
    }

    /// A failure that will never succeed for this record.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Permanent, message)
    }

    /// The downstream asked to slow down, optionally for `retry_after`.
    pub fn throttled(message: impl Into<String>, retry_after: Option<Duration>) -> Self {
        HandlerError {
            kind: ErrorKind::Throttled,
            message: message.into(),
            retry_after,
            attempts: 1,
        }
    }

    /// A failure of the given kind.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        HandlerError {
            kind,
            message: message.into(),
            retry_after: None,
            attempts: 1,
        }
    }
}

/// What a handler returns.
pub type HandlerResult = Result<(), HandlerError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_round_trip() {
        for k in [
            ErrorKind::Transient,
            ErrorKind::Permanent,
            ErrorKind::Throttled,
        ] {
            assert_eq!(ErrorKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ErrorKind::parse("other"), None);
        assert!(!ErrorKind::Permanent.is_retriable());
    }
}
