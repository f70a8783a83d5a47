//! The record to send.

use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::FutureRecord;
use rebound_core::{Header, Record};

/// A record to produce.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutRecord {
    /// Destination topic.
    pub topic: String,
    /// Explicit partition, or `None` for the key-hash partitioner.
    pub partition: Option<i32>,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value; `None` sends a tombstone.
    pub value: Option<Vec<u8>>,
    /// Headers, in order.
    pub headers: Vec<Header>,
    /// Timestamp in epoch ms (`None`: now).
    pub timestamp: Option<i64>,
}

impl OutRecord {
    /// A record for `topic` with a value and no key.
    pub fn new(topic: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        OutRecord {
            topic: topic.into(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// A copy of a consumed record (key, value, headers, timestamp) addressed to `topic`.
    pub fn from_record(rec: &Record, topic: impl Into<String>) -> Self {
        OutRecord {
            topic: topic.into(),
            partition: None,
            key: rec.key.clone(),
            value: rec.value.clone(),
            headers: rec.headers.clone(),
            timestamp: rec.timestamp,
        }
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Vec<u8>>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Replaces every header called `name` with one holding `value`.
    pub fn set_header(&mut self, name: &str, value: impl Into<Vec<u8>>) {
        self.headers.retain(|h| h.name != name);
        self.headers.push(Header {
            name: name.to_string(),
            value: Some(value.into()),
        });
    }

    /// The rdkafka record that sends this one.
    pub(crate) fn as_future_record(&self) -> FutureRecord<'_, [u8], [u8]> {
        let mut headers = OwnedHeaders::new_with_capacity(self.headers.len());
        for h in &self.headers {
            headers = headers.insert(KHeader {
                key: &h.name,
                value: h.value.as_deref(),
            });
        }
        let mut fr: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&self.topic).headers(headers);
        if let Some(k) = &self.key {
            fr = fr.key(k.as_slice());
        }
        if let Some(v) = &self.value {
            fr = fr.payload(v.as_slice());
        }
        if let Some(p) = self.partition {
            fr = fr.partition(p);
        }
        if let Some(ts) = self.timestamp {
            fr = fr.timestamp(ts);
        }
        fr
    }

    /// The first header called `name` as UTF-8.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| h.value.as_deref())
            .and_then(|v| std::str::from_utf8(v).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_header_replaces() {
        let mut r = OutRecord::new("t", "v");
        r.set_header("a", "1");
        r.set_header("a", "2");
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.header_str("a"), Some("2"));
    }
}
