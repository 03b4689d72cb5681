//! The collector-side subcommands: `collector` (the daemon), and the ones that
//! work straight on its database: `device`, `office`, `token`, `report`; and
//! `validate --collector`.

use super::tables::{render_offices, render_tokens};
use super::{Times, now_ms, runtime};
use anyhow::{Context, Result, bail};
use linkwatch::collector::store::{self, Store};
use linkwatch::config::collector::CollectorConfig;
use linkwatch::shared::logging::{self, LogFormat};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct CollectorArgs {
    /// Collector config file (default: the embedded default, SQLite in the
    /// current directory, plain HTTP on 127.0.0.1:8080).
    #[arg(long, short, env = "LINKWATCH_COLLECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// Log format: auto (journald under systemd, text otherwise), text, json, journald.
    #[arg(long)]
    log_format: Option<LogFormat>,
}

/// The collector's config file, for the commands that open its database.
#[derive(clap::Args)]
pub struct DatabaseArgs {
    /// Collector config file naming the database (default: the embedded
    /// default, SQLite file `linkwatch-collector.db` in the current directory).
    #[arg(long, short, env = "LINKWATCH_COLLECTOR_CONFIG")]
    config: Option<PathBuf>,
    /// Without --config: create `linkwatch-collector.db` in the current
    /// directory when it does not exist (otherwise that is an error).
    #[arg(long)]
    create_database: bool,
}

impl DatabaseArgs {
    pub fn load(&self) -> Result<CollectorConfig> {
        Ok(match &self.config {
            Some(p) => CollectorConfig::load(p)?,
            None => CollectorConfig::embedded(),
        })
    }

    /// Open the collector's database. Without --config, a missing SQLite file
    /// is an error unless --create-database: running in the wrong directory
    /// must not quietly make an empty database.
    pub async fn open(&self, cfg: &CollectorConfig) -> Result<Arc<dyn Store>> {
        let url = &cfg.collector.database;
        if self.config.is_none()
            && !self.create_database
            && let Some(file) = store::sqlite_file(url)
            && !file.exists()
        {
            let cwd = std::env::current_dir().unwrap_or_default();
            bail!(
                "no collector database here: without --config the database is `{}` in the \
                 current directory ({}), and it does not exist. Give the collector's config \
                 (--config /etc/linkwatch/collector.toml or LINKWATCH_COLLECTOR_CONFIG), run in \
                 the collector's directory, or add --create-database to start a new one here",
                file.display(),
                cwd.display()
            );
        }
        store::open(url)
            .await
            .with_context(|| format!("collector database of {}", cfg.path.display()))
    }

    /// Load the configuration, log warnings only, open the database and run
    /// `work` on it (with the configuration) in a new runtime: what every database subcommand does.
    pub fn with_store<T>(
        &self,
        work: impl AsyncFnOnce(Arc<dyn Store>, &CollectorConfig) -> Result<T>,
    ) -> Result<T> {
        let config = self.load()?;
        logging::init(LogFormat::Text, "warn");
        runtime()?.block_on(async {
            let store = self.open(&config).await?;
            work(store, &config).await
        })
    }
}

/// One branch of the hierarchy (at most one of these flags).
#[derive(clap::Args, Default)]
#[group(multiple = false)]
pub struct BranchArgs {
    /// Only this division.
    #[arg(long, value_name = "DIVISION")]
    division: Option<String>,
    /// Only this district (`Division / District`, or the district alone when unique).
    #[arg(long, value_name = "DISTRICT")]
    district: Option<String>,
    /// Only this upazila (`Division / District / Upazila`, or the upazila alone when unique).
    #[arg(long, value_name = "UPAZILA")]
    upazila: Option<String>,
    /// Only this office (its code).
    #[arg(long, value_name = "CODE")]
    office: Option<String>,
}

impl BranchArgs {
    fn get(&self) -> Option<(linkwatch::collector::access::Level, &str)> {
        use linkwatch::collector::access::Level;
        [
            (Level::Division, &self.division),
            (Level::District, &self.district),
            (Level::Upazila, &self.upazila),
            (Level::Office, &self.office),
        ]
        .into_iter()
        .find_map(|(l, v)| v.as_deref().map(|v| (l, v)))
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum TokenRole {
    /// Reports, timelines and outages.
    Read,
    /// As read, plus listing and revoking devices.
    Admin,
}

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Make an API token and print it, once: the collector keeps only a hash.
    Add {
        /// A name for the token (who holds it), e.g. `dhaka-district-it`.
        name: String,
        /// What the token may do: read (reports) or admin (also devices).
        #[arg(long, value_enum)]
        role: TokenRole,
        /// Limit the token to one branch of the hierarchy (default: all of it).
        #[command(flatten)]
        branch: BranchArgs,
        #[command(flatten)]
        output: TokenOutput,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the API tokens (never the tokens themselves).
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke an API token: it is refused (401) from now on.
    Revoke {
        /// The token's name (see `linkwatch token list`).
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns for people (times in local time unless --utc).
    Table,
    /// One JSON document (times in RFC 3339).
    Json,
    /// CSV with a header line.
    Csv,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    /// Start: RFC 3339 (2026-11-29T09:00:00+06:00) or a date (midnight, Asia/Dhaka).
    #[arg(long)]
    from: String,
    /// End (exclusive), as --from.
    #[arg(long)]
    to: String,
    /// Grouping: device, office, upazila, district, division.
    #[arg(long, default_value = "office")]
    by: String,
    /// `office` (Asia/Dhaka, sun-thu, 09:00-17:00), `always`, or
    /// `office:TZ:DAYS:HH:MM-HH:MM`.
    #[arg(long, default_value = "office")]
    schedule: String,
    /// Target uptime in percent: rows say whether they meet it.
    #[arg(long)]
    target: Option<String>,
    /// Output: table, json or csv.
    #[arg(long, value_enum, default_value_t = ReportFormat::Table)]
    format: ReportFormat,
    /// Only the worst N rows.
    #[arg(long, value_name = "N")]
    limit: Option<String>,
    #[command(flatten)]
    branch: BranchArgs,
    #[command(flatten)]
    db: DatabaseArgs,
}

/// Where a new token goes: standard output, or a new private file.
#[derive(clap::Args)]
pub struct TokenOutput {
    /// Write the token to this new file (mode 0600, whatever the umask)
    /// instead of standard output. The file must not exist.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

impl TokenOutput {
    /// The file, made empty and private now: a path that cannot be written
    /// fails before a token is made.
    fn open(&self) -> Result<Option<(std::fs::File, &Path)>> {
        Ok(match &self.output {
            Some(p) => Some((
                linkwatch::shared::files::create_new_private(p)?,
                p.as_path(),
            )),
            None => None,
        })
    }

    /// The file made by `open` is removed again when no token came of it.
    fn abandon(&self) {
        if let Some(p) = &self.output {
            let _ = std::fs::remove_file(p);
        }
    }

    /// Hand the token over: into the file, or alone on standard output
    /// (`TOKEN=$(linkwatch device add ...)`). Returns where it went.
    fn give(file: Option<(std::fs::File, &Path)>, token: &str) -> Result<String> {
        match file {
            Some((f, p)) => {
                linkwatch::shared::files::write_secret(f, p, format!("{token}\n").as_bytes())?;
                Ok(format!("written to {} (mode 0600)", p.display()))
            }
            None => {
                println!("{token}");
                Ok("on the line above".into())
            }
        }
    }
}

#[derive(clap::Subcommand)]
pub enum DeviceCommand {
    /// Register a device and print its token, once: the collector keeps only a hash.
    Add {
        /// The device's name, as its agent sends it (agent.device_name, default there: the host name).
        name: String,
        /// Office code from the imported hierarchy.
        #[arg(long)]
        office: Option<String>,
        #[command(flatten)]
        output: TokenOutput,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// List the registered devices, with when each was last heard from.
    List {
        /// JSON (an array) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Issue a new token to an existing device (lost or leaked token): the old
    /// token is refused from now on, a revoked device is allowed again, and
    /// its history stays under the same name.
    Rotate {
        /// The device's name (see `linkwatch device list`).
        name: String,
        #[command(flatten)]
        output: TokenOutput,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Revoke a device's token: its uploads are refused (403) from now on.
    Revoke {
        /// The device's name (see `linkwatch device list`).
        name: String,
        #[command(flatten)]
        db: DatabaseArgs,
    },
    /// Import offices: CSV with header code,name,division,district,upazila and
    /// optionally hours (the office's own hours, e.g.
    /// office:Asia/Dhaka:sun-thu:08:00-16:00), or TOML with [[office]] tables
    /// (by file extension). Existing codes are updated.
    Import {
        /// The CSV or TOML file.
        file: PathBuf,
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

#[derive(clap::Subcommand)]
pub enum OfficeCommand {
    /// Show the imported hierarchy: division, district, upazila, then each
    /// office with its code, hours and number of devices.
    List {
        #[command(flatten)]
        db: DatabaseArgs,
    },
}

pub fn collector(a: CollectorArgs) -> Result<ExitCode> {
    // Still the only thread.
    linkwatch::collector::server::return_large_allocations();
    let cfg = match &a.config {
        Some(p) => CollectorConfig::load(p)?,
        None => CollectorConfig::embedded(),
    };
    logging::init(
        a.log_format.unwrap_or(cfg.collector.log_format),
        &cfg.collector.log_level,
    );
    if a.config.is_none() {
        tracing::info!(
            database = %cfg.collector.database,
            listen = %cfg.collector.listen,
            "no --config: using the embedded default"
        );
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(linkwatch::collector::server::run(cfg))?;
    Ok(ExitCode::SUCCESS)
}

/// `validate --collector`: the config, and what it would do.
pub fn validate(path: &Path) -> Result<ExitCode> {
    let cfg = CollectorConfig::load(path)?;
    let c = &cfg.collector;
    println!("{}: valid collector config", path.display());
    println!(
        "  listen: {} ({})",
        c.listen,
        if cfg.tls().is_some() {
            "TLS"
        } else {
            "plain HTTP"
        }
    );
    if let Some(w) = cfg.plain_http_warning() {
        println!("  warning: {w}");
    }
    match store::sqlite_file(&c.database) {
        Some(file) if file.exists() => println!("  database: SQLite {}", file.display()),
        Some(file) => println!(
            "  database: SQLite {} (does not exist yet: the collector creates it at its first start)",
            file.display()
        ),
        None => println!(
            "  database: {}",
            c.database
                .split_once('@')
                .map_or(c.database.as_str(), |(_, host)| host)
        ),
    }
    if !cfg.holidays.is_empty() {
        println!("  holidays: {}", cfg.holidays.len());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn device(command: DeviceCommand, times: &Times) -> Result<ExitCode> {
    use linkwatch::collector::devices;
    let db = match &command {
        DeviceCommand::Add { db, .. }
        | DeviceCommand::List { db, .. }
        | DeviceCommand::Rotate { db, .. }
        | DeviceCommand::Revoke { db, .. }
        | DeviceCommand::Import { db, .. } => db,
    };
    db.with_store(async |store, config| {
        match &command {
            DeviceCommand::Add {
                name,
                office,
                output,
                ..
            } => {
                let file = output.open()?;
                let added =
                    devices::add_device(store.as_ref(), name, office.as_deref(), now_ms()).await;
                let (device, token) = match added {
                    Ok(a) => a,
                    Err(e) => {
                        output.abandon();
                        return Err(e.into());
                    }
                };
                // The token alone on stdout or in its file, the explanation on stderr.
                let at = TokenOutput::give(file, &token)?;
                eprintln!(
                    "device `{}` registered{}. Its token is {at}: put it in the agent's \
                     upload.token_file now (mode 0600 or 0640), and set agent.device_name = \
                     \"{}\" unless that is the device's host name. It is shown only this once; \
                     the collector stores only its SHA-256 hash (lost token: `linkwatch device \
                     rotate {}`).",
                    device.name,
                    device
                        .office
                        .map(|o| format!(" in office {o}"))
                        .unwrap_or_default(),
                    device.name,
                    device.name
                );
            }
            DeviceCommand::List { json, .. } => {
                use linkwatch::collector::last_seen::{Silence, render_list};
                let list = store.list_devices().await?;
                let (interval_ms, grace_ms) = config.silence_ms();
                let silence = Silence {
                    interval_ms,
                    grace_ms,
                };
                let created = |ms: i64| times.ms(ms);
                print!("{}", render_list(&list, now_ms(), silence, *json, &created));
            }
            DeviceCommand::Rotate { name, output, .. } => {
                let file = output.open()?;
                let token = match devices::rotate_device(store.as_ref(), name).await {
                    Ok(Some(t)) => t,
                    Ok(None) => {
                        output.abandon();
                        bail!("no device named `{name}` (see `linkwatch device list`)");
                    }
                    Err(e) => {
                        output.abandon();
                        return Err(e.into());
                    }
                };
                let at = TokenOutput::give(file, &token)?;
                eprintln!(
                    "device `{name}` has a new token, {at}; its old token is refused from now \
                     on. Replace the agent's upload.token_file with it and send the agent \
                     SIGHUP (`systemctl reload linkwatch-agent`). It is shown only this once."
                );
            }
            DeviceCommand::Revoke { name, .. } => {
                if !store.revoke_device(name).await? {
                    bail!("no device named `{name}` (see `linkwatch device list`)");
                }
                println!(
                    "device `{name}` revoked: its token is refused from now on \
                     (`linkwatch device rotate {name}` gives it a new one)"
                );
            }
            DeviceCommand::Import { file, .. } => {
                let n = devices::import_offices(store.as_ref(), file).await?;
                println!("imported {n} offices from {}", file.display());
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn office(command: OfficeCommand) -> Result<ExitCode> {
    let OfficeCommand::List { db } = &command;
    db.with_store(async |store, _| {
        let offices = store.list_offices().await?;
        let devices = store.list_devices().await?;
        print!("{}", render_offices(&offices, &devices));
        Ok(ExitCode::SUCCESS)
    })
}

pub fn token(command: TokenCommand, times: &Times) -> Result<ExitCode> {
    use linkwatch::collector::access::Role;
    use linkwatch::collector::devices;
    let db = match &command {
        TokenCommand::Add { db, .. }
        | TokenCommand::List { db }
        | TokenCommand::Revoke { db, .. } => db,
    };
    db.with_store(async |store, _| {
        match &command {
            TokenCommand::Add {
                name,
                role,
                branch,
                output,
                ..
            } => {
                let role = match role {
                    TokenRole::Read => Role::Read,
                    TokenRole::Admin => Role::Admin,
                };
                let file = output.open()?;
                let added =
                    devices::add_api_token(store.as_ref(), name, role, branch.get(), now_ms())
                        .await;
                let (t, token) = match added {
                    Ok(a) => a,
                    Err(e) => {
                        output.abandon();
                        return Err(e.into());
                    }
                };
                // The token alone on stdout or in its file, the explanation on stderr.
                let at = TokenOutput::give(file, &token)?;
                eprintln!(
                    "API token `{}` ({} role, {}) made. The token is {at}: hand it over now. \
                     It is shown only this once; the collector stores only its SHA-256 hash \
                     (lost token: revoke and add again).",
                    t.name,
                    t.role,
                    t.branch
                        .map(|b| format!("limited to {b}"))
                        .unwrap_or_else(|| "whole hierarchy".into())
                );
            }
            TokenCommand::List { .. } => {
                let list = store.list_api_tokens().await?;
                print!("{}", render_tokens(&list, times));
            }
            TokenCommand::Revoke { name, .. } => {
                if !store.revoke_api_token(name).await? {
                    bail!("no API token named `{name}` (see `linkwatch token list`)");
                }
                println!("API token `{name}` revoked: it is refused from now on");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn report(a: ReportArgs, times: &Times) -> Result<ExitCode> {
    use linkwatch::collector::report;
    let raw = report::RawQuery {
        from: Some(&a.from),
        to: Some(&a.to),
        by: Some(&a.by),
        schedule: Some(&a.schedule),
        target: a.target.as_deref(),
        limit: a.limit.as_deref(),
        division: a.branch.division.as_deref(),
        district: a.branch.district.as_deref(),
        upazila: a.branch.upazila.as_deref(),
        office: a.branch.office.as_deref(),
    };
    let q = report::ReportQuery::parse(&raw)
        .map_err(|e| anyhow::anyhow!("--{}: {}", e.field, e.message))?;
    let config = a.db.load()?;
    // The collector's holidays, as its API and roll-ups apply them.
    let q = report::ReportQuery {
        schedule: q.schedule.with_holidays(config.holidays.clone()),
        ..q
    };
    logging::init(LogFormat::Text, "warn");
    let r = runtime()?.block_on(async {
        let store = a.db.open(&config).await?;
        match report::run_report(store.as_ref(), &q, None, now_ms()).await {
            Err(report::ReportError::Param(e)) => {
                Err(anyhow::anyhow!("--{}: {}", e.field, e.message))
            }
            r => anyhow::Ok(r?),
        }
    })?;
    print!(
        "{}",
        match a.format {
            ReportFormat::Table => report::render_table_in(&r, times.zone()),
            ReportFormat::Json => report::render_json(&r),
            ReportFormat::Csv => report::render_csv(&r),
        }
    );
    Ok(ExitCode::SUCCESS)
}
