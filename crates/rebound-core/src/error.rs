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

/// Displays an error and its causes once each: `what: why: root cause`.
///
/// rebound's error types name their cause through `source()` and leave it
/// out of their own message (so a chain printer, such as `anyhow`'s `{:#}`,
/// prints it once); use this where an error becomes one line of text: a log
/// field, a stored last error, a dead-letter header.
pub struct DisplayChain<'a>(pub &'a (dyn std::error::Error + 'a));

impl fmt::Display for DisplayChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = self.0.to_string();
        f.write_str(&last)?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            let text = c.to_string();
            // Errors that print their source themselves ("Meta data fetch
            // error: BrokerTransportFailure") would say it twice.
            if !last.ends_with(&text) {
                write!(f, ": {text}")?;
            }
            last = text;
            cause = c.source();
        }
        Ok(())
    }
}

/// `url` with the password of its user info replaced by `***`: what an
/// error or a log line may show of a connection URL (a database, a store).
pub fn without_password(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        // Not a URL the parser takes (several hosts): show only what
        // comes after the last '@'.
        Err(_) => match url.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => url.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        assert_eq!(
            without_password("redis://:p%40ss@r1:6380"),
            "redis://:***@r1:6380"
        );
        let several = without_password("redis+cluster://:hunter2@a:7000,b:7001");
        assert!(!several.contains("hunter2"), "{several}");
        assert_eq!(without_password("file:///data"), "file:///data");
    }

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

    #[test]
    fn a_chain_names_each_cause_once() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("store file /x")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(std::io::Error::other("disk full"));
        assert_eq!(DisplayChain(&e).to_string(), "store file /x: disk full");
    }

    #[test]
    fn a_cause_its_parent_already_printed_is_not_repeated() {
        #[derive(Debug, thiserror::Error)]
        #[error("disk full")]
        struct Root;
        #[derive(Debug, thiserror::Error)]
        #[error("write failed: {0}")]
        struct Echo(#[source] Root);
        #[derive(Debug, thiserror::Error)]
        #[error("store")]
        struct Top(#[source] Echo);
        assert_eq!(
            DisplayChain(&Top(Echo(Root))).to_string(),
            "store: write failed: disk full"
        );
    }
}
