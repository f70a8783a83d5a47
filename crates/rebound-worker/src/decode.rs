//! Decoding record values: a value that does not decode, or decodes but
//! fails [`Validate`], is a permanent failure naming the field, so the
//! failure layers dead-letter it at once instead of retrying it.

use std::future::Future;
use std::marker::PhantomData;

use rebound_core::{HandlerError, HandlerResult, Record, Validate};
use serde::de::DeserializeOwned;

use crate::Handler;

/// Decodes the value of `record` as JSON into `T` and validates it.
pub fn decode_json<T: DeserializeOwned + Validate>(record: &Record) -> Result<T, HandlerError> {
    let bytes = record
        .value
        .as_deref()
        .ok_or_else(|| HandlerError::permanent("value: missing (tombstone record)"))?;
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "value".to_string()
        } else {
            path
        };
        HandlerError::permanent(format!("{field}: {}", e.inner()))
    })?;
    value.validate()?;
    Ok(value)
}

/// A handler that decodes each value as JSON into `T` (validated) and
/// passes it to `f`; decode and validation failures are permanent.
pub fn json_handler<T, F, Fut>(f: F) -> JsonHandler<T, F>
where
    T: DeserializeOwned + Validate + Send + 'static,
    F: Fn(&Record, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    JsonHandler { f, _t: PhantomData }
}

/// See [`json_handler`].
pub struct JsonHandler<T, F> {
    f: F,
    _t: PhantomData<fn() -> T>,
}

impl<T, F, Fut> Handler for JsonHandler<T, F>
where
    T: DeserializeOwned + Validate + Send + 'static,
    F: Fn(&Record, T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = HandlerResult> + Send + 'static,
{
    async fn handle(&self, record: &Record) -> HandlerResult {
        let value = decode_json::<T>(record)?;
        (self.f)(record, value).await
    }
}

#[cfg(test)]
mod tests {
    use rebound_core::{ErrorKind, ValidationError};
    use serde::Deserialize;

    use super::*;

    #[derive(Deserialize)]
    struct Order {
        id: String,
        items: Vec<Item>,
    }
    #[derive(Deserialize)]
    struct Item {
        qty: u32,
    }
    impl Validate for Order {
        fn validate(&self) -> Result<(), ValidationError> {
            if self.id.is_empty() {
                return Err(ValidationError::new("id", "must not be empty"));
            }
            match self.items.iter().position(|i| i.qty == 0) {
                Some(n) => Err(ValidationError::new(
                    format!("items[{n}].qty"),
                    "must be at least 1",
                )),
                None => Ok(()),
            }
        }
    }

    fn rec(v: &str) -> Record {
        let mut r = Record::new("t", 0, 0);
        r.value = Some(v.as_bytes().to_vec());
        r
    }

    #[test]
    fn decode_errors_name_the_field_and_are_permanent() {
        let e = decode_json::<Order>(&rec(r#"{"id":"a","items":[{"qty":"x"}]}"#))
            .err()
            .unwrap();
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert!(e.message.starts_with("items[0].qty:"), "{}", e.message);
        let e = decode_json::<Order>(&rec("not json")).err().unwrap();
        assert!(e.message.starts_with("value:"), "{}", e.message);
        let e = decode_json::<Order>(&rec(r#"{"items":[]}"#)).err().unwrap();
        assert!(e.message.contains("id"), "{}", e.message);
    }

    #[test]
    fn validation_errors_name_the_field() {
        let e = decode_json::<Order>(&rec(r#"{"id":"a","items":[{"qty":1},{"qty":0}]}"#))
            .err()
            .unwrap();
        assert_eq!(e.message, "invalid items[1].qty: must be at least 1");
        assert!(decode_json::<Order>(&rec(r#"{"id":"a","items":[{"qty":2}]}"#)).is_ok());
    }

    #[tokio::test]
    async fn json_handler_passes_the_decoded_value() {
        let h = json_handler(|_: &Record, o: Order| {
            let n = o.items.len();
            async move {
                assert_eq!(n, 1);
                Ok(())
            }
        });
        assert!(h
            .handle(&rec(r#"{"id":"a","items":[{"qty":2}]}"#))
            .await
            .is_ok());
        let e = h.handle(&rec("{}")).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Permanent);
    }
}
