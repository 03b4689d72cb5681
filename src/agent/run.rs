//! The agent daemon: decides which links to watch (declared and discovered),
//! runs one worker per link, routes netlink events to them (carrier, presence,
//! default route), serves status and metrics, reloads on SIGHUP and stops
//! cleanly on SIGTERM.

use crate::agent::links;
use crate::agent::netlink::{self, LinkEvent};
use crate::agent::probe::{NetProber, Prober};
use crate::agent::status::{self, Shared};
use crate::agent::worker::{LinkMsg, Worker};
use crate::config::agent::{AgentConfig, LinkPlan};
use crate::shared::time::Clock;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{Instrument, error, info, info_span, warn};

/// Where the kernel lists interfaces.
pub const SYS_CLASS_NET: &str = "/sys/class/net";

/// Errors that stop the agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Status(#[from] status::StatusError),
    #[error("cannot install signal handler: {0}")]
    Signal(#[source] std::io::Error),
}

/// Every link the agent should watch under `cfg`: declared links first, then
/// discovered ones not declared.
pub fn plan_links(cfg: &AgentConfig, sys_class_net: &Path) -> Vec<LinkPlan> {
    let mut plans: BTreeMap<String, LinkPlan> = BTreeMap::new();
    let discovered = if cfg.discovery.enabled {
        links::discover(sys_class_net, &cfg.discovery)
    } else {
        vec![]
    };
    for link in &cfg.links {
        let kind = discovered
            .iter()
            .find(|(n, _)| n == &link.name)
            .map(|(_, k)| *k)
            .or_else(|| match links::classify(sys_class_net, &link.name) {
                links::Classification::Uplink(k) => Some(k),
                links::Classification::Skip(_) => None,
            })
            .unwrap_or(crate::wire::LinkKind::Broadband);
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

struct Running {
    tx: mpsc::UnboundedSender<LinkMsg>,
    plan: LinkPlan,
}

struct Agent {
    cfg: AgentConfig,
    config_path: PathBuf,
    sys: PathBuf,
    prober: Arc<dyn Prober>,
    shared: Arc<Shared>,
    clock: Clock,
    workers: HashMap<String, Running>,
    /// Last carrier seen per interface name.
    carrier: HashMap<String, bool>,
    index: HashMap<u32, String>,
    active: Option<String>,
}

impl Agent {
    fn spawn(&mut self, plan: LinkPlan) {
        let (tx, rx) = mpsc::unbounded_channel();
        let span = info_span!("link", link = %plan.name, kind = %plan.kind);
        let w = Worker::new(
            plan.clone(),
            self.cfg.health.clone(),
            self.prober.clone(),
            self.shared.clone(),
            self.clock,
        );
        tokio::spawn(w.run(rx).instrument(span));
        info!(link = %plan.name, kind = %plan.kind, priority = plan.priority,
              metered = plan.metered, probes = plan.probes.len(), "watching link");
        // Until netlink says otherwise, a link we cannot see is absent.
        let present = self.carrier.contains_key(&plan.name);
        if !present {
            warn!(link = %plan.name, "interface does not exist (yet): shown as absent");
            let _ = tx.send(LinkMsg::Present(false));
        } else {
            let _ = tx.send(LinkMsg::Carrier(self.carrier[&plan.name]));
        }
        let _ = tx.send(LinkMsg::Active(self.active.as_deref() == Some(&plan.name)));
        self.workers.insert(plan.name.clone(), Running { tx, plan });
    }

    fn send(&self, name: &str, msg: LinkMsg) {
        if let Some(w) = self.workers.get(name) {
            let _ = w.tx.send(msg);
        }
    }

    /// Make the running set match the plans of the current config.
    fn apply_plans(&mut self) {
        let plans = plan_links(&self.cfg, &self.sys);
        let wanted: HashMap<String, LinkPlan> =
            plans.into_iter().map(|p| (p.name.clone(), p)).collect();
        let gone: Vec<String> = self
            .workers
            .keys()
            .filter(|n| !wanted.contains_key(*n))
            .cloned()
            .collect();
        for name in gone {
            if let Some(w) = self.workers.remove(&name) {
                let _ = w.tx.send(LinkMsg::Stop);
                self.shared.remove(&name);
                info!(link = %name, "no longer watching link");
            }
        }
        for (name, plan) in wanted {
            match self.workers.get_mut(&name) {
                Some(w) => {
                    if w.plan != plan {
                        w.plan = plan.clone();
                        let _ =
                            w.tx.send(LinkMsg::Reload(Box::new((plan, self.cfg.health.clone()))));
                    }
                }
                None => self.spawn(plan),
            }
        }
    }

    /// Re-read interfaces and routes from the kernel (at start, after events,
    /// and periodically to catch anything missed).
    async fn resync(&mut self) {
        match netlink::interfaces().await {
            Ok(ifaces) => {
                let mut seen = HashMap::new();
                self.index.clear();
                for i in &ifaces {
                    seen.insert(i.name.clone(), i.carrier);
                    self.index.insert(i.index, i.name.clone());
                }
                for name in self.workers.keys() {
                    match seen.get(name) {
                        Some(c) => {
                            self.send(name, LinkMsg::Carrier(*c));
                        }
                        None => self.send(name, LinkMsg::Present(false)),
                    }
                }
                for i in &ifaces {
                    if self.workers.contains_key(&i.name) {
                        let v6 = netlink::has_global_ipv6(i.index).await.unwrap_or(false);
                        self.send(&i.name, LinkMsg::Ipv6(v6));
                    }
                }
                let new_names = seen.keys().any(|n| !self.carrier.contains_key(n));
                self.carrier = seen;
                if new_names && self.cfg.discovery.enabled {
                    self.apply_plans();
                }
            }
            Err(e) => warn!("cannot list interfaces: {e}"),
        }
        self.refresh_active().await;
    }

    async fn refresh_active(&mut self) {
        match netlink::default_routes().await {
            Ok(routes) => {
                let carrier = self.carrier.clone();
                let active =
                    netlink::active_link(&routes, &|n: &str| *carrier.get(n).unwrap_or(&false));
                if active != self.active {
                    info!(from = ?self.active, to = ?active, "default route carrier changed");
                    if let Some(old) = &self.active {
                        self.send(old, LinkMsg::Active(false));
                    }
                    if let Some(new) = &active {
                        self.send(new, LinkMsg::Active(true));
                    }
                    self.active = active;
                }
            }
            Err(e) => warn!("cannot read routes: {e}"),
        }
    }

    async fn on_event(&mut self, ev: LinkEvent) {
        match ev {
            LinkEvent::Changed {
                name,
                index,
                carrier,
            } => {
                self.index.insert(index, name.clone());
                let known = self.carrier.insert(name.clone(), carrier).is_some();
                if self.workers.contains_key(&name) {
                    // Carrier first: this is the fast path to `down`.
                    self.send(&name, LinkMsg::Carrier(carrier));
                } else if !known && self.cfg.discovery.enabled {
                    self.apply_plans();
                }
                self.refresh_active().await;
            }
            LinkEvent::Removed { name, index } => {
                self.index.remove(&index);
                self.carrier.remove(&name);
                self.send(&name, LinkMsg::Present(false));
                self.refresh_active().await;
            }
            LinkEvent::RoutesChanged => self.refresh_active().await,
            LinkEvent::AddressesChanged { index } => {
                if let Some(name) = self.index.get(&index).cloned() {
                    let v6 = netlink::has_global_ipv6(index).await.unwrap_or(false);
                    self.send(&name, LinkMsg::Ipv6(v6));
                    self.send(&name, LinkMsg::Kick);
                }
            }
        }
    }

    fn reload(&mut self) {
        match AgentConfig::load(&self.config_path) {
            Ok(cfg) => {
                info!(path = %self.config_path.display(), "configuration reloaded");
                self.cfg = cfg;
                for w in self.workers.values_mut() {
                    // Thresholds may have changed even where the plan did not.
                    let _ = w.tx.send(LinkMsg::Reload(Box::new((
                        w.plan.clone(),
                        self.cfg.health.clone(),
                    ))));
                }
                self.apply_plans();
            }
            Err(e) => error!("configuration NOT reloaded, keeping the old one: {e}"),
        }
    }
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
    let hostname = cfg
        .agent
        .device_name
        .clone()
        .or_else(|| sysinfo::System::host_name().ok())
        .unwrap_or_else(|| "unknown".into());
    let shared = Shared::new(hostname.clone());
    let listener = status::bind(cfg.agent.status_listen).await?;
    info!(device = %hostname, listen = %cfg.agent.status_listen, version = env!("CARGO_PKG_VERSION"),
          "agent starting");
    let mut sigterm = signal(SignalKind::terminate()).map_err(AgentError::Signal)?;
    let mut sigint = signal(SignalKind::interrupt()).map_err(AgentError::Signal)?;
    let mut sighup = signal(SignalKind::hangup()).map_err(AgentError::Signal)?;

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(status::serve(listener, shared.clone(), async {
        let _ = stop_rx.await;
    }));

    let (ev_tx, mut ev_rx) = mpsc::unbounded_channel();
    let watcher = tokio::spawn(async move {
        if let Err(e) = netlink::watch(ev_tx).await {
            error!("netlink watcher stopped: {e}; falling back to polling every 5 s");
        }
    });

    let mut agent = Agent {
        cfg,
        config_path: config_path.to_path_buf(),
        sys: PathBuf::from(sys_class_net),
        prober,
        shared,
        clock: Clock::new(),
        workers: HashMap::new(),
        carrier: HashMap::new(),
        index: HashMap::new(),
        active: None,
    };
    // Learn the interfaces before the first plan so absent links are known.
    if let Ok(ifaces) = netlink::interfaces().await {
        for i in ifaces {
            agent.carrier.insert(i.name.clone(), i.carrier);
            agent.index.insert(i.index, i.name);
        }
    }
    agent.refresh_active().await;
    agent.apply_plans();
    agent.resync().await;
    if agent.workers.is_empty() {
        warn!("no links to watch: declare [[link]] entries or check [discovery]");
    }

    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            Some(ev) = ev_rx.recv() => agent.on_event(ev).await,
            _ = tick.tick() => agent.resync().await,
            _ = sighup.recv() => agent.reload(),
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
        }
    }
    for w in agent.workers.values() {
        let _ = w.tx.send(LinkMsg::Stop);
    }
    watcher.abort();
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    info!("agent stopped cleanly");
    Ok(())
}
