//! Which outbox: a database URL (by scheme) and a validated table name.

use std::fmt;

use crate::error::{Error, Result};

/// The default outbox table.
pub const DEFAULT_TABLE: &str = "rebound_outbox";

/// A table name that is a plain SQL identifier, so it can be quoted into
/// DDL and used in lock keys, index and channel names without escaping.
/// At most 48 characters: the relay's own objects append suffixes and
/// PostgreSQL cuts names at 63.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName(String);

impl TableName {
    /// Checks `name`: ASCII letters, digits and `_`, not starting with a
    /// digit, 1 to 48 characters.
    pub fn new(name: impl Into<String>) -> Result<Self> {
        let name = name.into();
        let ok = (1..=48).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if ok {
            Ok(TableName(name))
        } else {
            Err(Error::InvalidTable(name))
        }
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `"name"` with `suffix` appended, quoted for SQL.
    pub(crate) fn quoted(&self, suffix: &str) -> String {
        format!("\"{}{suffix}\"", self.0)
    }
}

impl Default for TableName {
    fn default() -> Self {
        TableName(DEFAULT_TABLE.to_string())
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The database an outbox lives in, chosen by the URL's scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `postgres://…` or `postgresql://…`.
    Postgres(String),
    /// `sqlite://PATH` (created when missing).
    Sqlite(String),
}

impl DatabaseUrl {
    /// Parses `url` by its scheme.
    pub fn parse(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_string()))
        } else if url.starts_with("sqlite:") {
            Ok(DatabaseUrl::Sqlite(url.to_string()))
        } else {
            Err(Error::UnsupportedUrl(
                rebound_core::error::without_password(url),
            ))
        }
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn an_unsupported_url_is_named_without_its_password() {
        let e = DatabaseUrl::parse("mysql://u:hunter2@db/app")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("mysql://u:***@db/app") && !e.contains("hunter2"),
            "{e}"
        );
        let e = DatabaseUrl::parse(" postgres://u:hunter2@db/app")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("hunter2"), "{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_plain_identifiers() {
        assert!(TableName::new("rebound_outbox").is_ok());
        assert!(TableName::new("Orders2").is_ok());
        for bad in ["", "1x", "a-b", "a\"b", "a b", &"x".repeat(49)] {
            let e = TableName::new(bad).unwrap_err();
            assert!(e.to_string().contains("invalid table name"), "{e}");
        }
        assert_eq!(
            TableName::default().quoted("_commits"),
            "\"rebound_outbox_commits\""
        );
    }

    #[test]
    fn urls_by_scheme() {
        assert!(matches!(
            DatabaseUrl::parse("postgres://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(matches!(
            DatabaseUrl::parse("sqlite:///tmp/x.db"),
            Ok(DatabaseUrl::Sqlite(_))
        ));
        let e = DatabaseUrl::parse("mysql://h/db").unwrap_err();
        assert!(e.to_string().contains("unsupported database URL"), "{e}");
    }
}
