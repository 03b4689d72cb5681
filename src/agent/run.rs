//! The agent daemon: decides which links to watch (declared and discovered),
//! runs one worker per link, routes netlink events to them (carrier, presence,
//! default route), serves status and metrics, reloads on SIGHUP and stops
//! cleanly on SIGTERM. The choice of link, acted on, is in `run/choice.rs`.

mod choice;

use crate::agent::hooks::{HookEvent, Hooks};
use crate::agent::links;
use crate::agent::netlink::{self, LinkEvent};
use crate::agent::policy::{Cause, Policy, PolicyParams};
use crate::agent::probe::{NetProber, Prober};
use crate::agent::report::Reporting;
use crate::agent::routes;
use crate::agent::status::{self, Control, Shared};
use crate::agent::traffic::{CounterSource, Sysfs};
use crate::agent::worker::{LinkMsg, Note, StateNote, Worker, WorkerEnv};
use crate::config::agent::{AgentConfig, FailoverMode, LinkPlan};
use crate::shared::time::{Clock, Millis};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
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
    #[error(
        "failover.mode = \"routes\" needs CAP_NET_ADMIN: run as root, or under systemd add the drop-in systemd/linkwatch-agent.service.d/routes.conf, or set failover.mode = \"observe\""
    )]
    NoNetAdmin,
    #[error("not starting: {0}")]
    Token(#[source] crate::agent::upload::UploadError),
    #[error("cannot take over the default routes: {0}")]
    Routes(#[from] routes::RouteError),
}

/// Does this process hold CAP_NET_ADMIN (bit 12 of CapEff)?
pub fn has_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("CapEff:"))
                .and_then(|l| u64::from_str_radix(l[7..].trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

fn policy_params(cfg: &AgentConfig) -> PolicyParams {
    let f = &cfg.failover;
    PolicyParams {
        hold_down: f.hold_down,
        hold_down_max: f.hold_down_max,
        flap_window: f.flap_window,
        sticky: f.sticky,
        fresh_for: crate::agent::evidence::fresh_for(&cfg.health),
    }
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
    counters: Arc<dyn CounterSource>,
    shared: Arc<Shared>,
    clock: Clock,
    workers: HashMap<String, Running>,
    /// Last carrier seen per interface name.
    carrier: HashMap<String, bool>,
    index: HashMap<u32, String>,
    active: Option<String>,
    notes_tx: mpsc::UnboundedSender<Note>,
    policy: Policy,
    hooks: Hooks,
    chosen: Option<String>,
    switches: u64,
    /// When the policy wants to decide again (a link waiting out its hold-down).
    recheck: Option<tokio::time::Instant>,
    /// Last known gateway per link and address family (kept when DHCP's
    /// route vanishes for a while).
    gateways: routes::Gateways,
    last_order: Vec<String>,
    recorder: crate::agent::record::Recorder,
    /// Why the chosen link is the chosen one: the cause of the last change.
    last_cause: Cause,
    /// Confirmations asked of links: the time their clean round must not predate.
    confirm: HashMap<String, Millis>,
    /// The device's `online` as last logged, and when it may change by itself.
    online: bool,
    online_check: Option<tokio::time::Instant>,
    /// NetworkManager applies the decisions (`failover.mode` auto or networkmanager).
    nm: Option<crate::agent::nm::NmHandle>,
}

impl Agent {
    fn spawn(&mut self, plan: LinkPlan) {
        let (tx, rx) = mpsc::unbounded_channel();
        let span = info_span!("link", link = %plan.name, kind = %plan.kind);
        let w = Worker::new(
            plan.clone(),
            self.cfg.health.clone(),
            WorkerEnv {
                prober: self.prober.clone(),
                counters: self.counters.clone(),
                shared: self.shared.clone(),
                clock: self.clock,
                notes: self.notes_tx.clone(),
                recorder: self.recorder.clone(),
            },
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
        if self.chosen.as_deref() == Some(&plan.name) {
            let _ = tx.send(LinkMsg::Chosen(true));
        }
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

    fn routes_mode(&self) -> bool {
        self.cfg.failover.mode == FailoverMode::Routes
    }

    fn managed(&self, name: &str) -> bool {
        match &self.cfg.failover.manage {
            Some(m) => m.iter().any(|n| n == name),
            None => true,
        }
    }

    fn on_note(&mut self, n: StateNote) {
        self.hooks.fire(HookEvent::Link {
            link: n.link,
            kind: n.kind,
            old_state: n.from.to_string(),
            new_state: n.to.to_string(),
            reason: n.reason.unwrap_or_default(),
            active: self.chosen.clone(),
        });
    }

    /// Make the kernel's default routes match the last decision (also repairs
    /// routes removed behind the agent's back).
    async fn sync_routes(&mut self) {
        if !self.routes_mode() {
            return;
        }
        let order = self.last_order.clone();
        let cfg = &self.cfg;
        let configured = |n: &str, family: routes::Family| {
            let link = cfg.declared(n)?;
            match family {
                routes::Family::V4 => link.gateway.map(IpAddr::V4),
                routes::Family::V6 => link.gateway6.map(IpAddr::V6),
            }
        };
        routes::learn_gateways(&mut self.gateways, &order, &configured).await;
        let want = self.gateways.wanted(&order, self.cfg.failover.metric_base);
        let start = std::time::Instant::now();
        if self.cfg.failover.dry_run {
            match routes::own_routes().await {
                Ok(have) => {
                    for op in routes::plan(&have, &want) {
                        info!(op = %op, "dry run: would change route");
                    }
                }
                Err(e) => warn!("dry run: cannot read routes: {e}"),
            }
            return;
        }
        match routes::sync(&want).await {
            Ok(ops) => {
                if !ops.is_empty() {
                    let took = start.elapsed();
                    self.shared.metrics.route_apply.observe(took.as_secs_f64());
                    for op in &ops {
                        info!(op = %op, "route changed");
                    }
                    info!(took_us = took.as_micros() as u64, "routes in place");
                }
            }
            Err(e) => error!("cannot set routes: {e}"),
        }
    }

    fn on_control(&mut self, c: Control) -> bool {
        match c {
            Control::Prefer { link, reply } => {
                let msg = match &link {
                    Some(l) if !self.workers.contains_key(l) => {
                        let _ = reply.send(Err(format!(
                            "unknown link `{l}`: watched links are {}",
                            self.workers.keys().cloned().collect::<Vec<_>>().join(", ")
                        )));
                        return false;
                    }
                    Some(l) => format!("preferring {l} while it is online"),
                    None => "automatic choice again".to_string(),
                };
                info!(preferred = ?link, "manual preference changed");
                self.policy.prefer(link);
                let _ = reply.send(Ok(msg));
                true
            }
        }
    }

    fn reload(&mut self) {
        match AgentConfig::load(&self.config_path) {
            Ok(cfg) => {
                info!(path = %self.config_path.display(), "configuration reloaded");
                if cfg.failover.mode != self.cfg.failover.mode {
                    warn!("failover.mode changes take effect at the next start, not on reload");
                }
                let mode = self.cfg.failover.mode;
                self.cfg = cfg;
                self.cfg.failover.mode = mode;
                self.policy.set_params(policy_params(&self.cfg));
                self.hooks = Hooks::new(
                    self.cfg.failover.hook.clone(),
                    self.cfg.failover.hook_timeout,
                );
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

/// The agent's one-line state for `systemctl status`.
fn sd_status_line(agent: &Agent, recording: bool) -> String {
    let snap = agent.shared.snapshot();
    format!(
        "{}, {} links, route {}{}",
        if snap.online { "online" } else { "offline" },
        snap.links.len(),
        agent.chosen.as_deref().unwrap_or("none"),
        if recording { "" } else { ", NOT RECORDING" }
    )
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
    // Uploading without a token would record nothing useful for anyone: refuse.
    crate::agent::upload::check_token(&cfg.upload).map_err(AgentError::Token)?;
    if cfg.failover.mode == FailoverMode::Routes && !cfg.failover.dry_run && !has_net_admin() {
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

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (control_tx, mut control_rx) = mpsc::unbounded_channel::<Control>();
    let server = tokio::spawn(status::serve(listener, shared.clone(), control_tx, async {
        let _ = stop_rx.await;
    }));
    let (notes_tx, mut notes_rx) = mpsc::unbounded_channel::<Note>();

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
        counters: Arc::new(Sysfs::new(sys_class_net)),
        shared,
        clock,
        workers: HashMap::new(),
        carrier: HashMap::new(),
        index: HashMap::new(),
        active: None,
        notes_tx,
        policy: Policy::new(PolicyParams::default()),
        hooks: Hooks::new(None, Duration::from_secs(5)),
        chosen: None,
        switches: 0,
        recheck: None,
        gateways: routes::Gateways::default(),
        last_order: vec![],
        recorder: crate::agent::record::Recorder::disabled(),
        last_cause: Cause::Initial,
        confirm: HashMap::new(),
        online: false,
        online_check: None,
        nm: None,
    };
    // The durable record: everything from here on is spooled first.
    let only_metered: Arc<dyn Fn() -> bool + Send + Sync> = {
        let shared = agent.shared.clone();
        Arc::new(move || {
            let links = shared.links.read().unwrap_or_else(|e| e.into_inner());
            let online: Vec<_> = links.values().filter(|l| l.state.is_online()).collect();
            !online.is_empty() && online.iter().all(|l| l.plan.metered)
        })
    };
    let mut reporting = match Reporting::start(&agent.cfg, &hostname, only_metered).await {
        Ok(r) => {
            agent.recorder = r.recorder.clone();
            Some(r)
        }
        Err(e) => {
            error!("NOT RECORDING: cannot open the spool ({e}); measuring and failover go on");
            None
        }
    };
    agent.policy = Policy::new(policy_params(&agent.cfg));
    agent.policy.prefer(agent.cfg.failover.prefer.clone());
    agent.hooks = Hooks::new(
        agent.cfg.failover.hook.clone(),
        agent.cfg.failover.hook_timeout,
    );
    agent.nm = crate::agent::nm::control::start(&agent.cfg, agent.shared.clone()).await;
    if agent.routes_mode() && !agent.cfg.failover.dry_run {
        // A crash may have left our routes behind: start from a clean table.
        let n = routes::remove_all().await?;
        if n > 0 {
            warn!(routes = n, "removed default routes left by an earlier run");
        }
    }
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
    if let Some(r) = &reporting {
        let plans: Vec<LinkPlan> = agent.workers.values().map(|w| w.plan.clone()).collect();
        r.facts(&hostname, &plans);
    }
    let mut heartbeat = tokio::time::interval(agent.cfg.upload.heartbeat);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if agent.routes_mode() {
        for name in agent.workers.keys().filter(|n| agent.managed(n)) {
            if let Err(e) = routes::set_ignore_linkdown(name) {
                warn!(link = %name, "cannot set ignore_routes_with_linkdown: {e}");
            }
        }
    }

    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Under systemd: ready now, then watchdog pings from this loop (a stuck
    // loop gets the service restarted) and the state as its status line.
    let mut watchdog = crate::shared::sd::watchdog_interval().map(tokio::time::interval);
    let mut sd_status = sd_status_line(&agent, reporting.is_some());
    crate::shared::sd::ready(&sd_status);
    loop {
        let recheck = agent.recheck;
        let online_check = agent.online_check;
        tokio::select! {
            Some(ev) = ev_rx.recv() => {
                let routes_event = matches!(ev, LinkEvent::RoutesChanged | LinkEvent::Changed { .. });
                agent.on_event(ev).await;
                if routes_event {
                    agent.sync_routes().await;
                    if let Some(nm) = &agent.nm {
                        nm.poke();
                    }
                }
            }
            Some(n) = notes_rx.recv() => {
                let mut back = false;
                let mut take = |n: Note, agent: &mut Agent| {
                    if let Note::State(n) = n {
                        back |= !n.from.is_online() && n.to.is_online();
                        agent.on_note(n);
                    }
                };
                take(n, &mut agent);
                // Several links may change at once: take them all, decide once.
                while let Ok(n) = notes_rx.try_recv() {
                    take(n, &mut agent);
                }
                agent.decide().await;
                if back && let Some(r) = &reporting {
                    r.link_back();
                }
            }
            _ = heartbeat.tick() => {
                if let Some(r) = reporting.as_mut() {
                    let online = agent.shared.snapshot().online;
                    r.heartbeat(online);
                }
            }
            Some(c) = control_rx.recv() => {
                if agent.on_control(c) {
                    agent.decide().await;
                }
            }
            _ = tokio::time::sleep_until(recheck.unwrap_or_else(tokio::time::Instant::now)), if recheck.is_some() => {
                agent.recheck = None;
                agent.decide().await;
            }
            _ = tokio::time::sleep_until(online_check.unwrap_or_else(tokio::time::Instant::now)), if online_check.is_some() => {
                agent.online_check = None;
                agent.refresh_online();
            }
            _ = tick.tick() => {
                if let Some(r) = &reporting {
                    let st = r.status().await;
                    let m = &agent.shared.metrics;
                    m.spool_depth.set(st.depth as i64);
                    m.spool_oldest.set(st.oldest_unsent_age_s.unwrap_or(0) as i64);
                    m.upload_bytes.set(st.upload_bytes as i64);
                    *agent.shared.record.write().unwrap_or_else(|e| e.into_inner()) = st;
                }
                agent.resync().await;
                agent.decide().await;
                agent.sync_routes().await;
                let line = sd_status_line(&agent, reporting.is_some());
                if line != sd_status {
                    crate::shared::sd::status(&line);
                    sd_status = line;
                }
            }
            _ = async { watchdog.as_mut().expect("guarded").tick().await }, if watchdog.is_some() => {
                crate::shared::sd::watchdog();
            }
            _ = sighup.recv() => {
                agent.reload();
                if let Some(r) = &reporting {
                    match r.reload_token() {
                        Ok(()) => info!("upload token file read again"),
                        Err(e) => error!("keeping the old upload token: {e}"),
                    }
                }
                agent.decide().await;
            }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
        }
    }
    crate::shared::sd::stopping();
    for w in agent.workers.values() {
        let _ = w.tx.send(LinkMsg::Stop);
    }
    watcher.abort();
    if let Some(r) = reporting.take() {
        // Let the workers hand over their last minute first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        r.stop(Duration::from_secs(3)).await;
    }
    if let Some(nm) = agent.nm.take() {
        nm.stop(Duration::from_secs(5)).await;
    }
    if agent.routes_mode() && !agent.cfg.failover.dry_run {
        match routes::remove_all().await {
            Ok(n) => info!(
                routes = n,
                "own default routes removed: the routing table is as the system set it"
            ),
            Err(e) => error!("cannot remove own routes on stop: {e}"),
        }
    }
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    info!("agent stopped cleanly");
    Ok(())
}
