//! `linkwatch user add/list/remove/password`: the web dashboard's users, straight on
//! the collector's database (as `token` does). A password is read from
//! standard input (one line), never from the command line.

use super::Times;
use super::collector::{BranchArgs, DatabaseArgs, TokenRole};
use super::tables::{RoleRow, render_role_holders};
use anyhow::{Context, Result, bail};
use linkwatch::collector::access::Role;
use linkwatch::collector::web::users;
use std::io::{BufRead, IsTerminal};
use std::process::ExitCode;

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Add a dashboard user; the password is read from standard input (one
    /// line; at least 12 characters). Only its Argon2id hash is kept.
    Add {
        /// The user's sign-in name, e.g. `it.dhaka`.
        name: String,
        /// What the user may do: read (a viewer) or admin.
        #[arg(long, value_enum)]
        role: TokenRole,
        /// Limit the user to one branch of the hierarchy (default: all of it).
        #[command(flatten)]
        branch: BranchArgs,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the dashboard users (never their passwords).
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Remove a dashboard user and end its sessions at once.
    Remove {
        /// The user's name (see `linkwatch user list`).
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Give a dashboard user a new password, read from standard input (one
    /// line; at least 12 characters); its sessions end at once.
    Password {
        /// The user's name (see `linkwatch user list`).
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

/// One line of standard input, without its line end.
fn read_password() -> Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (shown as typed; or pipe it in): ");
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

fn render(list: &[linkwatch::collector::store::WebUser], times: &Times) -> String {
    let rows: Vec<RoleRow> = list
        .iter()
        .map(|u| RoleRow {
            name: &u.name,
            role: u.role.as_str(),
            branch: u.branch.as_ref().map(|b| b.to_string()),
            own: &u.lang,
            created_ms: u.created_at_ms,
        })
        .collect();
    render_role_holders(
        &rows,
        "LANG",
        "(no users: add the first with `linkwatch user add NAME --role admin`)",
        times,
    )
}

pub fn user(command: UserCommand, times: &Times) -> Result<ExitCode> {
    let db = match &command {
        UserCommand::Add { db, .. }
        | UserCommand::List { db }
        | UserCommand::Remove { db, .. }
        | UserCommand::Password { db, .. } => db,
    };
    // Read the password before opening the database.
    let password = match &command {
        UserCommand::Add { .. } | UserCommand::Password { .. } => Some(read_password()?),
        _ => None,
    };
    db.with_store(async |store, _| {
        match &command {
            UserCommand::Add {
                name, role, branch, ..
            } => {
                let role = match role {
                    TokenRole::Read => Role::Read,
                    TokenRole::Admin => Role::Admin,
                };
                let pw = password.as_deref().unwrap_or_default();
                let u = users::add_user(
                    store.as_ref(),
                    name,
                    role,
                    branch.get(),
                    pw,
                    super::now_ms(),
                )
                .await?;
                println!(
                    "user `{}` added ({} role, {}): sign in at the collector's address, /signin",
                    u.name,
                    u.role.as_str(),
                    u.branch.as_ref().map_or_else(
                        || "the whole hierarchy".to_string(),
                        |b| format!("limited to {b}")
                    )
                );
            }
            UserCommand::List { .. } => {
                print!("{}", render(&store.list_users().await?, times));
            }
            UserCommand::Password { name, .. } => {
                let pw = password.as_deref().unwrap_or_default();
                if !users::set_password(store.as_ref(), name, pw).await? {
                    bail!("no user named `{name}` (see `linkwatch user list`)");
                }
                println!("user `{name}` has a new password; its sessions have ended");
            }
            UserCommand::Remove { name, .. } => {
                if !store.remove_user(name).await? {
                    bail!("no user named `{name}` (see `linkwatch user list`)");
                }
                println!("user `{name}` removed; its sessions have ended");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
