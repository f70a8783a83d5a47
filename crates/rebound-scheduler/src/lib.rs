//! A durable delayed-retry scheduler: tasks delivered later to a Kafka topic
//! or an HTTP endpoint, with exponential backoff and a dead destination —
//! wire-compatible with Rebound (`POST /tasks`, `GET /health`), with an
//! embedded store and a Redis store, and claim-with-lease delivery.
//!
//! # Layout
//!
//! - [`task`]: the wire request ([`task::NewTask`]), the validated spec and
//!   the stored [`task::Task`].
//! - [`validate`]: validation shared by HTTP, ingress and the library API.
//! - [`schedule`]: Rebound's `base · 2^(n-1)` schedule on core's `Backoff`.
//! - [`clock`]: epoch-millisecond time, switchable to tokio's paused clock.
//! - [`store`]: the [`store::Store`] trait and stores by URL —
//!   [`store::file`] (embedded, on redb, group commit) and [`store::redis`]
//!   (Lua claim-with-lease).
//! - [`scheduler`]: [`Scheduler`]: create, get, cancel, list.
//! - [`dispatcher`]: the claim → deliver → finish loop; [`fair`] orders a
//!   claimed batch (priority, then round-robin across clients).
//! - [`deliver`]: Kafka and HTTP delivery; [`envelope`]: the dead letter.
//! - [`http`]: the axum router; [`metrics`]: Prometheus.
//! - [`ingress`]: task JSON from a Kafka topic.
//! - [`config`]: [`ServeConfig`] from Rebound's environment names;
//!   [`serve()`]: everything together until cancelled.
pub mod clock;
pub mod config;
pub mod deliver;
pub mod dispatcher;
pub mod envelope;
pub mod error;
pub mod fair;
pub mod http;
pub mod ingress;
pub mod metrics;
pub mod schedule;
pub mod scheduler;
pub mod serve;
pub mod store;
pub mod task;
pub mod validate;

pub use config::ServeConfig;
pub use deliver::{Deliver, Deliverer};
pub use dispatcher::{DispatchConfig, Dispatcher};
pub use error::{Error, Result, ValidationError};
pub use http::{router, AppState};
pub use scheduler::{Scheduler, SchedulerBuilder};
pub use serve::{serve, serve_on};
pub use store::Store;
pub use task::{CancelOutcome, CreateOutcome, NewTask, Task, TaskState};
