//! The PostgreSQL outbox.
//!
//! - [`ddl`]: the table, the commit-order trigger, the printable script.
//! - [`PgStore`]: the relay's connection: the session advisory lock that
//!   makes one instance active, fetching in commit order, finishing batches.
//! - `notify`: LISTEN wake-ups with polling as the fallback.

pub mod ddl;
mod notify;
mod store;

pub use store::PgStore;
