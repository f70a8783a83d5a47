//! The owned record handed to handlers.

use crate::Topic;

/// One record header: a name and an optional value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value; `None` for a null header.
    pub value: Option<Vec<u8>>,
}

/// A consumed record, owned, detached from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Topic it was read from.
    pub topic: Topic,
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset in the partition.
    pub offset: i64,
    /// Record timestamp in epoch milliseconds, when the broker gave one.
    pub timestamp: Option<i64>,
    /// Record key.
    pub key: Option<Vec<u8>>,
    /// Record value; `None` for a tombstone.
    pub value: Option<Vec<u8>>,
    /// Record headers in their original order.
    pub headers: Vec<Header>,
}

impl Record {
    /// A record with the given coordinates and value, no key, no headers.
    pub fn new(topic: impl Into<Topic>, partition: i32, offset: i64) -> Self {
        Record {
            topic: topic.into(),
            partition,
            offset,
            timestamp: None,
            key: None,
            value: None,
            headers: Vec::new(),
        }
    }

    /// The first header called `name`, if any, with a non-null value.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| h.value.as_deref())
    }

    /// The first header called `name` as UTF-8 text.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The key as UTF-8 text, when it is valid UTF-8.
    pub fn key_str(&self) -> Option<&str> {
        self.key
            .as_deref()
            .and_then(|k| std::str::from_utf8(k).ok())
    }

    /// The value as UTF-8 text, when it is valid UTF-8.
    pub fn value_str(&self) -> Option<&str> {
        self.value
            .as_deref()
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_returns_first_match() {
        let mut r = Record::new("t", 0, 1);
        r.headers.push(Header {
            name: "a".into(),
            value: Some(b"1".to_vec()),
        });
        r.headers.push(Header {
            name: "a".into(),
            value: Some(b"2".to_vec()),
        });
        assert_eq!(r.header_str("a"), Some("1"));
        assert_eq!(r.header("b"), None);
    }
}
