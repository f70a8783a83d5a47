//! [`RouteSettings`]: everything one Kafka → HTTP route takes. The one type
//! behind `rebound worker`'s flags (kebab-case, each with its `REBOUND_*`
//! variable) and a `[[route]]` table of `rebound run`'s file (the same
//! names in snake_case). The flags' defaults are the one source of defaults:
//! [`RouteSettings::default`] reads them from clap.

use std::time::Duration;

use clap::{Args, CommandFactory as _, FromArgMatches as _, ValueEnum};
use rebound_core::webhook::WebhookSecret;
use serde::Deserialize;

use super::de;
use crate::args;
use crate::cmd::OrderingArg;

/// What happens to a record that still fails after in-place retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnFailure {
    /// Retry tiers (if any), then the dead-letter topic; the partition goes on.
    Dlq,
    /// Halt the partition at the record (nothing past it commits).
    Freeze,
}

/// `delivery` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryArg {
    /// Commit only finished records.
    AtLeastOnce,
    /// Commit before handling.
    AtMostOnce,
}

/// One route: consume `topic` in `group`, deliver each record to `http_sink`.
#[derive(Debug, Clone, PartialEq, Args, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteSettings {
    /// The route's name (config file only): log lines and the `route`
    /// label of its metrics.
    #[arg(skip)]
    #[serde(deserialize_with = "de::non_empty")]
    pub name: String,
    /// Topic to consume.
    #[arg(long, env = "REBOUND_TOPIC", value_parser = args::topic)]
    #[serde(deserialize_with = "de::topic")]
    pub topic: String,
    /// Consumer group id.
    #[arg(long, env = "REBOUND_GROUP", value_parser = args::non_empty)]
    #[serde(deserialize_with = "de::non_empty")]
    pub group: String,
    /// What may run concurrently.
    #[arg(long, env = "REBOUND_ORDERING", value_enum, default_value = "key")]
    pub ordering: OrderingArg,
    /// Records in flight across all partitions.
    #[arg(long, env = "REBOUND_MAX_IN_FLIGHT", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Memory for records fetched and not finished, across all partitions
    /// (64MiB, 512MB, …); fetching pauses when it is full. librdkafka's
    /// prefetch queue gets half of it on top.
    #[arg(long, env = "REBOUND_MAX_BUFFERED_BYTES", default_value = "64MiB",
          value_parser = args::byte_size)]
    #[serde(deserialize_with = "de::byte_size")]
    pub max_buffered_bytes: u64,
    /// Records in flight per partition (default: --max-in-flight).
    #[arg(long, env = "REBOUND_MAX_IN_FLIGHT_PER_PARTITION",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight_per_partition: Option<u32>,
    /// URL each record's value is sent to.
    #[arg(long, env = "REBOUND_HTTP_SINK", value_parser = args::http_url)]
    #[serde(deserialize_with = "de::http_url")]
    pub http_sink: url::Url,
    /// HTTP method of each delivery.
    #[arg(long, env = "REBOUND_HTTP_METHOD", default_value = "POST", value_parser = args::http_method)]
    #[serde(deserialize_with = "de::http_method")]
    pub http_method: reqwest::Method,
    /// Extra request header `Name: value` (repeatable; in a file a table).
    #[arg(long = "http-header", env = "REBOUND_HTTP_HEADERS", value_delimiter = '\n',
          hide_env_values = true, value_parser = args::http_header)]
    #[serde(deserialize_with = "de::http_headers")]
    pub http_headers: Vec<(String, String)>,
    /// Timeout of one HTTP request.
    #[arg(long, env = "REBOUND_HTTP_TIMEOUT", default_value = "30s", value_parser = args::duration)]
    #[serde(deserialize_with = "de::duration")]
    pub http_timeout: Duration,
    /// Statuses retried (comma separated); default: every non-2xx status not
    /// dropped or dead-lettered. When set, other failing statuses are
    /// dead-lettered at once.
    #[arg(long, env = "REBOUND_RETRY_STATUSES", value_delimiter = ',')]
    pub retry_statuses: Vec<u16>,
    /// Statuses counted as done without delivery (logged and dropped).
    #[arg(long, env = "REBOUND_DROP_STATUSES", value_delimiter = ',')]
    pub drop_statuses: Vec<u16>,
    /// Statuses dead-lettered at once (permanent failures, no retry).
    #[arg(long, env = "REBOUND_DLQ_STATUSES", value_delimiter = ',')]
    pub dlq_statuses: Vec<u16>,
    /// Sign each delivery (Standard Webhooks) with this `whsec_<base64>`
    /// secret; better set through the environment.
    #[arg(long, env = "REBOUND_WEBHOOK_SECRET", hide_env_values = true,
          value_parser = args::webhook_secret)]
    #[serde(deserialize_with = "de::webhook_secret")]
    pub webhook_secret: Option<WebhookSecret>,
    /// Deliveries per second at most (unset: no limit).
    #[arg(long, env = "REBOUND_RATE_LIMIT", value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit: Option<u32>,
    /// Delivery guarantee.
    #[arg(
        long,
        env = "REBOUND_DELIVERY",
        value_enum,
        default_value = "at-least-once"
    )]
    pub delivery: DeliveryArg,
    /// Attempts per record in place (exponential backoff, full jitter).
    #[arg(long, env = "REBOUND_RETRY_ATTEMPTS", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub retry_attempts: u32,
    /// First in-place retry delay.
    #[arg(long, env = "REBOUND_RETRY_BASE", default_value = "200ms", value_parser = args::duration)]
    #[serde(deserialize_with = "de::duration")]
    pub retry_base: Duration,
    /// Largest in-place retry delay.
    #[arg(long, env = "REBOUND_RETRY_CAP", default_value = "30s", value_parser = args::duration)]
    #[serde(deserialize_with = "de::duration")]
    pub retry_cap: Duration,
    /// After in-place retries: dead-letter (through the retry tiers) or freeze the partition.
    #[arg(long, env = "REBOUND_ON_FAILURE", value_enum, default_value = "dlq")]
    pub on_failure: OnFailure,
    /// Delays of the non-blocking retry tiers, comma separated (e.g. `10s,1m,10m`).
    /// Tiers give up per-key order; in-place retry keeps it.
    #[arg(long, env = "REBOUND_RETRY_TIERS", value_delimiter = ',', value_parser = args::duration)]
    #[serde(deserialize_with = "de::durations")]
    pub retry_tiers: Vec<Duration>,
    /// Retry tier topic pattern (`{topic}`, `{n}`).
    #[arg(long, env = "REBOUND_TIER_TOPIC", default_value = "{topic}.retry.{n}",
          value_parser = args::tier_pattern)]
    #[serde(deserialize_with = "de::tier_pattern")]
    pub tier_topic: String,
    /// Dead-letter topic pattern (`{topic}`).
    #[arg(long, env = "REBOUND_DLQ_TOPIC", default_value = "{topic}.dlq",
          value_parser = args::non_empty)]
    #[serde(deserialize_with = "de::non_empty")]
    pub dlq_topic: String,
    /// Create missing tier and DLQ topics at start (as many partitions as the source).
    #[arg(long, env = "REBOUND_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub create_topics: bool,
    /// Consecutive transient failures that open the circuit breaker (0: off).
    #[arg(long, env = "REBOUND_BREAKER_FAILURES", default_value_t = 20)]
    pub breaker_failures: u32,
    /// Failure ratio over --breaker-window that opens the breaker (0–1; off when unset).
    #[arg(long, env = "REBOUND_BREAKER_RATIO", value_parser = args::ratio)]
    #[serde(deserialize_with = "de::ratio")]
    pub breaker_ratio: Option<f64>,
    /// Sliding window of --breaker-ratio.
    #[arg(long, env = "REBOUND_BREAKER_WINDOW", default_value = "30s", value_parser = args::duration)]
    #[serde(deserialize_with = "de::duration")]
    pub breaker_window: Duration,
    /// Calls in the window before --breaker-ratio applies.
    #[arg(long, env = "REBOUND_BREAKER_MIN_CALLS", default_value_t = 20)]
    pub breaker_min_calls: u32,
    /// How long the breaker stays open before a trial call.
    #[arg(long, env = "REBOUND_BREAKER_COOLDOWN", default_value = "10s", value_parser = args::duration)]
    #[serde(deserialize_with = "de::duration")]
    pub breaker_cooldown: Duration,
    /// Flood guard: freeze the route when more than this share (0–1) of the
    /// last --flood-guard-window records would go to the DLQ.
    #[arg(long, env = "REBOUND_FLOOD_GUARD_RATIO", value_parser = args::ratio)]
    #[serde(deserialize_with = "de::ratio")]
    pub flood_guard_ratio: Option<f64>,
    /// Records the flood guard's ratio looks at (it applies once that many were seen).
    #[arg(long, env = "REBOUND_FLOOD_GUARD_WINDOW", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub flood_guard_window: u32,
    /// Flood guard: freeze the route after this many records in a row would go to the DLQ.
    #[arg(long, env = "REBOUND_FLOOD_GUARD_CONSECUTIVE",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub flood_guard_consecutive: Option<u32>,
    /// How long shutdown and revokes wait for in-flight records.
    #[arg(long, env = "REBOUND_DRAIN_TIMEOUT", default_value = "30s", value_parser = args::duration)]
    #[serde(deserialize_with = "de::duration")]
    pub drain_timeout: Duration,
    /// Consumer group session timeout.
    #[arg(long, env = "REBOUND_SESSION_TIMEOUT", default_value = "10s", value_parser = args::duration)]
    #[serde(deserialize_with = "de::duration")]
    pub session_timeout: Duration,
}

/// Keys a `[[route]]` table must have (the flags clap requires).
pub const REQUIRED: &[&str] = &["name", "topic", "group", "http_sink"];

impl Default for RouteSettings {
    /// The flags' defaults (environment ignored); the required settings are
    /// placeholders a config file must replace (see [`REQUIRED`]).
    fn default() -> Self {
        #[derive(clap::Parser)]
        struct Flags {
            #[command(flatten)]
            route: RouteSettings,
        }
        let cmd = Flags::command().mut_args(|a| a.env(None));
        let m = cmd
            .try_get_matches_from([
                "route",
                "--topic",
                "unset",
                "--group",
                "unset",
                "--http-sink",
                "http://unset.invalid/",
            ])
            .expect("the flags' defaults parse");
        Flags::from_arg_matches(&m)
            .expect("the flags' defaults parse")
            .route
    }
}

impl RouteSettings {
    /// Checks that need more than one field or that serde cannot express:
    /// each failure as (snake_case field, what is wrong). Every failure,
    /// not only the first.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut bad = Vec::new();
        let mut at_least_1 = |field, v: Option<u32>| {
            if v == Some(0) {
                bad.push((field, "must be at least 1".to_string()));
            }
        };
        at_least_1("max_in_flight", Some(self.max_in_flight));
        at_least_1(
            "max_in_flight_per_partition",
            self.max_in_flight_per_partition,
        );
        at_least_1("retry_attempts", Some(self.retry_attempts));
        at_least_1("rate_limit", self.rate_limit);
        at_least_1("flood_guard_window", Some(self.flood_guard_window));
        at_least_1("flood_guard_consecutive", self.flood_guard_consecutive);
        if self.flood_guard_ratio == Some(1.0) {
            // Trips when the share is above the ratio: 1 could never trip.
            bad.push(("flood_guard_ratio", "must be below 1".to_string()));
        }
        for (field, list) in [
            ("retry_statuses", &self.retry_statuses),
            ("drop_statuses", &self.drop_statuses),
            ("dlq_statuses", &self.dlq_statuses),
        ] {
            if let Some(s) = list.iter().find(|s| !(100..=599).contains(*s)) {
                bad.push((field, format!("{s} is not an HTTP status (100-599)")));
            } else if let Some(s) = list.iter().find(|s| (200..300).contains(*s)) {
                bad.push((field, format!("{s} is a success status")));
            }
        }
        if let Some(s) = self
            .drop_statuses
            .iter()
            .find(|s| self.dlq_statuses.contains(s))
        {
            bad.push(("dlq_statuses", format!("{s} is also in drop_statuses")));
        }
        bad
    }

    /// A name for log lines: the configured one, else the topic.
    pub fn label(&self) -> &str {
        if self.name.is_empty() {
            &self.topic
        } else {
            &self.name
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_flags_defaults_and_checks_name_each_field() {
        let d = RouteSettings::default();
        assert_eq!(d.max_in_flight, 100);
        assert_eq!(d.retry_base, Duration::from_millis(200));
        assert_eq!(d.dlq_topic, "{topic}.dlq");
        assert_eq!(d.http_method, reqwest::Method::POST);
        assert!(d.check().is_empty());
        let bad = RouteSettings {
            max_in_flight: 0,
            retry_statuses: vec![200],
            drop_statuses: vec![404],
            dlq_statuses: vec![404, 700],
            ..d
        };
        let fields: Vec<_> = bad.check().into_iter().map(|(f, _)| f).collect();
        assert_eq!(
            fields,
            [
                "max_in_flight",
                "retry_statuses",
                "dlq_statuses",
                "dlq_statuses"
            ]
        );
    }
}
