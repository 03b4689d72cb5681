//! The `linkwatch` command line: `agent` (the daemon), `status` (ask a running
//! agent), `check` (probe every link once, now). The collector side arrives
//! with its own subcommands.

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use linkwatch::agent;
use linkwatch::config::agent::AgentConfig;
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
        Command::Agent { config, log_format } => {
            let cfg = load(&config)?;
            logging::init(
                log_format.unwrap_or(cfg.agent.log_format),
                &cfg.agent.log_level,
            );
            runtime()?.block_on(agent::run::run(cfg, &config))?;
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
            for p in plans {
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
            Ok(ExitCode::SUCCESS)
        }
    }
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
