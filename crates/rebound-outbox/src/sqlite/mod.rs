//! The SQLite outbox (single node, the demo). SQLite has one writer at a
//! time and a transaction keeps the write lock from its first insert to its
//! commit, so row id order is commit order: the relay reads in id order.
//!
//! - [`ddl`]: the table and the lease table.
//! - [`SqliteStore`]: the lease that makes one instance active, fetching,
//!   finishing batches.

pub mod ddl;
mod store;

pub(crate) use store::open_pool;
pub use store::SqliteStore;
