//! How keys, values and aggregates become bytes and back.
//!
//! Numbers are decimal UTF-8 (the header convention of the project, and
//! what a person reading the output topic expects); strings are UTF-8;
//! `Vec<u8>` is the bytes themselves; [`Json`] wraps any serde type.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A type that travels through Kafka and the state stores.
pub trait Codec: Clone + Send + Sync + 'static {
    /// Its bytes.
    fn encode(&self) -> Vec<u8>;
    /// Back from bytes; the error says what is wrong.
    fn decode(bytes: &[u8]) -> Result<Self, String>;
    /// Back from owned bytes (what a source has): types that are bytes
    /// take them without a copy.
    fn decode_owned(bytes: Vec<u8>) -> Result<Self, String> {
        Self::decode(&bytes)
    }
}

impl Codec for Vec<u8> {
    fn encode(&self) -> Vec<u8> {
        self.clone()
    }
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        Ok(bytes.to_vec())
    }
    fn decode_owned(bytes: Vec<u8>) -> Result<Self, String> {
        Ok(bytes)
    }
}

impl Codec for String {
    fn encode(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        Self::decode_owned(bytes.to_vec())
    }
    fn decode_owned(bytes: Vec<u8>) -> Result<Self, String> {
        String::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
    }
}

macro_rules! decimal {
    ($($t:ty),*) => {$(
        impl Codec for $t {
            fn encode(&self) -> Vec<u8> {
                self.to_string().into_bytes()
            }
            fn decode(bytes: &[u8]) -> Result<Self, String> {
                let s = std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))?;
                s.parse().map_err(|e| format!("{s:?} is not a decimal {}: {e}", stringify!($t)))
            }
        }
    )*};
}
decimal!(u64, i64, u32, i32, f64);

/// A value encoded as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T> Codec for Json<T>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
{
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(&self.0).expect("a serde value encodes as JSON")
    }
    fn decode(bytes: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(bytes)
            .map(Json)
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_decimal_text() {
        assert_eq!(42u64.encode(), b"42");
        assert_eq!(u64::decode(b"42"), Ok(42));
        let err = u64::decode(b"x").unwrap_err();
        assert!(err.contains("\"x\" is not a decimal u64"), "{err}");
    }

    #[test]
    fn json_round_trips() {
        let v = Json(vec![1, 2, 3]);
        assert_eq!(Json::<Vec<i32>>::decode(&v.encode()), Ok(v));
        assert!(Json::<Vec<i32>>::decode(b"{").is_err());
    }
}
