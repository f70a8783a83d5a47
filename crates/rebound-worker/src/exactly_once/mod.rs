//! Exactly-once consume-transform-produce.
