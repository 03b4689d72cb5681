//! `linkwatch alerts silence add|list|remove`: silences and maintenance
//! windows by device, office or branch, straight on the collector's
//! database, checked as the API checks them
//! ([`linkwatch::collector::alerts::silence`]). Times are RFC 3339, or a
//! local date and time (`2026-12-07 18:00`) in the machine's zone.

use super::collector::DatabaseArgs;
use super::{Times, now_ms};
use anyhow::{Result, bail};
use linkwatch::collector::alerts::silence::{Known, SilenceRequest, SilenceView};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum SilenceCommand {
    /// Silence a device, an office or a branch until a time: no alert is told
    /// for it meanwhile; whatever is still down at the end is told then.
    /// With --from it is a planned maintenance window.
    Add {
        /// `device:NAME`, `office:CODE`, `upazila:Division / District / Upazila`,
        /// `district:Division / District`, `division:NAME` or `ministry`.
        target: String,
        /// When it ends: RFC 3339 or a local `YYYY-MM-DD HH:MM`.
        #[arg(long, value_name = "TIME", conflicts_with = "for_")]
        until: Option<String>,
        /// How long it lasts from its start (2h, 90m, 3days).
        #[arg(long = "for", id = "for_", value_name = "DURATION")]
        for_: Option<String>,
        /// When a planned window starts (default: now), as --until.
        #[arg(long, value_name = "TIME")]
        from: Option<String>,
        /// Why (shown in lists).
        #[arg(long, default_value = "")]
        reason: String,
        /// Who sets it (kept with it).
        #[arg(long, default_value = "cli")]
        by: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// The silences in force and planned.
    List {
        /// JSON (an array) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Remove a silence: alerts of what it covered are told again.
    Remove {
        /// Its id (see `linkwatch alerts silence list`).
        id: i64,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// A time as given on the command line: RFC 3339 as it is; a civil
/// `YYYY-MM-DD HH:MM[:SS]` in `times`' zone, as RFC 3339.
fn time_arg(text: &str, times: &Times) -> String {
    let t = text.trim();
    if t.parse::<jiff::Timestamp>().is_ok() {
        return t.to_string();
    }
    match t.parse::<jiff::civil::DateTime>() {
        Ok(dt) => match times.zone().to_timestamp(dt) {
            Ok(ts) => ts.to_string(),
            Err(_) => t.to_string(),
        },
        Err(_) => t.to_string(),
    }
}

/// The flag a request's field comes from.
fn flag(field: &str) -> &'static str {
    match field {
        "target" => "TARGET",
        "start" => "--from",
        "end" => "--until",
        "duration" => "--for",
        "reason" => "--reason",
        _ => "arguments",
    }
}

/// The table `alerts silence list` prints.
pub fn render(list: &[SilenceView], times: &Times) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>5}  {:<8}  {:<36}  {:<22}  {:<22}  {:<14}  REASON",
        "ID", "STATE", "TARGET", "FROM", "UNTIL", "BY"
    );
    for s in list {
        let _ = writeln!(
            out,
            "{:>5}  {:<8}  {:<36}  {:<22}  {:<22}  {:<14}  {}",
            s.id,
            if s.active { "active" } else { "planned" },
            s.target,
            times.ms(s.start_ms),
            times.ms(s.end_ms),
            s.created_by,
            s.reason
        );
    }
    if list.is_empty() {
        out.push_str("(no silences)\n");
    }
    out
}

pub fn run(command: SilenceCommand, times: &Times) -> Result<ExitCode> {
    let db = match &command {
        SilenceCommand::Add { db, .. }
        | SilenceCommand::List { db, .. }
        | SilenceCommand::Remove { db, .. } => db,
    };
    db.with_store(async |store, _| {
        match &command {
            SilenceCommand::Add {
                target,
                until,
                for_,
                from,
                reason,
                by,
                ..
            } => {
                let by = by.trim();
                if by.is_empty() || by.len() > 128 || by.chars().any(char::is_control) {
                    bail!("--by must be 1 to 128 printable characters");
                }
                let req = SilenceRequest {
                    target: target.clone(),
                    start: from.as_deref().map(|t| time_arg(t, times)),
                    end: until.as_deref().map(|t| time_arg(t, times)),
                    duration: for_.clone(),
                    reason: Some(reason.clone()),
                };
                let devices: BTreeMap<String, Option<String>> = store
                    .list_devices()
                    .await?
                    .into_iter()
                    .map(|d| (d.name, d.office))
                    .collect();
                let offices = store
                    .list_offices()
                    .await?
                    .into_iter()
                    .map(|o| (o.code.clone(), o))
                    .collect();
                let known = Known {
                    devices: &devices,
                    offices: &offices,
                };
                let now = now_ms();
                let s = match req.check(now, &known) {
                    Ok(s) => s,
                    Err(e) => bail!("{}: {}", flag(e.field), e.message),
                };
                let id = store.add_silence(&s, by, now).await?;
                let v = SilenceView::new(
                    &linkwatch::collector::alerts::model::Silence { id, ..s },
                    by,
                    now,
                    now,
                );
                println!(
                    "silence {id}: {} from {} until {}",
                    v.target,
                    times.ms(v.start_ms),
                    times.ms(v.end_ms)
                );
            }
            SilenceCommand::List { json, .. } => {
                let now = now_ms();
                let list: Vec<SilenceView> = store
                    .silences(now)
                    .await?
                    .iter()
                    .map(|r| SilenceView::new(&r.silence, &r.created_by, r.created_ms, now))
                    .collect();
                if *json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    print!("{}", render(&list, times));
                }
            }
            SilenceCommand::Remove { id, .. } => {
                if !store.remove_silence(*id).await? {
                    bail!("no silence {id} (see `linkwatch alerts silence list`)");
                }
                println!("silence {id} removed");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
