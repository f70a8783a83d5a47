//! `rebound outbox init`.

use anyhow::Context;
use clap::Args;
use rebound_outbox::{DatabaseUrl, Store};

use super::TableArgs;

/// Flags of `rebound outbox init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    db: TableArgs,
    /// Print the DDL instead of running it.
    #[arg(long)]
    print: bool,
}

pub async fn run(a: InitArgs) -> anyhow::Result<()> {
    let url = DatabaseUrl::parse(&a.db.database_url)?;
    if a.print {
        print!("{}", Store::ddl(&url, &a.db.table));
        return Ok(());
    }
    rebound_outbox::init(&a.db.database_url, &a.db.table)
        .await
        .with_context(|| format!("creating outbox table {}", a.db.table))?;
    println!("outbox table {} is ready", a.db.table);
    Ok(())
}
