//! The agent-side subcommands: `agent` (the daemon), `status` and `prefer`
//! (ask the running agent), `check` (probe every link now) and `validate`
//! (an agent config, or a collector config with `--collector`).

use super::{Times, runtime};
use anyhow::{Context, Result, bail};
use linkwatch::agent;
use linkwatch::config::agent::AgentConfig;
use linkwatch::shared::logging::{self, LogFormat};
use linkwatch::wire::AgentStatus;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

const DEFAULT_CONFIG: &str = "/etc/linkwatch/agent.toml";
#[cfg(feature = "collector")]
const DEFAULT_COLLECTOR_CONFIG: &str = "/etc/linkwatch/collector.toml";

/// The agent's config file.
#[derive(clap::Args)]
pub struct ConfigArg {
    /// Agent config file.
    #[arg(long, short, default_value = DEFAULT_CONFIG, env = "LINKWATCH_CONFIG")]
    config: PathBuf,
}

#[derive(clap::Args)]
pub struct AgentArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Log format: auto (journald under systemd, text otherwise), text, json, journald.
    #[arg(long)]
    log_format: Option<LogFormat>,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// One JSON object: `online`, `links`, `failover` and `record` (times in RFC 3339).
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// One JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Timeout of each probe.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    timeout: Duration,
}

#[derive(clap::Args)]
pub struct PreferArgs {
    /// The link to prefer.
    #[arg(required_unless_present = "auto", conflicts_with = "auto")]
    link: Option<String>,
    /// Drop the preference: the policy chooses again.
    #[arg(long)]
    auto: bool,
    #[command(flatten)]
    config: ConfigArg,
}

#[derive(clap::Args)]
pub struct ValidateArgs {
    /// Config file to check (default: /etc/linkwatch/agent.toml, or
    /// /etc/linkwatch/collector.toml with --collector).
    #[arg(long, short, env = "LINKWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// The file is a collector config (also assumed when it has a [collector] table).
    #[arg(long)]
    collector: bool,
}

fn load(path: &Path) -> Result<AgentConfig> {
    Ok(AgentConfig::load(path)?)
}

pub fn agent(a: AgentArgs) -> Result<ExitCode> {
    let path = a.config.config;
    let cfg = load(&path)?;
    logging::init(
        a.log_format.unwrap_or(cfg.agent.log_format),
        &cfg.agent.log_level,
    );
    // One thread is plenty for an I/O-bound daemon and keeps its memory
    // small (the footprint target is a few MB).
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(agent::run::run(cfg, &path))?;
    Ok(ExitCode::SUCCESS)
}

pub fn status(a: StatusArgs, times: &Times) -> Result<ExitCode> {
    let url = format!("http://{}/status", status_addr(&a.config.config)?);
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
            format!(
                "cannot reach the agent at {url}: is `linkwatch agent` running with this config?"
            )
        })?;
    let status: AgentStatus = serde_json::from_slice(&body).with_context(|| {
        format!("the agent at {url} answered something that is not a status document")
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render_status(&status, times));
    }
    Ok(if status.online {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub fn check(a: CheckArgs) -> Result<ExitCode> {
    let cfg = load(&a.config.config)?;
    logging::init(LogFormat::Text, "warn");
    let plans = agent::run::plan_links(&cfg, Path::new(agent::run::SYS_CLASS_NET));
    let prober = agent::probe::NetProber::with_payload(cfg.health.icmp_payload);
    let report = runtime()?.block_on(agent::check::check_all(
        &prober,
        &plans,
        Path::new(agent::run::SYS_CLASS_NET),
        a.timeout,
    ));
    if a.json {
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

pub fn prefer(a: PreferArgs) -> Result<ExitCode> {
    let url = format!("http://{}/prefer", status_addr(&a.config.config)?);
    let body = serde_json::to_vec(&agent::status::PreferRequest {
        link: if a.auto { None } else { a.link },
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
            format!(
                "cannot reach the agent at {url}: is `linkwatch agent` running with this config?"
            )
        })?;
    if !code.is_success() {
        bail!("the agent refused: {text}");
    }
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// Does the file at `path` look like a collector config (a `[collector]` table)?
fn is_collector_config(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .is_some_and(|t| t.contains_key("collector"))
}

pub fn validate(a: ValidateArgs) -> Result<ExitCode> {
    #[cfg(feature = "collector")]
    {
        let path = a.config.clone().unwrap_or_else(|| {
            PathBuf::from(if a.collector {
                DEFAULT_COLLECTOR_CONFIG
            } else {
                DEFAULT_CONFIG
            })
        });
        if a.collector || is_collector_config(&path) {
            return super::collector::validate(&path);
        }
    }
    #[cfg(not(feature = "collector"))]
    {
        let path = a
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
        if a.collector || is_collector_config(&path) {
            bail!(
                "{}: this linkwatch is the agent-only build and cannot check a collector \
                 config: run `linkwatch validate --collector` on the collector",
                path.display()
            );
        }
    }
    let config = a.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let cfg = load(&config)?;
    // Uploads need the token: the agent refuses to start without it.
    agent::upload::check_token(&cfg.upload).with_context(|| format!("{}", config.display()))?;
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
    match (&cfg.upload.collector_url, &cfg.upload.token_file) {
        (Some(url), Some(token)) => println!(
            "upload: to {url} as device `{}` (token file {} readable)",
            cfg.agent
                .device_name
                .clone()
                .or_else(|| sysinfo::System::host_name().ok())
                .unwrap_or_else(|| "unknown".into()),
            token.display()
        ),
        _ => println!("upload: off (no upload.collector_url): records stay in the spool"),
    }
    // Which failover mode would apply, and why (asks NetworkManager for auto
    // and networkmanager).
    let names: Vec<String> = plans.iter().map(|p| p.name.clone()).collect();
    let nm = agent::nm::dbus::DbusNm::new();
    let (choice, lines) = runtime()?.block_on(agent::nm::describe(cfg.failover.mode, &nm, &names));
    println!("failover: {} ({})", choice.mode, choice.reason);
    if let Some(e) = &choice.error {
        println!("  warning: {e}");
    }
    for l in lines {
        println!("  {l}");
    }
    Ok(ExitCode::SUCCESS)
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

/// `3h 12m` style age; `-` for none.
fn age(secs: Option<u64>) -> String {
    match secs {
        None => "-".into(),
        Some(s) => humantime::format_duration(Duration::from_secs(s)).to_string(),
    }
}

fn render_status(s: &AgentStatus, times: &Times) -> String {
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
        let _ = writeln!(out, "  {link} becomes eligible at {}", times.rfc3339(at));
    }
    for line in agent::nm::mode::status_lines(f) {
        let _ = writeln!(out, "{line}");
    }
    let r = &s.record;
    let _ = writeln!(
        out,
        "spool: {} records unsent ({} bytes), oldest unsent {}",
        r.depth,
        r.bytes,
        match r.oldest_unsent_age_s {
            Some(_) => format!("{} ago", age(r.oldest_unsent_age_s)),
            None => "-".into(),
        }
    );
    if r.upload_enabled {
        let _ = writeln!(
            out,
            "upload: last success {}; last error {}",
            r.last_upload
                .as_deref()
                .map(|t| times.rfc3339(t))
                .unwrap_or_else(|| "never".into()),
            r.last_error.as_deref().unwrap_or("none")
        );
    } else {
        let _ = writeln!(
            out,
            "upload: off (no upload.collector_url): records stay in the spool"
        );
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
            times.rfc3339(&l.since)
        );
        for w in &l.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
    }
    out
}
