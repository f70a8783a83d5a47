//! `rebound run CONFIG.toml`: config checking with file, line and field, and
//! routes on a real broker delivering to real HTTP endpoints.

mod check;
pub mod deliver;
pub mod endpoint;
mod flood;
mod limits;
pub mod process;
mod reload;
mod tls;
