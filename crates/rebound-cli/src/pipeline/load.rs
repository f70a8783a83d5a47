//! Parsing and checking a config file. Each route is deserialized on its own
//! (an error in one does not hide the others') through the toml crate's
//! spanned tree, so every error has a line and a field:
//! `pipeline.toml:12: route[1].max_in_flight: must be at least 1`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

use crate::route::{de, Kafka, RouteSettings, REQUIRED};

/// A checked config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// The Kafka side every route shares.
    pub kafka: Kafka,
    /// Address of the one `/healthz`, `/readyz`, `/metrics`.
    pub ops_addr: SocketAddr,
    /// The routes, in file order, with unique names.
    pub routes: Vec<RouteSettings>,
}

/// One problem: where and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// `route[1].max_in_flight`, `kafka.brokers`, … (empty for syntax errors).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Every problem of a file, one per line: `FILE:LINE: FIELD: MESSAGE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors {
    /// The file as named by the user.
    pub file: String,
    /// The problems, in file order.
    pub errors: Vec<ConfigError>,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file)?;
            if let Some(l) = e.line {
                write!(f, ":{l}")?;
            }
            if !e.field.is_empty() {
                write!(f, ": {}", e.field)?;
            }
            write!(f, ": {}", e.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The `[kafka]` section.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaSection {
    #[serde(deserialize_with = "de::non_empty")]
    brokers: String,
    /// librdkafka properties (TLS, SASL, …).
    #[serde(default)]
    config: BTreeMap<String, String>,
    /// `30s`, or a number of seconds, as the routes' durations.
    #[serde(default = "thirty_seconds", deserialize_with = "de::duration")]
    connect_timeout: Duration,
}

fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

/// Reads and checks `path`.
pub fn load(path: &Path) -> Result<Pipeline, ConfigErrors> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&file, &text, |n| std::env::var(n).ok()),
        Err(e) => Err(ConfigErrors {
            file,
            errors: vec![ConfigError {
                line: None,
                field: String::new(),
                message: format!("cannot read: {e}"),
            }],
        }),
    }
}

/// Checks the text of `file`, reading `${NAME}`s through `env`.
pub fn parse(
    file: &str,
    text: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Pipeline, ConfigErrors> {
    let fail = |errors: Vec<ConfigError>| ConfigErrors {
        file: file.to_string(),
        errors,
    };
    let text = super::env::interpolate(text, env).map_err(|unset| {
        fail(
            unset
                .into_iter()
                .map(|u| ConfigError {
                    line: Some(u.line),
                    field: format!("${{{}}}", u.name),
                    message: "the environment variable is not set".into(),
                })
                .collect(),
        )
    })?;
    let mut found = Found {
        text: &text,
        errors: Vec::new(),
    };
    let (root, syntax) = DeTable::parse_recoverable(&text);
    if !syntax.is_empty() {
        for e in syntax {
            found.at(e.span(), String::new(), e.message().to_string());
        }
        return Err(fail(found.errors));
    }
    let (mut kafka, mut ops_addr, mut routes) = (None, None, Vec::new());
    for (key, value) in root.into_inner() {
        match key.get_ref().as_ref() {
            "kafka" => kafka = found.kafka(value),
            "ops_addr" => ops_addr = found.ops_addr(value),
            "route" => routes = found.routes(value),
            other => found.at(
                Some(key.span()),
                other.to_string(),
                "unknown key (expected kafka, ops_addr or [[route]])".into(),
            ),
        }
    }
    if routes.is_empty() && found.errors.is_empty() {
        found.at(None, "route".into(), "no [[route]] tables".into());
    }
    if kafka.is_none() && found.errors.iter().all(|e| !e.field.starts_with("kafka")) {
        found.at(
            None,
            "kafka".into(),
            "missing section [kafka] (brokers = ...)".into(),
        );
    }
    match kafka {
        Some(kafka) if found.errors.is_empty() => Ok(Pipeline {
            kafka,
            ops_addr: ops_addr.unwrap_or_else(|| "127.0.0.1:9464".parse().expect("an address")),
            routes,
        }),
        _ => {
            found.errors.sort_by_key(|e| e.line.unwrap_or(usize::MAX));
            Err(fail(found.errors))
        }
    }
}

/// Errors found so far, with lines from `text`.
struct Found<'t> {
    text: &'t str,
    errors: Vec<ConfigError>,
}

/// The key of `table` whose key or value holds `span`.
fn field_at(table: &DeValue<'_>, span: &Option<Range<usize>>) -> Option<String> {
    let (DeValue::Table(t), Some(span)) = (table, span) else {
        return None;
    };
    t.iter()
        .find(|(k, v)| k.span().contains(&span.start) || v.span().contains(&span.start))
        .map(|(k, _)| k.get_ref().to_string())
}

impl Found<'_> {
    fn at(&mut self, span: Option<Range<usize>>, field: String, message: String) {
        let line = span.map(|s| {
            self.text[..s.start.min(self.text.len())]
                .matches('\n')
                .count()
                + 1
        });
        self.errors.push(ConfigError {
            line,
            field,
            message,
        });
    }

    /// Deserializes `value` as `T`; an error names `prefix.key`. After an
    /// error in a key, that key is set aside and the rest deserialized
    /// again, so every bad key of a table is reported, not only the first.
    fn typed<T: for<'de> Deserialize<'de>>(
        &mut self,
        mut value: Spanned<DeValue<'_>>,
        prefix: &str,
    ) -> Option<T> {
        let mut set_aside: Vec<String> = Vec::new();
        loop {
            let tree = value.get_ref().clone();
            let span = value.span();
            let e = match T::deserialize(ValueDeserializer::from(value)) {
                // With errors recorded, the rest is still checked.
                Ok(t) => return Some(t),
                Err(e) => e,
            };
            // Missing only because its bad value was set aside: said already.
            if set_aside
                .iter()
                .any(|k| e.message() == format!("missing field `{k}`"))
            {
                return None;
            }
            let key = field_at(&tree, &e.span());
            let field = match &key {
                Some(k) => format!("{prefix}.{k}"),
                None => prefix.to_string(),
            };
            self.at(
                e.span().or(Some(span.clone())),
                field,
                e.message().to_string(),
            );
            let (Some(k), DeValue::Table(mut t)) = (key, tree) else {
                return None;
            };
            t.remove(k.as_str());
            set_aside.push(k);
            value = Spanned::new(span, DeValue::Table(t));
        }
    }

    fn kafka(&mut self, value: Spanned<DeValue<'_>>) -> Option<Kafka> {
        let k: KafkaSection = self.typed(value, "kafka")?;
        Some(Kafka {
            brokers: k.brokers,
            props: k.config.into_iter().collect(),
            connect_timeout: k.connect_timeout,
        })
    }

    fn ops_addr(&mut self, value: Spanned<DeValue<'_>>) -> Option<SocketAddr> {
        let span = value.span();
        let s: String = self.typed(value, "ops_addr")?;
        match s.parse() {
            Ok(a) => Some(a),
            Err(_) => {
                self.at(
                    Some(span),
                    "ops_addr".into(),
                    format!("{s:?} is not host:port"),
                );
                None
            }
        }
    }

    fn routes(&mut self, value: Spanned<DeValue<'_>>) -> Vec<RouteSettings> {
        let span = value.span();
        let DeValue::Array(items) = value.into_inner() else {
            self.at(
                Some(span),
                "route".into(),
                "must be [[route]] tables".into(),
            );
            return Vec::new();
        };
        let mut routes = Vec::new();
        let mut names = BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let prefix = format!("route[{i}]");
            let tree = item.get_ref().clone();
            let key_span = |k: &str| match &tree {
                DeValue::Table(t) => t.get(k).map(|v| v.span()),
                _ => None,
            };
            if let DeValue::Table(t) = &tree {
                for req in REQUIRED {
                    if !t.contains_key(*req) {
                        let msg = format!("missing (every route needs {})", REQUIRED.join(", "));
                        self.at(Some(item.span()), format!("{prefix}.{req}"), msg);
                    }
                }
            }
            let Some(route) = self.typed::<RouteSettings>(item.clone(), &prefix) else {
                continue;
            };
            for (field, why) in route.check() {
                self.at(key_span(field), format!("{prefix}.{field}"), why);
            }
            if !names.insert(route.name.clone()) {
                let why = format!("{:?} is the name of an earlier route", route.name);
                self.at(key_span("name"), format!("{prefix}.name"), why);
            }
            routes.push(route);
        }
        routes
    }
}
