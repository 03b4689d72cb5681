//! The `linkwatch` command line: the subcommands and where each one goes.
//! Agent side (`agent`, `status`, `check`, `prefer`, `validate`) in
//! `cli/agent.rs`; collector side (`collector`, `device`, `office`, `token`,
//! `report`) in `cli/collector.rs`, `alerts` in `cli/alerts.rs` (`alerts silence` in `cli/silences.rs`), `contacts` in
//! `cli/contacts.rs`; what both share in `cli/mod.rs`.

mod cli;

use clap::{CommandFactory, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "linkwatch",
    version,
    about = "Measure every link through that link; keep officers online."
)]
struct Cli {
    /// Print times in UTC instead of the machine's local time zone (JSON is always RFC 3339).
    #[arg(long, global = true)]
    utc: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent daemon (SIGHUP reloads the config and the token file, SIGTERM stops cleanly).
    Agent(cli::agent::AgentArgs),
    /// Show the running agent's view of every link, its spool and its uploads.
    Status(cli::agent::StatusArgs),
    /// Run every probe once on every link and say what worked and why not.
    /// Exits 1 when no link reaches the internet.
    Check(cli::agent::CheckArgs),
    /// Prefer a link for the default route while it is online (`--auto`: let
    /// the policy choose again). Shown in `status`.
    Prefer(cli::agent::PreferArgs),
    /// Check an agent config (the links it would watch, its token file) or,
    /// with `--collector`, a collector config.
    Validate(cli::agent::ValidateArgs),
    #[cfg(feature = "collector")]
    /// Run the collector daemon (SIGTERM stops cleanly). Without --config:
    /// SQLite file `linkwatch-collector.db` in the current directory, plain
    /// HTTP on 127.0.0.1:8080.
    Collector(cli::collector::CollectorArgs),
    #[cfg(feature = "collector")]
    /// Open and recent alerts; acknowledge one; silences and maintenance
    /// windows. Works directly on the collector's database.
    Alerts {
        #[command(subcommand)]
        command: cli::alerts::AlertsCommand,
    },
    #[cfg(feature = "collector")]
    /// Contacts alerts are routed to: import from a file, list, remove. Works
    /// directly on the collector's database, beside the configuration's contacts.
    Contacts {
        #[command(subcommand)]
        command: cli::contacts::ContactsCommand,
    },
    #[cfg(feature = "collector")]
    /// Register, list, rotate and revoke devices; import the office hierarchy.
    /// Works directly on the collector's database (`database` of the collector config).
    Device {
        #[command(subcommand)]
        command: cli::collector::DeviceCommand,
    },
    #[cfg(feature = "collector")]
    /// Show the office hierarchy imported with `device import`.
    Office {
        #[command(subcommand)]
        command: cli::collector::OfficeCommand,
    },
    #[cfg(feature = "collector")]
    /// Make, list and revoke API tokens for the read API (reports, timelines,
    /// outages; admin tokens also list and revoke devices). Works directly on
    /// the collector's database, as `device` does.
    Token {
        #[command(subcommand)]
        command: cli::collector::TokenCommand,
    },
    #[cfg(feature = "collector")]
    /// Add, list and remove the web dashboard's users (admin, or a viewer
    /// limited to a branch, as API tokens are). Works directly on the
    /// collector's database.
    User {
        #[command(subcommand)]
        command: cli::users::UserCommand,
    },
    #[cfg(feature = "collector")]
    /// Uptime report over a window, straight from the collector's database:
    /// per device, office, upazila, district or division, within a schedule.
    /// Bad parameters exit 2 naming the parameter.
    Report(cli::collector::ReportArgs),
    #[cfg(feature = "collector")]
    /// Rows and bytes of each kind of data in the collector's database, and
    /// the oldest raw minute it keeps. Reads the whole database: run it when
    /// you need the figures, not from a timer (`/metrics` has the cheap ones).
    Storage(cli::storage::StorageArgs),
    /// Print a shell completion script (bash: save it as
    /// /usr/share/bash-completion/completions/linkwatch).
    Completions(cli::docs::CompletionsArgs),
    /// Write the man pages (linkwatch.1 and one per subcommand) into a directory.
    Man(cli::docs::ManArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    linkwatch::shared::tls::install_provider();
    let times = cli::Times::new(cli.utc);
    let result = match cli.command {
        Command::Agent(a) => cli::agent::agent(a),
        Command::Status(a) => cli::agent::status(a, &times),
        Command::Check(a) => cli::agent::check(a),
        Command::Prefer(a) => cli::agent::prefer(a),
        Command::Validate(a) => cli::agent::validate(a),
        #[cfg(feature = "collector")]
        Command::Collector(a) => cli::collector::collector(a),
        #[cfg(feature = "collector")]
        Command::Alerts { command } => cli::alerts::run(command, &times),
        #[cfg(feature = "collector")]
        Command::Contacts { command } => cli::contacts::run(command),
        #[cfg(feature = "collector")]
        Command::Device { command } => cli::collector::device(command, &times),
        #[cfg(feature = "collector")]
        Command::Office { command } => cli::collector::office(command),
        #[cfg(feature = "collector")]
        Command::Token { command } => cli::collector::token(command, &times),
        #[cfg(feature = "collector")]
        Command::User { command } => cli::users::user(command, &times),
        #[cfg(feature = "collector")]
        Command::Report(a) => cli::collector::report(a, &times),
        #[cfg(feature = "collector")]
        Command::Storage(a) => cli::storage::storage(a, &times),
        Command::Completions(a) => cli::docs::completions(a, Cli::command()),
        Command::Man(a) => cli::docs::man(a, Cli::command()),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("linkwatch: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory as _;

    /// Every subcommand and every argument a user can type has help text.
    #[test]
    fn every_subcommand_and_flag_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for sub in cmd.get_subcommands() {
                let p = format!("{path} {}", sub.get_name());
                if sub
                    .get_about()
                    .is_none_or(|a| a.to_string().trim().is_empty())
                {
                    missing.push(format!("`{p}`"));
                }
                walk(sub, &p, missing);
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg
                    .get_help()
                    .is_none_or(|h| h.to_string().trim().is_empty())
                {
                    missing.push(format!("`{path}` argument `{id}`"));
                }
            }
        }
        let cmd = Cli::command();
        cmd.clone().debug_assert();
        let mut missing = vec![];
        walk(&cmd, "linkwatch", &mut missing);
        assert!(missing.is_empty(), "no help text: {}", missing.join(", "));
    }
}
