//! The agent loop's state and its reactions to the host: which workers run
//! (plans applied, reloads), what the host says about interfaces and the
//! kernel's default route (passed on to the workers), the notes the workers
//! send, manual preference, and the own default routes made to match the
//! last decision.

use super::book::Book;
use super::{AgentError, plan_links_with, policy_params};
use crate::agent::hooks::{HookEvent, Hooks};
use crate::agent::host::Host;
use crate::agent::netlink::{self, LinkEvent};
use crate::agent::policy::{Cause, Policy, PolicyParams};
use crate::agent::probe::Prober;
use crate::agent::record::{ClockWatch, Recorder};
use crate::agent::routes;
use crate::agent::status::{Control, Shared};
use crate::agent::worker::{LinkMsg, Note, StateNote, Worker, WorkerEnv};
use crate::config::agent::{AgentConfig, FailoverMode, LinkPlan};
use crate::shared::time::{Clock, Millis};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{Instrument, error, info, info_span, warn};

pub(super) struct Running {
    pub(super) tx: mpsc::UnboundedSender<LinkMsg>,
    pub(super) plan: LinkPlan,
}

pub(crate) struct Agent {
    pub(super) cfg: AgentConfig,
    config_path: PathBuf,
    pub(super) hostname: String,
    pub(super) host: Arc<dyn Host>,
    prober: Arc<dyn Prober>,
    pub(super) shared: Arc<Shared>,
    pub(super) clock: Clock,
    pub(super) workers: HashMap<String, Running>,
    /// Last carrier seen per interface name.
    carrier: HashMap<String, bool>,
    index: HashMap<u32, String>,
    active: Option<String>,
    notes_tx: mpsc::UnboundedSender<Note>,
    pub(super) notes_rx: mpsc::UnboundedReceiver<Note>,
    pub(super) events_rx: mpsc::UnboundedReceiver<LinkEvent>,
    pub(super) watcher: Option<JoinHandle<()>>,
    /// The links' facts as their workers last sent them.
    pub(super) book: Book,
    /// A link came back online since the uploader was last woken.
    pub(super) back: bool,
    /// Published for the uploader: are the only online links metered?
    pub(crate) only_metered: Arc<AtomicBool>,
    pub(super) policy: Policy,
    pub(super) hooks: Hooks,
    pub(super) chosen: Option<String>,
    pub(super) switches: u64,
    /// When the policy wants to decide again (a link waiting out its hold-down).
    pub(super) recheck: Option<tokio::time::Instant>,
    /// Last known gateway per link and address family (kept when DHCP's
    /// route vanishes for a while).
    gateways: routes::Gateways,
    pub(super) last_order: Vec<String>,
    pub(crate) recorder: Recorder,
    /// Wall-clock steps, checked at each heartbeat.
    pub(super) clock_watch: ClockWatch,
    /// Why the chosen link is the chosen one: the cause of the last change.
    pub(super) last_cause: Cause,
    /// Confirmations asked of links: the time their clean round must not predate.
    pub(super) confirm: HashMap<String, Millis>,
    /// The device's `online` as last logged, and when it may change by itself.
    pub(super) online: bool,
    pub(super) online_check: Option<tokio::time::Instant>,
    /// NetworkManager applies the decisions (`failover.mode` auto or networkmanager).
    pub(super) nm: Option<crate::agent::nm::NmHandle>,
}

impl Agent {
    pub(crate) fn new(
        cfg: AgentConfig,
        config_path: &Path,
        host: Arc<dyn Host>,
        prober: Arc<dyn Prober>,
        shared: Arc<Shared>,
        clock: Clock,
        hostname: String,
    ) -> Self {
        let (notes_tx, notes_rx) = mpsc::unbounded_channel();
        let (_, events_rx) = mpsc::unbounded_channel();
        Agent {
            cfg,
            config_path: config_path.to_path_buf(),
            hostname,
            host,
            prober,
            shared,
            clock,
            workers: HashMap::new(),
            carrier: HashMap::new(),
            index: HashMap::new(),
            active: None,
            notes_tx,
            notes_rx,
            events_rx,
            watcher: None,
            book: Book::default(),
            back: false,
            only_metered: Arc::new(AtomicBool::new(false)),
            policy: Policy::new(PolicyParams::default()),
            hooks: Hooks::new(None, Duration::from_secs(5)),
            chosen: None,
            switches: 0,
            recheck: None,
            gateways: routes::Gateways::default(),
            last_order: vec![],
            recorder: Recorder::disabled(),
            clock_watch: ClockWatch::default(),
            last_cause: Cause::Initial,
            confirm: HashMap::new(),
            online: false,
            online_check: None,
            nm: None,
        }
    }

    /// Everything before the loop: watch the host, apply the configuration,
    /// take over the routes, learn the interfaces, start the workers.
    pub(crate) async fn start(&mut self) -> Result<(), AgentError> {
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        self.events_rx = ev_rx;
        let host = self.host.clone();
        self.watcher = Some(tokio::spawn(async move {
            if let Err(e) = host.watch(ev_tx).await {
                error!("netlink watcher stopped: {e}; falling back to polling every 5 s");
            }
        }));
        self.policy = Policy::new(policy_params(&self.cfg));
        self.policy.prefer(self.cfg.failover.prefer.clone());
        self.hooks = Hooks::new(
            self.cfg.failover.hook.clone(),
            self.cfg.failover.hook_timeout,
        );
        self.nm = crate::agent::nm::control::start(&self.cfg, self.shared.clone()).await;
        if self.routes_mode() && !self.cfg.failover.dry_run {
            // A crash may have left our routes behind: start from a clean table.
            let n = self.host.remove_own_routes().await?;
            if n > 0 {
                warn!(routes = n, "removed default routes left by an earlier run");
            }
        }
        // Learn the interfaces before the first plan so absent links are known.
        if let Ok(ifaces) = self.host.interfaces().await {
            for i in ifaces {
                self.carrier.insert(i.name.clone(), i.carrier);
                self.index.insert(i.index, i.name);
            }
        }
        self.refresh_active().await;
        self.apply_plans();
        self.resync().await;
        if self.workers.is_empty() {
            warn!("no links to watch: declare [[link]] entries or check [discovery]");
        }
        let plans: Vec<LinkPlan> = self.workers.values().map(|w| w.plan.clone()).collect();
        self.recorder
            .record(crate::agent::report::facts(&self.hostname, &plans));
        if self.routes_mode() {
            for name in self.workers.keys().filter(|n| self.managed(n)) {
                if let Err(e) = self.host.ignore_routes_with_linkdown(name) {
                    warn!(link = %name, "cannot set ignore_routes_with_linkdown: {e}");
                }
            }
        }
        Ok(())
    }

    fn spawn(&mut self, plan: LinkPlan) {
        let (tx, rx) = mpsc::unbounded_channel();
        let span = info_span!("link", link = %plan.name, kind = %plan.kind);
        let w = Worker::new(
            plan.clone(),
            self.cfg.health.clone(),
            WorkerEnv {
                prober: self.prober.clone(),
                counters: self.host.counters(),
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
        self.book.watch(crate::agent::worker::LinkFacts {
            name: plan.name.clone(),
            priority: plan.priority,
            metered: plan.metered,
            state: if present {
                crate::wire::LinkState::Down
            } else {
                crate::wire::LinkState::Absent
            },
            since: self.clock.now(),
            last_clean: None,
            failing_since: None,
            window: Duration::ZERO,
        });
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

    pub(super) fn send(&self, name: &str, msg: LinkMsg) {
        if let Some(w) = self.workers.get(name) {
            let _ = w.tx.send(msg);
        }
    }

    /// Make the running set match the plans of the current config.
    fn apply_plans(&mut self) {
        let host = self.host.clone();
        let plans = plan_links_with(&self.cfg, &|d| host.discover(d), &|n| host.classify(n));
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
                self.book.remove(&name);
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
    pub(super) async fn resync(&mut self) {
        match self.host.interfaces().await {
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
                        let v6 = self.host.has_global_ipv6(i.index).await.unwrap_or(false);
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
        match self.host.default_routes().await {
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

    pub(super) async fn on_event(&mut self, ev: LinkEvent) {
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
                    let v6 = self.host.has_global_ipv6(index).await.unwrap_or(false);
                    self.send(&name, LinkMsg::Ipv6(v6));
                    self.send(&name, LinkMsg::Kick);
                }
            }
        }
    }

    pub(super) fn routes_mode(&self) -> bool {
        self.cfg.failover.mode == FailoverMode::Routes
    }

    pub(super) fn managed(&self, name: &str) -> bool {
        match &self.cfg.failover.manage {
            Some(m) => m.iter().any(|n| n == name),
            None => true,
        }
    }

    /// Take in one note of a worker; true when the policy should decide again.
    pub(super) fn on_note(&mut self, n: Note) -> bool {
        match n {
            // A late note of a link no longer watched must not bring it back.
            Note::Link(facts) => {
                if self.workers.contains_key(&facts.name) {
                    self.book.note(facts);
                }
                false
            }
            Note::State(n) => {
                self.back |= !n.from.is_online() && n.to.is_online();
                self.on_state(n);
                true
            }
            Note::Evidence(_) => true,
        }
    }

    /// Take in every note waiting; true when one asks for a decision.
    pub(super) fn drain_notes(&mut self) -> bool {
        let mut decide = false;
        while let Ok(n) = self.notes_rx.try_recv() {
            decide |= self.on_note(n);
        }
        decide
    }

    fn on_state(&mut self, n: StateNote) {
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
    pub(super) async fn sync_routes(&mut self) {
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
        // A failed dump keeps what was known (and the sync below says why).
        let learned = self.host.learned_gateways().await.unwrap_or_default();
        self.gateways.take_in(&order, &configured, &learned);
        let want = self.gateways.wanted(&order, self.cfg.failover.metric_base);
        let start = std::time::Instant::now();
        if self.cfg.failover.dry_run {
            match self.host.own_routes().await {
                Ok(have) => {
                    for op in routes::plan(&have, &want) {
                        info!(op = %op, "dry run: would change route");
                    }
                }
                Err(e) => warn!("dry run: cannot read routes: {e}"),
            }
            return;
        }
        match self.host.sync_routes(&want).await {
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

    pub(super) fn on_control(&mut self, c: Control) -> bool {
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

    pub(super) fn reload(&mut self) {
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
