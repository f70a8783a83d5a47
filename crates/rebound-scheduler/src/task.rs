//! The task model: the wire request, the validated spec, and the stored task.

use serde::{Deserialize, Serialize};

/// A delivery target, as Rebound spells it: Kafka uses `host`, `port`
/// (a string) and `topic`; HTTP uses `url`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Destination {
    /// Kafka broker host; empty means the configured default brokers.
    pub host: String,
    /// Kafka broker port, as a string (Rebound's wire format).
    pub port: String,
    /// Kafka topic.
    pub topic: String,
    /// HTTP endpoint.
    pub url: String,
}

impl Destination {
    /// `host:port` when both are set, for use as Kafka bootstrap servers.
    pub fn bootstrap(&self) -> Option<String> {
        (!self.host.is_empty()).then(|| {
            if self.port.is_empty() {
                self.host.clone()
            } else {
                format!("{}:{}", self.host, self.port)
            }
        })
    }
}

/// Where a task is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationType {
    /// Produce to a Kafka topic.
    Kafka,
    /// `POST` to an HTTP endpoint.
    Http,
}

impl DestinationType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            DestinationType::Kafka => "kafka",
            DestinationType::Http => "http",
        }
    }
}

/// A task request as it arrives on the wire (`POST /tasks`, the ingress topic
/// or [`crate::Scheduler::create_task`]). Every field is optional here so that
/// validation can name what is missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NewTask {
    /// Unique task id (required).
    pub id: Option<String>,
    /// Name of the producing system (required).
    pub source: Option<String>,
    /// Delivery target (required).
    pub destination: Option<Destination>,
    /// Where the task goes after `max_retries + 1` failed deliveries.
    pub dead_destination: Option<Destination>,
    /// Retries after the first delivery, 0–100.
    pub max_retries: Option<i64>,
    /// Backoff base, whole seconds 1–3600: after failed delivery n the next
    /// comes `base_delay · 2^(n-1)` later.
    pub base_delay: Option<i64>,
    /// Extension (not in Rebound): whole seconds 0–3600 before the first
    /// delivery. Absent or 0: the first delivery is made at once, as Rebound
    /// makes it.
    pub first_delay: Option<i64>,
    /// Tenant of the task, used for fairness and listing.
    pub client_id: Option<String>,
    /// Dispatched before non-priority tasks due at the same time.
    pub is_priority: Option<bool>,
    /// The payload delivered.
    pub message_data: Option<String>,
    /// `"kafka"` or `"http"`.
    pub destination_type: Option<String>,
    /// W3C `traceparent` of what created the task (the API request's
    /// header, the ingress record's span); not read from the body.
    #[serde(skip)]
    pub trace_parent: Option<String>,
}

/// A validated task: what is stored and compared for idempotent create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Unique task id.
    pub id: String,
    /// Name of the producing system.
    pub source: String,
    /// Delivery target.
    pub destination: Destination,
    /// Dead-letter target, if any.
    pub dead_destination: Option<Destination>,
    /// Retries after the first delivery.
    pub max_retries: u32,
    /// Backoff base in whole seconds.
    pub base_delay: u32,
    /// Seconds before the first delivery (0: at once). Absent in tasks
    /// stored before it existed, which read as 0.
    #[serde(default)]
    pub first_delay: u32,
    /// Tenant.
    pub client_id: String,
    /// Priority flag.
    pub is_priority: bool,
    /// Payload.
    pub message_data: String,
    /// Kafka or HTTP.
    pub destination_type: DestinationType,
    /// Where the task's deliveries continue the trace of what created it.
    #[serde(default, skip_serializing_if = "TraceParent::is_none")]
    pub trace_parent: TraceParent,
}

/// The W3C `traceparent` a task was created under. Not part of the task's
/// identity: creating the same task again under another trace is still a
/// duplicate, so any two compare equal.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TraceParent(pub Option<String>);

impl TraceParent {
    fn is_none(&self) -> bool {
        self.0.is_none()
    }

    /// The context deliveries run in: their `send` or `POST` spans are its
    /// children (a new trace when the task has none).
    pub fn context(&self) -> rebound_core::trace::Context {
        match &self.0 {
            Some(tp) => rebound_core::trace::from_traceparent(tp),
            None => rebound_core::trace::Context::new(),
        }
    }
}

impl PartialEq for TraceParent {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for TraceParent {}

/// Lifecycle state of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskState {
    /// Waiting for its next due time.
    Scheduled,
    /// Claimed by a dispatcher under a lease; a delivery is in flight.
    Delivering,
    /// Delivered successfully.
    Delivered,
    /// Exhausted its retries (dead-lettered, or dropped without a dead destination).
    Dead,
    /// Cancelled through the API.
    Cancelled,
}

impl TaskState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskState::Scheduled => "scheduled",
            TaskState::Delivering => "delivering",
            TaskState::Delivered => "delivered",
            TaskState::Dead => "dead",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "scheduled" => TaskState::Scheduled,
            "delivering" => TaskState::Delivering,
            "delivered" => TaskState::Delivered,
            "dead" => TaskState::Dead,
            "cancelled" => TaskState::Cancelled,
            _ => return None,
        })
    }

    /// Whether the task will never be delivered again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            TaskState::Delivered | TaskState::Dead | TaskState::Cancelled
        )
    }
}

/// A stored task with its progress. Times are Unix epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The validated request.
    pub spec: TaskSpec,
    /// Lifecycle state.
    pub state: TaskState,
    /// Failed (or in-flight, while delivering) deliveries so far.
    pub attempts: u32,
    /// Creation time.
    pub created_at_ms: u64,
    /// Next due time, while scheduled.
    pub next_due_ms: Option<u64>,
    /// Last delivery error.
    pub last_error: Option<String>,
    /// Last state change.
    pub updated_at_ms: u64,
}

impl Task {
    /// A new scheduled task, first due at `created + first_delay` (at once
    /// unless the task asks for a delay).
    pub fn new(spec: TaskSpec, now_ms: u64) -> Self {
        let due = now_ms + u64::from(spec.first_delay) * 1000;
        Task {
            spec,
            state: TaskState::Scheduled,
            attempts: 0,
            created_at_ms: now_ms,
            next_due_ms: Some(due),
            last_error: None,
            updated_at_ms: now_ms,
        }
    }

    /// Task id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }
}

/// What a create did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// A new task was stored.
    Created,
    /// A task with this id and the same body exists: nothing changed.
    Duplicate,
    /// A task with this id exists with a different body: nothing changed.
    Conflict,
}

/// What a cancel did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The task was cancelled and will not be delivered again (a delivery
    /// already in flight may still complete).
    Cancelled,
    /// No such task.
    NotFound,
    /// The task had already finished in this state.
    AlreadyFinal(TaskState),
}
