//! Typed messages: a value is validated ([`Validate`]), encoded (JSON by
//! default) and checked against the configured maximum record size before
//! anything is queued, so a bad value never reaches the broker.
//!
//! ```no_run
//! # async fn f(producer: rebound_producer::Producer) -> Result<(), rebound_producer::SendError> {
//! # #[derive(serde::Serialize)] struct Order { id: String }
//! # impl rebound_core::Validate for Order { fn validate(&self) -> Result<(), rebound_core::ValidationError> { Ok(()) } }
//! let orders = producer.typed::<Order>("orders");
//! let at = orders.send(Some("customer-7"), &Order { id: "o-1".into() }).await?;
//! # Ok(()) }
//! ```

use std::marker::PhantomData;

use rebound_core::{Validate, ValidationError};
use serde::Serialize;

use crate::delivery::{Delivered, Pending};
use crate::error::ProduceError;
use crate::producer::Producer;
use crate::record::OutRecord;

/// A typed send refused or failed. Nothing was queued unless the variant is
/// [`Produce`](SendError::Produce).
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The value failed validation; names the field.
    #[error("record for {topic} rejected")]
    Invalid {
        /// Destination topic.
        topic: String,
        /// The first invalid field.
        #[source]
        source: ValidationError,
    },
    /// The value could not be encoded.
    #[error("record for {topic} could not be encoded: {reason}")]
    Encode {
        /// Destination topic.
        topic: String,
        /// The encoder's message.
        reason: String,
    },
    /// The encoded record is larger than the configured maximum.
    #[error("record for {topic} is {size} bytes, over the {max}-byte limit (message.max.bytes)")]
    TooLarge {
        /// Destination topic.
        topic: String,
        /// Key, value and header bytes of the record.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// Sending failed.
    #[error(transparent)]
    Produce(#[from] ProduceError),
}

/// Turns a value into record bytes.
pub trait Encoder<T: ?Sized>: Send + Sync {
    /// The encoded value, or why it cannot be encoded.
    fn encode(&self, value: &T) -> Result<Vec<u8>, String>;
}

/// serde JSON, the default encoding.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<T: Serialize + ?Sized> Encoder<T> for Json {
    fn encode(&self, value: &T) -> Result<Vec<u8>, String> {
        serde_json::to_vec(value).map_err(|e| e.to_string())
    }
}

/// A producer of `T` values to one topic.
#[derive(Debug, Clone)]
pub struct TypedProducer<T: ?Sized, E = Json> {
    producer: Producer,
    topic: String,
    encoder: E,
    _value: PhantomData<fn(&T)>,
}

impl Producer {
    /// A producer of `T` values to `topic`, JSON-encoded.
    pub fn typed<T: Serialize + Validate + ?Sized>(
        &self,
        topic: impl Into<String>,
    ) -> TypedProducer<T> {
        TypedProducer::new(self.clone(), topic, Json)
    }

    /// Validates `value`, encodes it as JSON and sends it to `topic` with
    /// `key`, waiting for the acknowledgement (see [`Producer::send`]).
    pub async fn send_json<T: Serialize + Validate + ?Sized>(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &T,
    ) -> Result<Delivered, SendError> {
        let rec = self.typed_record(topic, key, value, &Json)?;
        Ok(self.send(&rec).await?)
    }

    /// The record for a typed value, or why it is refused (counted in the
    /// metrics as rejected).
    fn typed_record<T: Validate + ?Sized>(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: &T,
        encoder: &impl Encoder<T>,
    ) -> Result<OutRecord, SendError> {
        let m = self.metrics();
        value.validate().map_err(|source| {
            m.record_rejected("validation");
            SendError::Invalid {
                topic: topic.to_string(),
                source,
            }
        })?;
        let bytes = encoder.encode(value).map_err(|reason| {
            m.record_rejected("encoding");
            SendError::Encode {
                topic: topic.to_string(),
                reason,
            }
        })?;
        let mut rec = OutRecord::new(topic, bytes);
        rec.key = key.map(<[u8]>::to_vec);
        check_size(&rec, self.config().max_message_size()).inspect_err(|_| {
            m.record_rejected("too_large");
        })?;
        Ok(rec)
    }
}

/// Refuses a record whose [`size`](OutRecord::size) exceeds `max`.
pub fn check_size(rec: &OutRecord, max: usize) -> Result<(), SendError> {
    let size = rec.size();
    if size > max {
        return Err(SendError::TooLarge {
            topic: rec.topic.clone(),
            size,
            max,
        });
    }
    Ok(())
}

impl<T: Validate + ?Sized, E: Encoder<T>> TypedProducer<T, E> {
    /// A producer of `T` values to `topic` encoded with `encoder`.
    pub fn new(producer: Producer, topic: impl Into<String>, encoder: E) -> Self {
        TypedProducer {
            producer,
            topic: topic.into(),
            encoder,
            _value: PhantomData,
        }
    }

    /// The destination topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The record `value` would be sent as (validated, encoded, size-checked).
    pub fn record(&self, key: Option<impl AsRef<[u8]>>, value: &T) -> Result<OutRecord, SendError> {
        self.producer.typed_record(
            &self.topic,
            key.as_ref().map(AsRef::as_ref),
            value,
            &self.encoder,
        )
    }

    /// Validates, encodes and sends `value`, waiting for the acknowledgement.
    pub async fn send(
        &self,
        key: Option<impl AsRef<[u8]>>,
        value: &T,
    ) -> Result<Delivered, SendError> {
        let rec = self.record(key, value)?;
        Ok(self.producer.send(&rec).await?)
    }

    /// Validates, encodes and queues `value`; see [`Producer::enqueue`].
    pub async fn enqueue(
        &self,
        key: Option<impl AsRef<[u8]>>,
        value: &T,
    ) -> Result<Pending, SendError> {
        let rec = self.record(key, value)?;
        Ok(self.producer.enqueue(&rec).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn too_large_names_the_size_and_the_limit() {
        let rec = OutRecord::new("orders", vec![b'x'; 1_000_001]);
        let e = check_size(&rec, 1_000_000).unwrap_err();
        assert_eq!(
            e.to_string(),
            "record for orders is 1000001 bytes, over the 1000000-byte limit (message.max.bytes)"
        );
        assert!(check_size(&OutRecord::new("orders", vec![0; 1_000_000]), 1_000_000).is_ok());
    }

    #[test]
    fn json_encodes() {
        #[derive(Serialize)]
        struct V {
            a: u8,
        }
        assert_eq!(Json.encode(&V { a: 1 }).unwrap(), br#"{"a":1}"#);
    }
}
