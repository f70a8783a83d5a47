//! Consumers for tooling: manual partition assignment (no group) and a
//! partition reader from the beginning, an offset or a timestamp.
