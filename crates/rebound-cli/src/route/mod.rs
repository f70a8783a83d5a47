//! A Kafka → HTTP route: its settings, its failure stack and the one
//! function that starts it. `rebound worker` runs one route from flags;
//! `rebound run` runs the routes of a config file.
//!
//! - `settings`: [`RouteSettings`], the flags of `worker` and a `[[route]]` table.
//! - `de`: how a file's values go through the flags' parsers.
//! - `stack`: retry, tiers, DLQ, flood guard and breaker around the sink.
//! - `start`: [`start`], a running route from [`Kafka`] and [`RouteSettings`].

pub(crate) mod de;
mod settings;
pub mod stack;
mod start;

pub use settings::{RouteSettings, REQUIRED};
pub use start::{start, Kafka, RouteMetrics};
