//! Deserializers of [`super::RouteSettings`]'s typed fields: each goes
//! through the same parser as its flag (`crate::args`), so a file and the
//! command line accept and refuse the same values with the same words. A
//! value may be written as a string or, where it reads as one, a number
//! (`http_timeout = 30` is 30 seconds, like `--http-timeout 30`).

use std::collections::BTreeMap;
use std::time::Duration;

use rebound_core::webhook::WebhookSecret;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use crate::args;

/// A string, or a number read as its decimal text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
}

impl Scalar {
    fn text(self) -> String {
        match self {
            Scalar::Str(s) => s,
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
        }
    }
}

fn with<'de, D: Deserializer<'de>, T>(
    d: D,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<T, D::Error> {
    let s = Scalar::deserialize(d)
        .map_err(|_| D::Error::custom("expected a string or a number"))?
        .text();
    parse(&s).map_err(D::Error::custom)
}

/// A topic name.
pub fn topic<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    with(d, args::topic)
}

/// A non-empty string.
pub fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    with(d, args::non_empty)
}

/// A size such as `64MiB`.
pub fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    with(d, args::byte_size)
}

/// An `http(s)://` URL.
pub fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
    with(d, args::http_url)
}

/// An HTTP method.
pub fn http_method<'de, D: Deserializer<'de>>(d: D) -> Result<reqwest::Method, D::Error> {
    with(d, args::http_method)
}

/// A duration (`30s`, or a number of seconds).
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    with(d, args::duration)
}

/// A list of durations, or one comma-separated string (`"10s,1m"`).
pub fn durations<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum List {
        One(String),
        Many(Vec<Scalar>),
    }
    let texts: Vec<String> = match List::deserialize(d)
        .map_err(|_| D::Error::custom("expected a list of durations such as [\"10s\", \"1m\"]"))?
    {
        List::One(s) => s.split(',').map(str::to_string).collect(),
        List::Many(v) => v.into_iter().map(Scalar::text).collect(),
    };
    texts
        .iter()
        .map(|t| args::duration(t).map_err(D::Error::custom))
        .collect()
}

/// A retry tier topic pattern with `{n}`.
pub fn tier_pattern<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    with(d, args::tier_pattern)
}

/// A ratio in (0, 1].
pub fn ratio<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    with(d, args::ratio).map(Some)
}

/// A `whsec_` secret.
pub fn webhook_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<WebhookSecret>, D::Error> {
    with(d, args::webhook_secret).map(Some)
}

/// A table of header names to values.
pub fn http_headers<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, String)>, D::Error> {
    let table = BTreeMap::<String, String>::deserialize(d)?;
    table
        .into_iter()
        .map(|(k, v)| args::http_header(&format!("{k}: {v}")).map_err(D::Error::custom))
        .collect()
}
