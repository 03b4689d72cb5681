//! `linkwatch contacts import|list|remove`: the contacts alerts are routed
//! to, beside those of the collector configuration (`[[alerts.contact]]`,
//! `contacts_file`), kept in the collector's database. A file is read and
//! checked like `contacts_file` (CSV or TOML; errors name the line and the
//! column), then checked against the configuration's channels; a bad file
//! changes nothing. The running collector picks changes up at its next
//! round.

use super::collector::DatabaseArgs;
use super::now_ms;
use anyhow::{Result, bail};
use linkwatch::collector::alerts::channels::Needs;
use linkwatch::collector::alerts::contacts::Contact;
use linkwatch::collector::alerts::contacts_import::load_contacts;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum ContactsCommand {
    /// Import contacts from a CSV (header name,branch,language,email,phone,channels;
    /// channels separated by `;`) or TOML (`[[contact]]`) file; a contact of the
    /// same name is replaced.
    Import {
        /// The file: `.csv` or `.toml`.
        file: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Every contact: the configuration's and the imported ones.
    List {
        /// JSON (an array) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Remove an imported contact by name.
    Remove {
        /// The contact's name (any case; see `linkwatch contacts list`).
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// Check imported contacts against the configuration: no name of its own
/// contacts, only its channels, with the address each channel needs.
pub fn check_against(
    contacts: &[Contact],
    configured: &[Contact],
    channels: &BTreeMap<String, Needs>,
) -> Result<()> {
    for c in contacts {
        if let Some(k) = configured
            .iter()
            .find(|k| k.name.eq_ignore_ascii_case(&c.name))
        {
            bail!(
                "{}: contact `{}` is already defined by the configuration ({}): rename it or edit it there",
                c.origin,
                c.name,
                k.origin
            );
        }
        for ch in &c.channels {
            let Some(needs) = channels.get(ch) else {
                bail!(
                    "{}: contact `{}` uses channel `{ch}`, which the configuration does not define (defined: {})",
                    c.origin,
                    c.name,
                    if channels.is_empty() {
                        "none; give --config".to_string()
                    } else {
                        channels.keys().cloned().collect::<Vec<_>>().join(", ")
                    }
                );
            };
            let missing = match needs {
                Needs::Email if c.email.is_none() => Some("email"),
                Needs::Phone if c.phone.is_none() => Some("phone"),
                _ => None,
            };
            if let Some(field) = missing {
                bail!(
                    "{}: contact `{}` uses channel `{ch}` but has no {field}",
                    c.origin,
                    c.name
                );
            }
        }
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Row<'a> {
    #[serde(flatten)]
    contact: &'a Contact,
    source: &'static str,
    origin: &'a str,
}

pub fn run(command: ContactsCommand) -> Result<ExitCode> {
    let db = match &command {
        ContactsCommand::Import { db, .. }
        | ContactsCommand::List { db, .. }
        | ContactsCommand::Remove { db, .. } => db,
    };
    db.with_store(async |store, cfg| {
        let alerts = linkwatch::collector::alerts::setup::alerts_config(cfg)?;
        let (configured, channels) = match &alerts {
            Some(a) => (a.contacts.clone(), a.channel_needs.clone()),
            None => (Vec::new(), BTreeMap::new()),
        };
        match &command {
            ContactsCommand::Import { file, .. } => {
                let contacts = load_contacts(file)?;
                check_against(&contacts, &configured, &channels)?;
                let (added, replaced) = store.put_contacts(&contacts, now_ms()).await?;
                println!(
                    "{} contacts imported from {} ({added} new, {replaced} replaced)",
                    contacts.len(),
                    file.display()
                );
            }
            ContactsCommand::List { json, .. } => {
                let stored = store.stored_contacts().await?;
                let rows: Vec<Row> = configured
                    .iter()
                    .map(|c| (c, "config"))
                    .chain(stored.iter().map(|c| (c, "imported")))
                    .map(|(c, source)| Row {
                        contact: c,
                        source,
                        origin: &c.origin,
                    })
                    .collect();
                if *json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    print!("{}", render(&rows));
                }
            }
            ContactsCommand::Remove { name, .. } => {
                if store.remove_contact(name).await? {
                    println!("contact `{}` removed", name.trim());
                } else if let Some(c) = configured
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(name.trim()))
                {
                    bail!(
                        "contact `{}` is defined by the configuration ({}): remove it there",
                        c.name,
                        c.origin
                    );
                } else {
                    bail!(
                        "no imported contact named `{}` (see `linkwatch contacts list`)",
                        name.trim()
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn render(rows: &[Row<'_>]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24}  {:<36}  {:<4}  {:<28}  {:<16}  {:<16}  SOURCE",
        "NAME", "BRANCH", "LANG", "EMAIL", "PHONE", "CHANNELS"
    );
    for r in rows {
        let c = r.contact;
        let _ = writeln!(
            out,
            "{:<24}  {:<36}  {:<4}  {:<28}  {:<16}  {:<16}  {} ({})",
            c.name,
            c.branch.to_string(),
            c.language.as_str(),
            c.email.as_deref().unwrap_or("-"),
            c.phone.as_deref().unwrap_or("-"),
            c.channels.join(";"),
            r.source,
            r.origin
        );
    }
    if rows.is_empty() {
        out.push_str("(no contacts)\n");
    }
    out
}
