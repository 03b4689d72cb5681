//! `linkwatch storage`: rows and bytes by kind of data in the collector's
//! database, and the oldest raw minute it keeps (issue 18), straight from
//! the database as `device list` reads it.

use super::Times;
use super::collector::DatabaseArgs;
use anyhow::Result;
use linkwatch::collector::storage::{render_table, view};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct StorageArgs {
    /// JSON (as `GET /api/v1/storage` answers) instead of a table.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    db: DatabaseArgs,
}

pub fn storage(a: StorageArgs, times: &Times) -> Result<ExitCode> {
    a.db.with_store(async |store, config| {
        let facts = store.storage().await?;
        let v = view(&facts, config.rollup_settings().raw_retention_days);
        if a.json {
            println!("{}", serde_json::to_string_pretty(&v)?);
        } else {
            print!("{}", render_table(&v, &|ms| times.ms(ms)));
        }
        Ok(ExitCode::SUCCESS)
    })
}
