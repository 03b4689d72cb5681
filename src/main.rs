//! The `linkwatch` command line: `agent` (the daemon), `status` (ask a running
//! agent), `check` (probe every link once, now); on the collector side
//! `collector` (the daemon), `device add|list|revoke|import` (the registry,
//! straight on the collector's database), `token add|list|revoke` (API tokens
//! of the read API, likewise) and `report` (uptime reports, also straight on
//! the database).

mod alerts_cmd;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use linkwatch::agent;
use linkwatch::config::agent::AgentConfig;
use linkwatch::config::collector::CollectorConfig;
use linkwatch::shared::logging::{self, LogFormat};
use linkwatch::wire::AgentStatus;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT_CONFIG: &str = "/etc/linkwatch/agent.toml";

#[derive(Parser)]
#[command(
    name = "linkwatch",
    version,
    about = "Measure every link through that link; keep officers online."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent daemon (SIGHUP reloads the config, SIGTERM stops cleanly).
    Agent {
        #[arg(long, short, default_value = DEFAULT_CONFIG, env = "LINKWATCH_CONFIG")]
        config: PathBuf,
        /// Log format: auto (journald under systemd, text otherwise), text, json, journald.
        #[arg(long)]
        log_format: Option<LogFormat>,
    },
    /// Show the running agent's view of every link.
    Status {
        #[arg(long, short, default_value = DEFAULT_CONFIG, env = "LINKWATCH_CONFIG")]
        config: PathBuf,
        /// One JSON object: `online` and `links`.
        #[arg(long)]
        json: bool,
    },
    /// Run every probe once on every link and say what worked and why not.
    /// Exits 1 when no link reaches the internet.
    Check {
        #[arg(long, short, default_value = DEFAULT_CONFIG, env = "LINKWATCH_CONFIG")]
        config: PathBuf,
        #[arg(long)]
        json: bool,
        /// Timeout of each probe.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        timeout: Duration,
    },
    /// Prefer a link for the default route while it is online (`--auto`: let
    /// the policy choose again). Shown in `status`.
    Prefer {
        /// The link to prefer.
        #[arg(required_unless_present = "auto", conflicts_with = "auto")]
        link: Option<String>,
        #[arg(long)]
        auto: bool,
        #[arg(long, short, default_value = DEFAULT_CONFIG, env = "LINKWATCH_CONFIG")]
        config: PathBuf,
    },
    /// Check a config file and print the links it would watch.
    Validate {
        #[arg(long, short, default_value = DEFAULT_CONFIG, env = "LINKWATCH_CONFIG")]
        config: PathBuf,
    },
    /// Run the collector daemon (SIGTERM stops cleanly). Without --config:
    /// SQLite file `linkwatch-collector.db` in the current directory, plain
    /// HTTP on 127.0.0.1:8080.
    Collector {
        #[command(flatten)]
        config: CollectorConfigArg,
        /// Log format: auto (journald under systemd, text otherwise), text, json, journald.
        #[arg(long)]
        log_format: Option<LogFormat>,
    },
    /// Open and recent alerts; acknowledge one. Works directly on the
    /// collector's database.
    Alerts {
        #[command(subcommand)]
        command: alerts_cmd::AlertsCommand,
    },
    /// Register, list and revoke devices; import the office hierarchy. Works
    /// directly on the collector's database (`database` of the collector config).
    Device {
        #[command(subcommand)]
        command: DeviceCommand,
    },
    /// Make, list and revoke API tokens for the read API (reports, timelines,
    /// outages; admin tokens also list and revoke devices). Works directly on
    /// the collector's database, as `device` does.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Uptime report over a window, straight from the collector's database:
    /// per device, office, upazila, district or division, within a schedule.
    /// Bad parameters exit 2 naming the parameter.
    Report {
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
        config: CollectorConfigArg,
    },
}

/// One branch of the hierarchy (at most one of these flags).
#[derive(clap::Args, Default)]
#[group(multiple = false)]
struct BranchArgs {
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
enum TokenRole {
    /// Reports, timelines and outages.
    Read,
    /// As read, plus listing and revoking devices.
    Admin,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make an API token and print it, once: the collector keeps only a hash.
    Add {
        /// A name for the token (who holds it), e.g. `dhaka-district-it`.
        name: String,
        #[arg(long, value_enum)]
        role: TokenRole,
        /// Limit the token to one branch of the hierarchy (default: all of it).
        #[command(flatten)]
        branch: BranchArgs,
        #[command(flatten)]
        output: TokenOutput,
        #[command(flatten)]
        config: CollectorConfigArg,
    },
    /// List the API tokens (never the tokens themselves).
    List {
        #[command(flatten)]
        config: CollectorConfigArg,
    },
    /// Revoke an API token: it is refused (401) from now on.
    Revoke {
        name: String,
        #[command(flatten)]
        config: CollectorConfigArg,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ReportFormat {
    Table,
    Json,
    Csv,
}

/// The collector's config file; none means the embedded default.
#[derive(clap::Args)]
struct CollectorConfigArg {
    /// Collector config file (default: the embedded default, SQLite in the current directory).
    #[arg(long, short, env = "LINKWATCH_COLLECTOR_CONFIG")]
    config: Option<PathBuf>,
}

impl CollectorConfigArg {
    fn load(&self) -> Result<CollectorConfig> {
        Ok(match &self.config {
            Some(p) => CollectorConfig::load(p)?,
            None => CollectorConfig::embedded(),
        })
    }
}

/// Where a new token goes: standard output, or a new private file.
#[derive(clap::Args)]
struct TokenOutput {
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

#[derive(Subcommand)]
enum DeviceCommand {
    /// Register a device and print its token, once: the collector keeps only a hash.
    Add {
        /// The device's name, as its agent sends it (default there: the host name).
        name: String,
        /// Office code from the imported hierarchy.
        #[arg(long)]
        office: Option<String>,
        #[command(flatten)]
        output: TokenOutput,
        #[command(flatten)]
        config: CollectorConfigArg,
    },
    /// List the registered devices, with when each was last heard from.
    List {
        /// JSON (an array) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        config: CollectorConfigArg,
    },
    /// Revoke a device's token: its uploads are refused (403) from now on.
    Revoke {
        name: String,
        #[command(flatten)]
        config: CollectorConfigArg,
    },
    /// Import offices: CSV with header code,name,division,district,upazila and
    /// optionally hours (the office's own hours, e.g.
    /// office:Asia/Dhaka:sun-thu:08:00-16:00), or TOML with [[office]] tables
    /// (by file extension). Existing codes are updated.
    Import {
        file: PathBuf,
        #[command(flatten)]
        config: CollectorConfigArg,
    },
}

fn load(path: &Path) -> Result<AgentConfig> {
    Ok(AgentConfig::load(path)?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("linkwatch: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

fn real_main(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Collector { config, log_format } => {
            // Still the only thread.
            linkwatch::collector::server::return_large_allocations();
            let cfg = config.load()?;
            logging::init(
                log_format.unwrap_or(cfg.collector.log_format),
                &cfg.collector.log_level,
            );
            if config.config.is_none() {
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
        Command::Alerts { command } => alerts_cmd::run(command),
        Command::Device { command } => device_command(command),
        Command::Token { command } => token_command(command),
        Command::Report {
            from,
            to,
            by,
            schedule,
            target,
            format,
            limit,
            branch,
            config,
        } => {
            use linkwatch::collector::report;
            let raw = report::RawQuery {
                from: Some(&from),
                to: Some(&to),
                by: Some(&by),
                schedule: Some(&schedule),
                target: target.as_deref(),
                limit: limit.as_deref(),
                division: branch.division.as_deref(),
                district: branch.district.as_deref(),
                upazila: branch.upazila.as_deref(),
                office: branch.office.as_deref(),
            };
            let q = report::ReportQuery::parse(&raw)
                .map_err(|e| anyhow::anyhow!("--{}: {}", e.field, e.message))?;
            let config = config.load()?;
            // The collector's holidays, as its API and roll-ups apply them.
            let q = report::ReportQuery {
                schedule: q.schedule.with_holidays(config.holidays.clone()),
                ..q
            };
            logging::init(LogFormat::Text, "warn");
            let url = config.collector.database.clone();
            let r = runtime()?.block_on(async {
                let store = linkwatch::collector::store::open(&url)
                    .await
                    .with_context(|| format!("collector database of {}", config.path.display()))?;
                match report::run_report(store.as_ref(), &q, None, now_ms()).await {
                    Err(report::ReportError::Param(e)) => {
                        Err(anyhow::anyhow!("--{}: {}", e.field, e.message))
                    }
                    r => anyhow::Ok(r?),
                }
            })?;
            print!(
                "{}",
                match format {
                    ReportFormat::Table => report::render_table(&r),
                    ReportFormat::Json => report::render_json(&r),
                    ReportFormat::Csv => report::render_csv(&r),
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Agent { config, log_format } => {
            let cfg = load(&config)?;
            logging::init(
                log_format.unwrap_or(cfg.agent.log_format),
                &cfg.agent.log_level,
            );
            // One thread is plenty for an I/O-bound daemon and keeps its
            // memory small (the footprint target is a few MB).
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?
                .block_on(agent::run::run(cfg, &config))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { config, json } => {
            let url = format!("http://{}/status", status_addr(&config)?);
            let body = runtime()?
                .block_on(async {
                    let client = reqwest::Client::builder()
                        .no_proxy()
                        .timeout(Duration::from_secs(5))
                        .build()?;
                    let resp = client.get(&url).send().await?.error_for_status()?;
                    resp.bytes().await
                })
                .with_context(|| {
                    format!("cannot reach the agent at {url}: is `linkwatch agent` running with this config?")
                })?;
            let status: AgentStatus = serde_json::from_slice(&body).with_context(|| {
                format!("the agent at {url} answered something that is not a status document")
            })?;
            if json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", render_status(&status));
            }
            Ok(if status.online {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Check {
            config,
            json,
            timeout,
        } => {
            let cfg = load(&config)?;
            logging::init(LogFormat::Text, "warn");
            let plans = agent::run::plan_links(&cfg, Path::new(agent::run::SYS_CLASS_NET));
            let prober = agent::probe::NetProber::with_payload(cfg.health.icmp_payload);
            let report = runtime()?.block_on(agent::check::check_all(
                &prober,
                &plans,
                Path::new(agent::run::SYS_CLASS_NET),
                timeout,
            ));
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", agent::check::render(&report));
            }
            Ok(if report.online {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Prefer { link, auto, config } => {
            let url = format!("http://{}/prefer", status_addr(&config)?);
            let body = serde_json::to_vec(&agent::status::PreferRequest {
                link: if auto { None } else { link },
            })?;
            let (code, text) = runtime()?
                .block_on(async {
                    let client = reqwest::Client::builder()
                        .no_proxy()
                        .timeout(Duration::from_secs(5))
                        .build()?;
                    let resp = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await?;
                    let code = resp.status();
                    Ok::<_, reqwest::Error>((code, resp.text().await?))
                })
                .with_context(|| {
                    format!("cannot reach the agent at {url}: is `linkwatch agent` running with this config?")
                })?;
            if !code.is_success() {
                bail!("the agent refused: {text}");
            }
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { config } => {
            let cfg = load(&config)?;
            let plans = agent::run::plan_links(&cfg, Path::new(agent::run::SYS_CLASS_NET));
            println!("{}: valid", config.display());
            if plans.is_empty() {
                bail!("no links would be watched: declare [[link]] entries or enable [discovery]");
            }
            for p in &plans {
                println!(
                    "  {} ({}, priority {}, {}metered, quorum {}): {} probes",
                    p.name,
                    p.kind,
                    p.priority,
                    if p.metered { "" } else { "not " },
                    p.quorum,
                    p.probes.len()
                );
            }
            // Which failover mode would apply, and why (asks NetworkManager for auto and
            // networkmanager).
            let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
            let nm = agent::nm::dbus::DbusNm::new();
            let (choice, lines) =
                runtime()?.block_on(agent::nm::describe(cfg.failover.mode, &nm, &names));
            println!("failover: {} ({})", choice.mode, choice.reason);
            if let Some(e) = &choice.error {
                println!("  warning: {e}");
            }
            for l in lines {
                println!("  {l}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn device_command(command: DeviceCommand) -> Result<ExitCode> {
    use linkwatch::collector::{devices, store};
    let config = match &command {
        DeviceCommand::Add { config, .. }
        | DeviceCommand::List { config, .. }
        | DeviceCommand::Revoke { config, .. }
        | DeviceCommand::Import { config, .. } => config.load()?,
    };
    logging::init(LogFormat::Text, "warn");
    let url = config.collector.database.clone();
    runtime()?.block_on(async move {
        let store = store::open(&url)
            .await
            .with_context(|| format!("collector database of {}", config.path.display()))?;
        match command {
            DeviceCommand::Add {
                name,
                office,
                output,
                ..
            } => {
                let file = output.open()?;
                let added =
                    devices::add_device(store.as_ref(), &name, office.as_deref(), now_ms()).await;
                let (device, token) = match added {
                    Ok(a) => a,
                    Err(e) => {
                        if let Some(p) = &output.output {
                            let _ = std::fs::remove_file(p);
                        }
                        return Err(e.into());
                    }
                };
                // The token alone on stdout or in its file, the explanation on stderr.
                let at = TokenOutput::give(file, &token)?;
                eprintln!(
                    "device `{}` registered{}. Its token is {at}: put it in the agent's \
                     upload.token_file now (mode 0600 or 0640). It is shown only this once; \
                     the collector stores only its SHA-256 hash (lost token: revoke and add \
                     again).",
                    device.name,
                    device
                        .office
                        .map(|o| format!(" in office {o}"))
                        .unwrap_or_default()
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
                print!("{}", render_list(&list, now_ms(), silence, json));
            }
            DeviceCommand::Revoke { name, .. } => {
                if !store.revoke_device(&name).await? {
                    bail!("no device named `{name}` (see `linkwatch device list`)");
                }
                println!("device `{name}` revoked: its token is refused from now on");
            }
            DeviceCommand::Import { file, .. } => {
                let n = devices::import_offices(store.as_ref(), &file).await?;
                println!("imported {n} offices from {}", file.display());
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn token_command(command: TokenCommand) -> Result<ExitCode> {
    use linkwatch::collector::access::Role;
    use linkwatch::collector::{devices, store};
    let config = match &command {
        TokenCommand::Add { config, .. }
        | TokenCommand::List { config }
        | TokenCommand::Revoke { config, .. } => config.load()?,
    };
    logging::init(LogFormat::Text, "warn");
    let url = config.collector.database.clone();
    runtime()?.block_on(async move {
        let store = store::open(&url)
            .await
            .with_context(|| format!("collector database of {}", config.path.display()))?;
        match command {
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
                    devices::add_api_token(store.as_ref(), &name, role, branch.get(), now_ms())
                        .await;
                let (t, token) = match added {
                    Ok(a) => a,
                    Err(e) => {
                        if let Some(p) = &output.output {
                            let _ = std::fs::remove_file(p);
                        }
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
                print!("{}", render_tokens(&list));
            }
            TokenCommand::Revoke { name, .. } => {
                if !store.revoke_api_token(&name).await? {
                    bail!("no API token named `{name}` (see `linkwatch token list`)");
                }
                println!("API token `{name}` revoked: it is refused from now on");
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn render_tokens(list: &[linkwatch::collector::store::ApiToken]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let branch = |t: &linkwatch::collector::store::ApiToken| {
        t.branch
            .as_ref()
            .map_or_else(|| "(all)".to_string(), |b| b.to_string())
    };
    let w = list.iter().map(|t| t.name.len()).max().unwrap_or(0).max(4);
    let wb = list
        .iter()
        .map(|t| branch(t).len())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(
        out,
        "{:<w$}  {:<5}  {:<wb$}  {:<7}  CREATED",
        "NAME", "ROLE", "BRANCH", "REVOKED"
    );
    for t in list {
        let created = std::time::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(t.created_at_ms).unwrap_or(0));
        let _ = writeln!(
            out,
            "{:<w$}  {:<5}  {:<wb$}  {:<7}  {}",
            t.name,
            t.role.as_str(),
            branch(t),
            if t.revoked { "yes" } else { "no" },
            humantime::format_rfc3339_seconds(created)
        );
    }
    if list.is_empty() {
        out.push_str("(no API tokens: make one with `linkwatch token add NAME --role read`)\n");
    }
    out
}

/// The status listener's address from the config. A config with errors (being
/// edited, say) must not stop IT staff from asking the running agent: fall back
/// to the `agent.status_listen` key alone, or the default.
fn status_addr(path: &Path) -> Result<std::net::SocketAddr> {
    match AgentConfig::load(path) {
        Ok(cfg) => Ok(cfg.agent.status_listen),
        Err(linkwatch::config::ConfigError::Read { .. }) if !path.exists() => {
            bail!("config file {} does not exist", path.display())
        }
        Err(e) => {
            eprintln!("linkwatch: warning: {e}");
            let default = linkwatch::config::agent::AgentSection::default().status_listen;
            let addr = std::fs::read_to_string(path)
                .ok()
                .and_then(|t| t.parse::<toml::Table>().ok())
                .and_then(|t| t.get("agent")?.get("status_listen")?.as_str()?.parse().ok())
                .unwrap_or(default);
            Ok(addr)
        }
    }
}

fn render_status(s: &AgentStatus) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}",
        s.hostname,
        if s.online { "ONLINE" } else { "OFFLINE" }
    );
    let f = &s.failover;
    let _ = writeln!(
        out,
        "route: {} ({} mode) - {}{}",
        f.chosen.as_deref().unwrap_or("none"),
        f.mode,
        f.reason,
        f.preferred
            .as_ref()
            .map(|p| format!(" [manual preference: {p}]"))
            .unwrap_or_default()
    );
    if let Some((link, at)) = &f.pending {
        let _ = writeln!(out, "  {link} becomes eligible at {at}");
    }
    for line in agent::nm::mode::status_lines(f) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "{:<12} {:<10} {:<9} {:<12} {:>9} {:>7}  {:<6} since",
        "LINK", "KIND", "STATE", "REASON", "RTT ms", "LOSS %", "ACTIVE"
    );
    for l in &s.links {
        let _ = writeln!(
            out,
            "{:<12} {:<10} {:<9} {:<12} {:>9} {:>7}  {:<6} {}",
            l.name,
            l.kind.to_string(),
            l.state.to_string(),
            l.reason.as_deref().unwrap_or("-"),
            l.rtt_ms.map(|r| format!("{r:.2}")).unwrap_or("-".into()),
            l.loss_pct.map(|r| format!("{r:.1}")).unwrap_or("-".into()),
            if l.active { "yes" } else { "" },
            l.since
        );
        for w in &l.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
    }
    out
}
