//! The dead-letter envelope: what a dead destination receives.

use serde::{Deserialize, Serialize};

use crate::task::{Destination, DestinationType, Task};

/// Sent to `dead_destination` after `max_retries + 1` failed deliveries:
/// the payload with enough provenance to act on it (Rebound sends the bare
/// payload). Times are Unix epoch milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Task id.
    pub id: String,
    /// Producing system.
    pub source: String,
    /// Tenant.
    pub client_id: String,
    /// `kafka` or `http`.
    pub destination_type: DestinationType,
    /// The destination that kept failing.
    pub destination: Destination,
    /// The original payload.
    pub message_data: String,
    /// The last delivery error.
    pub error: String,
    /// Failed deliveries.
    pub attempts: u32,
    /// When the task was created.
    pub created_at_ms: u64,
    /// When the last delivery failed.
    pub failed_at_ms: u64,
}

impl DeadLetter {
    /// The envelope of an exhausted task.
    pub fn of(task: &Task, failed_at_ms: u64) -> Self {
        DeadLetter {
            id: task.spec.id.clone(),
            source: task.spec.source.clone(),
            client_id: task.spec.client_id.clone(),
            destination_type: task.spec.destination_type,
            destination: task.spec.destination.clone(),
            message_data: task.spec.message_data.clone(),
            error: task.last_error.clone().unwrap_or_default(),
            attempts: task.attempts,
            created_at_ms: task.created_at_ms,
            failed_at_ms,
        }
    }
}
