//! Validation of decoded records: a failure names the field and is
//! permanent (the record goes to the DLQ at once, without retries).

use crate::error::HandlerError;

/// A field of a record that is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ValidationError {
    /// Path of the field, e.g. `order.items[2].qty`.
    pub field: String,
    /// Why it is rejected.
    pub reason: String,
}

impl ValidationError {
    /// A rejection of `field`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        ValidationError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl From<ValidationError> for HandlerError {
    fn from(e: ValidationError) -> Self {
        HandlerError::permanent(e.to_string())
    }
}

/// Checks a decoded value beyond what its type enforces.
pub trait Validate {
    /// `Ok` when acceptable; otherwise the first invalid field.
    fn validate(&self) -> Result<(), ValidationError>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn validation_errors_are_permanent_and_name_the_field() {
        let e: HandlerError = ValidationError::new("amount", "must be positive").into();
        assert_eq!(e.kind, ErrorKind::Permanent);
        assert_eq!(e.message, "invalid amount: must be positive");
    }
}
