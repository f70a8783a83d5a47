//! An order with the Python seed's rules: quantity 1–10,000, priority one of
//! low | normal | high | urgent.

use rebound_core::{Validate, ValidationError};
use serde::{Deserialize, Serialize};

pub const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub customer_id: String,
    pub quantity: u32,
    pub priority: String,
}

impl Order {
    pub fn new(id: &str, quantity: u32, priority: &str) -> Order {
        Order {
            order_id: id.to_string(),
            customer_id: "c-1".to_string(),
            quantity,
            priority: priority.to_string(),
        }
    }
}

impl Validate for Order {
    fn validate(&self) -> Result<(), ValidationError> {
        if self.order_id.is_empty() {
            return Err(ValidationError::new("order_id", "must not be empty"));
        }
        if !(1..=10_000).contains(&self.quantity) {
            return Err(ValidationError::new(
                "quantity",
                format!("must be between 1 and 10000, got {}", self.quantity),
            ));
        }
        if !PRIORITIES.contains(&self.priority.as_str()) {
            return Err(ValidationError::new(
                "priority",
                format!(
                    "must be one of low, normal, high, urgent, got {:?}",
                    self.priority
                ),
            ));
        }
        Ok(())
    }
}
