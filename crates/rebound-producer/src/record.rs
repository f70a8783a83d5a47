//! The record to send.

use rdkafka::message::{Header as KHeader, OwnedHeaders};
use rdkafka::producer::BaseRecord;
use rdkafka::util::IntoOpaque;
use rebound_core::headers::TRACEPARENT;
use rebound_core::trace::{self, Context};
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

    /// The rdkafka record that sends this one, carrying `opaque` to its
    /// delivery report, with the trace context of `trace` (when it has a
    /// span) in place of the record's own. No header list is allocated for
    /// a record without headers and trace.
    pub(crate) fn as_base_record<D: IntoOpaque>(
        &self,
        opaque: D,
        trace: &Context,
    ) -> BaseRecord<'_, [u8], [u8], D> {
        let mut br: BaseRecord<'_, [u8], [u8], D> = BaseRecord::with_opaque_to(&self.topic, opaque);
        let mut traced = Vec::new();
        trace::inject(trace, &mut traced);
        if !self.headers.is_empty() || !traced.is_empty() {
            let replaced = |name: &str| {
                !traced.is_empty() && (name == TRACEPARENT || name == trace::TRACESTATE)
            };
            let mut headers = OwnedHeaders::new_with_capacity(self.headers.len() + traced.len());
            for h in self
                .headers
                .iter()
                .filter(|h| !replaced(&h.name))
                .chain(&traced)
            {
                headers = headers.insert(KHeader {
                    key: &h.name,
                    value: h.value.as_deref(),
                });
            }
            br = br.headers(headers);
        }
        br.key = self.key.as_deref();
        br.payload = self.value.as_deref();
        br.partition = self.partition;
        br.timestamp = self.timestamp;
        br
    }

    /// The bytes this record puts on the wire before framing: key, value,
    /// and each header's name and value. What
    /// [`ProducerConfig::with_max_message_size`](crate::ProducerConfig::with_max_message_size)
    /// is compared with.
    pub fn size(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len)
            + self.value.as_ref().map_or(0, Vec::len)
            + self
                .headers
                .iter()
                .map(|h| h.name.len() + h.value.as_ref().map_or(0, Vec::len))
                .sum::<usize>()
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

    #[test]
    fn size_counts_key_value_and_headers() {
        let mut r = OutRecord::new("t", vec![0u8; 10]).with_key("kk");
        r.set_header("abc", "12345");
        assert_eq!(r.size(), 10 + 2 + 3 + 5);
        let br = r.as_base_record((), &Context::new());
        assert_eq!(br.key, Some(&b"kk"[..]));
        assert!(br.headers.is_some());
        assert!(OutRecord::new("t", "v")
            .as_base_record((), &Context::new())
            .headers
            .is_none());
    }
}
