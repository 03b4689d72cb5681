//! The agent daemon: decides which links to watch (declared and discovered),
//! runs one worker per link, routes the host's events to them (carrier,
//! presence, default route), serves status and metrics, reloads on SIGHUP and
//! stops cleanly on SIGTERM.
//!
//! This file is the daemon's edge (checks at start, the status listener,
//! signals, the durable record); the loop itself acts on the system only
//! through a [`Host`] and probes only through a [`Prober`], so it runs the
//! same against the real system and against the simulation tests' fakes.
//! `run/state.rs` holds the loop's state and its reactions to the host,
//! `run/choice.rs` the choice of link, acted on, `run/book.rs` the links'
//! facts the choice is made on, and `run/main_loop.rs` the loop.

mod book;
mod choice;
mod main_loop;
mod state;

#[cfg(test)]
mod sim_tests;

use crate::agent::host::{Host, SystemHost};
use crate::agent::links;
use crate::agent::policy::PolicyParams;
use crate::agent::probe::{NetProber, Prober};
use crate::agent::report::Reporting;
use crate::agent::routes;
use crate::agent::status::{self, Control, Shared};
use crate::config::agent::{AgentConfig, DiscoverySection, FailoverMode, LinkPlan};
use crate::shared::time::Clock;
use crate::wire::LinkKind;
use main_loop::{Inputs, Signal};
use state::Agent;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{error, info};

pub use crate::agent::host::has_net_admin;

/// Where the kernel lists interfaces.
pub const SYS_CLASS_NET: &str = "/sys/class/net";

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Status(#[from] status::StatusError),
    #[error("cannot install signal handler: {0}")]
    Signal(#[source] std::io::Error),
    #[error(
        "failover.mode = \"routes\" needs CAP_NET_ADMIN: run as root, or under systemd add the drop-in systemd/linkwatch-agent.service.d/routes.conf, or set failover.mode = \"observe\""
    )]
    NoNetAdmin,
    #[error("not starting: {0}")]
    Token(#[source] crate::agent::upload::UploadError),
    #[error("cannot take over the default routes: {0}")]
    Routes(#[from] routes::RouteError),
}

fn policy_params(cfg: &AgentConfig) -> PolicyParams {
    let f = &cfg.failover;
    PolicyParams {
        hold_down: f.hold_down,
        hold_down_max: f.hold_down_max,
        flap_window: f.flap_window,
        sticky: f.sticky,
        fresh_for: crate::agent::evidence::fresh_for(&cfg.health),
        first_choice_wait: first_choice_wait(&cfg.health),
    }
}

/// How long the first choice may wait for a better link's first round: the
/// probe timeout before any RTT is measured, and a second for the round to
/// be scheduled and reported.
fn first_choice_wait(h: &crate::config::agent::HealthSection) -> std::time::Duration {
    crate::agent::health::first_timeout(h.timeout_min, h.timeout_max)
        + std::time::Duration::from_secs(1)
}

/// Every link the agent should watch under `cfg`: declared links first, then
/// discovered ones not declared.
pub fn plan_links(cfg: &AgentConfig, sys_class_net: &Path) -> Vec<LinkPlan> {
    plan_links_with(cfg, &|d| links::discover(sys_class_net, d), &|n| {
        links::classify(sys_class_net, n)
    })
}

/// [`plan_links`] with discovery and classification supplied (by a [`Host`]).
fn plan_links_with(
    cfg: &AgentConfig,
    discover: &dyn Fn(&DiscoverySection) -> Vec<(String, LinkKind)>,
    classify: &dyn Fn(&str) -> links::Classification,
) -> Vec<LinkPlan> {
    let mut plans: BTreeMap<String, LinkPlan> = BTreeMap::new();
    let discovered = if cfg.discovery.enabled {
        discover(&cfg.discovery)
    } else {
        vec![]
    };
    for link in &cfg.links {
        let kind = discovered
            .iter()
            .find(|(n, _)| n == &link.name)
            .map(|(_, k)| *k)
            .or_else(|| match classify(&link.name) {
                links::Classification::Uplink(k) => Some(k),
                links::Classification::Skip(_) => None,
            })
            .unwrap_or(LinkKind::Broadband);
        plans.insert(link.name.clone(), cfg.plan_for(link, kind));
    }
    if cfg.links.is_empty() || cfg.discovery.enabled {
        for (name, kind) in discovered {
            plans
                .entry(name.clone())
                .or_insert_with(|| cfg.plan_discovered(&name, kind));
        }
    }
    plans.into_values().collect()
}

/// Run the agent until SIGTERM or SIGINT.
pub async fn run(cfg: AgentConfig, config_path: &Path) -> Result<(), AgentError> {
    let prober = Arc::new(NetProber::with_payload(cfg.health.icmp_payload));
    run_with(cfg, config_path, prober, SYS_CLASS_NET).await
}

/// [`run`] with the prober and the sysfs root chosen by the caller.
pub async fn run_with(
    cfg: AgentConfig,
    config_path: &Path,
    prober: Arc<dyn Prober>,
    sys_class_net: &str,
) -> Result<(), AgentError> {
    use tokio::signal::unix::{SignalKind, signal};
    let host: Arc<dyn Host> = Arc::new(SystemHost::new(sys_class_net));
    let hostname = cfg
        .agent
        .device_name
        .clone()
        .or_else(|| sysinfo::System::host_name().ok())
        .unwrap_or_else(|| "unknown".into());
    // Uploading without a token would record nothing useful for anyone: refuse.
    crate::agent::upload::check_token(&cfg.upload).map_err(AgentError::Token)?;
    if cfg.failover.mode == FailoverMode::Routes && !cfg.failover.dry_run && !host.can_admin_net() {
        return Err(AgentError::NoNetAdmin);
    }
    let clock = Clock::new();
    let shared = Shared::new(hostname.clone(), clock);
    let listener = status::bind(cfg.agent.status_listen).await?;
    info!(device = %hostname, listen = %cfg.agent.status_listen, version = env!("CARGO_PKG_VERSION"),
          "agent starting");
    let mut sigterm = signal(SignalKind::terminate()).map_err(AgentError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(AgentError::Signal)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(AgentError::Signal)?;
    let (signals_tx, signals) = mpsc::unbounded_channel();
    let signaller = tokio::spawn(async move {
        loop {
            let s = tokio::select! {
                _ = sighup.recv() => Signal::Reload,
                _ = sigterm.recv() => Signal::Stop("SIGTERM"),
                _ = sigint.recv() => Signal::Stop("SIGINT"),
            };
            if signals_tx.send(s).is_err() {
                break;
            }
        }
    });

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (control_tx, control) = mpsc::unbounded_channel::<Control>();
    let server = tokio::spawn(status::serve(listener, shared.clone(), control_tx, async {
        let _ = stop_rx.await;
    }));

    let mut agent = Agent::new(
        cfg,
        config_path,
        host,
        prober,
        shared,
        clock,
        hostname.clone(),
    );
    // The durable record: everything from here on is spooled first.
    let only_metered: Arc<dyn Fn() -> bool + Send + Sync> = {
        let flag = agent.only_metered.clone();
        Arc::new(move || flag.load(Ordering::Relaxed))
    };
    let reporting = match Reporting::start(&agent.cfg, &hostname, only_metered).await {
        Ok(r) => {
            agent.recorder = r.recorder.clone();
            Some(r)
        }
        Err(e) => {
            error!("NOT RECORDING: cannot open the spool ({e}); measuring and failover go on");
            None
        }
    };
    let result = match agent.start().await {
        Ok(()) => {
            let inputs = Inputs { control, signals };
            agent.run_loop(inputs, reporting).await;
            Ok(())
        }
        Err(e) => Err(e),
    };
    signaller.abort();
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    if result.is_ok() {
        info!("agent stopped cleanly");
    }
    result
}
