//! The tables `dlq list` and `dlq replay --dry-run` print.

use comfy_table::Table;
use rebound_core::Record;

use super::entry::{marked_or_dash, one_line, DlqEntry};
use crate::cmd::table;
use crate::time::rfc3339;

/// Longest error message shown in a table cell.
const ERROR_WIDTH: usize = 60;
/// Longest key shown in a table cell.
const KEY_WIDTH: usize = 40;

fn key_cell(rec: &Record) -> String {
    one_line(&marked_or_dash(rec.key.as_deref()), KEY_WIDTH)
}

fn error_cell(e: &DlqEntry<'_>) -> String {
    e.error_message()
        .map_or_else(|| "-".to_string(), |m| one_line(m, ERROR_WIDTH))
}

/// offset, key, error kind, error, attempts, failed at, original.
pub fn records(recs: &[Record]) -> Table {
    let mut t = table(&[
        "offset",
        "key",
        "error kind",
        "error",
        "attempts",
        "failed at",
        "original",
    ]);
    for rec in recs {
        let e = DlqEntry::new(rec);
        t.add_row(vec![
            e.coords(),
            key_cell(rec),
            e.error_kind().unwrap_or("-").to_string(),
            error_cell(&e),
            e.attempts()
                .map_or_else(|| "-".to_string(), |n| n.to_string()),
            e.last_failure().map_or_else(|| "-".to_string(), rfc3339),
            e.original_label(),
        ]);
    }
    t
}

/// offset, key, destination, original, error: what a replay would send.
pub fn planned<'a>(rows: impl IntoIterator<Item = (&'a Record, &'a str)>) -> Table {
    let mut t = table(&["offset", "key", "destination", "original", "error"]);
    for (rec, dest) in rows {
        let e = DlqEntry::new(rec);
        t.add_row(vec![
            e.coords(),
            key_cell(rec),
            dest.to_string(),
            e.original_label(),
            error_cell(&e),
        ]);
    }
    t
}
