//! One module per subcommand.

pub mod consume;
pub mod demo;
pub mod dlq;
pub mod group;
pub mod lag;
pub mod outbox;
pub mod produce;
pub mod run;
pub mod serve;
pub mod tasks;
pub mod topic;
pub mod worker;

use clap::ValueEnum;
use comfy_table::{presets::UTF8_FULL, Table};

/// A table with `header`, in the look every command's tables share.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL).set_header(header.to_vec());
    t
}

/// `--ordering` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OrderingArg {
    /// One record per partition at a time.
    Partition,
    /// Same key in order, different keys concurrently.
    Key,
    /// No ordering; only the limits apply.
    Unordered,
}

impl From<OrderingArg> for rebound_worker::Ordering {
    fn from(o: OrderingArg) -> Self {
        match o {
            OrderingArg::Partition => rebound_worker::Ordering::Partition,
            OrderingArg::Key => rebound_worker::Ordering::Key,
            OrderingArg::Unordered => rebound_worker::Ordering::Unordered,
        }
    }
}
