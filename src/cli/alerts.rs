//! `linkwatch alerts list|ack`: open and recent alerts, and acknowledging
//! one, straight from the collector's database (like `device list`); times
//! in the table in local time unless `--utc`.

use super::collector::DatabaseArgs;
use super::{Times, now_ms};
use anyhow::{Result, bail};
use linkwatch::collector::store::{AlertQuery, AlertRecord};
use std::fmt::Write;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum AlertsCommand {
    /// Open and recent alerts (closed ones of the last 7 days), newest first.
    List {
        /// Only open ones.
        #[arg(long)]
        open: bool,
        /// At most N (1 to 500).
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: i64,
        /// JSON (an array) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Acknowledge an open alert: its escalation stops (recoveries are still told).
    Ack {
        /// The alert's id (see `linkwatch alerts list`).
        id: i64,
        /// Who acknowledges (kept with the alert).
        #[arg(long, default_value = "cli")]
        by: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// The table `alerts list` prints.
pub fn render(list: &[AlertRecord], times: &Times) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>6}  {:<8}  {:<15}  {:<32}  {:<22}  {:<22}  CLOSED",
        "ID", "STATE", "KIND", "SUBJECT", "SINCE", "OPENED"
    );
    for a in list {
        let state = match (&a.resolved_ms, &a.alert.acked) {
            (Some(_), _) => "closed",
            (None, Some(_)) => "acked",
            (None, None) => "open",
        };
        let _ = writeln!(
            out,
            "{:>6}  {:<8}  {:<15}  {:<32}  {:<22}  {:<22}  {}",
            a.alert.id,
            state,
            a.alert.kind.as_str(),
            a.alert.key.subject.to_string(),
            times.ms(a.alert.since_ms),
            times.ms(a.alert.opened_ms),
            a.resolved_ms
                .map(|t| times.ms(t))
                .unwrap_or_else(|| "-".into()),
        );
    }
    if list.is_empty() {
        out.push_str("(no alerts)\n");
    }
    out
}

pub fn run(command: AlertsCommand, times: &Times) -> Result<ExitCode> {
    let db = match &command {
        AlertsCommand::List { db, .. } | AlertsCommand::Ack { db, .. } => db,
    };
    db.with_store(async |store, _| {
        match &command {
            AlertsCommand::List {
                open, limit, json, ..
            } => {
                if !(1..=500).contains(limit) {
                    bail!("--limit must be from 1 to 500");
                }
                let list = store
                    .list_alerts(&AlertQuery {
                        open_only: *open,
                        since_ms: now_ms() - 7 * 86_400_000,
                        before_id: None,
                        limit: *limit,
                    })
                    .await?;
                if *json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    print!("{}", render(&list, times));
                }
            }
            AlertsCommand::Ack { id, by, .. } => {
                let Some(a) = store.alert_by_id(*id).await? else {
                    bail!("no alert {id} (see `linkwatch alerts list`)");
                };
                if store.ack_alert(*id, by, now_ms()).await? {
                    println!("alert {id} ({}) acknowledged", a.alert.key);
                } else if a.resolved_ms.is_some() {
                    bail!("alert {id} is closed already");
                } else {
                    println!("alert {id} was acknowledged before");
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
