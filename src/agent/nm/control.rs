//! The NetworkManager side of the running agent: one task that finds NetworkManager (and
//! finds it again after it restarted), undoes leftovers of an earlier run, applies each
//! decision of the policy as route metrics ([`super::plan`]), triggers NetworkManager's
//! connectivity check when the chosen link changes, repairs what NetworkManager reset (a
//! re-activated connection), publishes what it sees in the status, and undoes everything on
//! a clean stop.
//!
//! The agent's main loop never waits for D-Bus: it hands the latest decision over
//! ([`NmHandle::order`]) and goes on measuring. When NetworkManager is missing or denies the
//! agent, the status says so with the fix, the agent keeps measuring as in `observe`, and the
//! task looks again every [`RETRY`].

use super::plan::{self, Changes};
use super::state;
use super::{NetworkManager, NmError, NmInfo, mode};
use crate::agent::status::Shared;
use crate::config::agent::{AgentConfig, FailoverMode};
use crate::wire::{NmLinkStatus, NmStatus};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

/// How often the task looks for a missing NetworkManager again.
pub const RETRY: Duration = Duration::from_secs(10);
/// How often the applied metrics are checked (and repaired) without a new decision.
pub const RESYNC: Duration = Duration::from_secs(5);
/// Longest wait for NetworkManager's answer to `CheckConnectivity`.
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

enum Cmd {
    Order {
        chosen: Option<String>,
        order: Vec<String>,
        switched: bool,
    },
    Poke,
    Stop(oneshot::Sender<()>),
}

/// The running task, as the agent's main loop holds it.
pub struct NmHandle {
    tx: mpsc::UnboundedSender<Cmd>,
    task: tokio::task::JoinHandle<()>,
}

impl NmHandle {
    /// The policy's latest decision: the chosen link (None: no link online) and every
    /// candidate in preference order. `switched`: the chosen link just changed.
    pub fn order(&self, chosen: Option<String>, order: Vec<String>, switched: bool) {
        let _ = self.tx.send(Cmd::Order {
            chosen,
            order,
            switched,
        });
    }

    /// Something changed in the kernel's routes or links: check the metrics soon.
    pub fn poke(&self) {
        let _ = self.tx.send(Cmd::Poke);
    }

    /// Undo every change (clean stop) and end the task; gives up after `deadline` (the
    /// state file then lets the next start finish the job).
    pub async fn stop(self, deadline: Duration) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Stop(tx)).is_ok() && tokio::time::timeout(deadline, rx).await.is_err()
        {
            warn!(
                "NetworkManager: route metrics not put back within {deadline:?}; the next start will"
            );
            self.task.abort();
        }
    }
}

/// NetworkManager for the agent configured by `cfg`: the running task in modes `auto` and
/// `networkmanager`; in the other modes only the leftovers of an earlier run (a crash in
/// `networkmanager` mode) are undone, and None is returned.
pub async fn start(cfg: &AgentConfig, shared: Arc<Shared>) -> Option<NmHandle> {
    let settings = Settings {
        configured: cfg.failover.mode,
        dry_run: cfg.failover.dry_run,
        state_path: state::path_for(&cfg.upload.spool_path),
    };
    let nm: Arc<dyn NetworkManager> = Arc::new(super::dbus::DbusNm::new());
    if cfg.failover.mode.uses_networkmanager() {
        return Some(Controller::start(nm, settings, shared));
    }
    if settings.state_path.exists() {
        Controller::undo_leftovers(nm, settings, shared).await;
    }
    None
}

/// What the task needs to know of the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub configured: FailoverMode,
    /// Log the Reapply calls instead of making them.
    pub dry_run: bool,
    pub state_path: PathBuf,
}

/// The task's state.
pub struct Controller {
    nm: Arc<dyn NetworkManager>,
    settings: Settings,
    shared: Arc<Shared>,
    /// What the agent changed and has not undone.
    changes: Changes,
    chosen: Option<String>,
    order: Vec<String>,
    /// NetworkManager as found; None while it is missing (or denies the agent).
    info: Option<NmInfo>,
    /// The last problem logged (each distinct one is logged once).
    logged: Option<String>,
    checking: Arc<AtomicBool>,
    /// When to look again after kernel route or link events (they come in bursts).
    poke_at: Option<tokio::time::Instant>,
    /// Whether the links as NetworkManager has them were logged since it was found.
    announced: bool,
}

/// Wait between a route or link event and the check it causes.
const POKE_DELAY: Duration = Duration::from_millis(100);

impl Controller {
    /// Start the task for `failover.mode` auto or networkmanager.
    pub fn start(nm: Arc<dyn NetworkManager>, settings: Settings, shared: Arc<Shared>) -> NmHandle {
        let (tx, rx) = mpsc::unbounded_channel();
        let ctl = Controller {
            nm,
            settings,
            shared,
            changes: Changes::new(),
            chosen: None,
            order: vec![],
            info: None,
            logged: None,
            checking: Arc::new(AtomicBool::new(false)),
            poke_at: None,
            announced: false,
        };
        let task = tokio::spawn(ctl.run(rx));
        NmHandle { tx, task }
    }

    /// Undo what an earlier run left in `settings.state_path` (the agent now runs in a mode
    /// without NetworkManager).
    pub async fn undo_leftovers(
        nm: Arc<dyn NetworkManager>,
        settings: Settings,
        shared: Arc<Shared>,
    ) {
        let mut ctl = Controller {
            nm,
            settings,
            shared,
            changes: Changes::new(),
            chosen: None,
            order: vec![],
            info: None,
            logged: None,
            checking: Arc::new(AtomicBool::new(false)),
            poke_at: None,
            announced: false,
        };
        match state::load(&ctl.settings.state_path) {
            Ok(c) => ctl.changes = c,
            Err(e) => return error!("NetworkManager: {e}"),
        }
        match ctl.nm.info().await {
            Ok(info) => ctl.info = Some(info),
            Err(e) => {
                return error!(
                    "NetworkManager: cannot put back the route metrics an earlier run changed \
                     ({}): {e}",
                    ctl.settings.state_path.display()
                );
            }
        }
        ctl.undo_all("left by an earlier run").await;
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Cmd>) {
        self.publish(Some(None), vec![]);
        match state::load(&self.settings.state_path) {
            Ok(c) => self.changes = c,
            Err(e) => error!("NetworkManager: {e}"),
        }
        let mut tick = tokio::time::interval(RESYNC);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_look = tokio::time::Instant::now();
        let mut found_before = false;
        loop {
            if self.info.is_none() && tokio::time::Instant::now() >= next_look {
                next_look = tokio::time::Instant::now() + RETRY;
                match self.nm.info().await {
                    Ok(info) => {
                        let choice =
                            mode::choose(self.settings.configured, Some(&Ok(info.clone())));
                        info!(mode = choice.mode, "{}", choice.reason);
                        self.logged = None;
                        self.announced = false;
                        self.info = Some(info);
                        // Leftovers of an earlier run are undone first; after a lost
                        // NetworkManager comes back, this run's changes are simply checked
                        // against the latest decision (re-applied where it reset them).
                        if !found_before {
                            self.undo_all("left by an earlier run").await;
                        }
                        found_before = true;
                        self.sync(false).await;
                    }
                    Err(e) => self.unavailable(e),
                }
            }
            let poke_at = self.poke_at;
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Order { chosen, order, switched }) => {
                        let changed = switched || chosen != self.chosen || order != self.order;
                        self.chosen = chosen;
                        self.order = order;
                        if changed && self.info.is_some() {
                            self.sync(switched).await;
                        }
                    }
                    Some(Cmd::Poke) => {
                        if self.poke_at.is_none() {
                            self.poke_at = Some(tokio::time::Instant::now() + POKE_DELAY);
                        }
                    }
                    Some(Cmd::Stop(reply)) => {
                        self.undo_all("on stop").await;
                        let _ = reply.send(());
                        return;
                    }
                    None => {
                        self.undo_all("on stop").await;
                        return;
                    }
                },
                _ = tokio::time::sleep_until(poke_at.unwrap_or_else(tokio::time::Instant::now)), if poke_at.is_some() => {
                    self.poke_at = None;
                    if self.info.is_some() {
                        self.sync(false).await;
                    }
                }
                _ = tick.tick() => {
                    if self.info.is_some() {
                        self.sync(false).await;
                    }
                }
            }
        }
    }

    /// NetworkManager cannot be used (now): say so, measure on, look again later.
    fn unavailable(&mut self, e: NmError) {
        self.info = None;
        let choice = mode::choose(self.settings.configured, Some(&Err(e.clone())));
        let msg = e.to_string();
        if self.logged.as_deref() != Some(&msg) {
            match &choice.error {
                Some(err) => error!(mode = choice.mode, "{}: {err}", choice.reason),
                None => info!(mode = choice.mode, "{}", choice.reason),
            }
            self.logged = Some(msg);
        }
        self.publish(Some(Some(&e)), vec![]);
    }

    /// Write the mode, its reason and NetworkManager's status into the agent's status.
    /// `problem`: None while NetworkManager is in use, Some(None) before the first look,
    /// Some(Some(e)) when it cannot be used.
    fn publish(&self, problem: Option<Option<&NmError>>, links: Vec<NmLinkStatus>) {
        let found = match (&self.info, problem) {
            (Some(info), None) => Some(Ok(info.clone())),
            (_, Some(Some(e))) => Some(Err(e.clone())),
            _ => None,
        };
        let choice = mode::choose(self.settings.configured, found.as_ref());
        let nm = NmStatus {
            active: choice.mode == "networkmanager",
            version: self.info.as_ref().map(|i| i.version.clone()),
            connectivity_check: self.info.as_ref().map(|i| i.connectivity.describe()),
            error: choice.error.clone(),
            links,
        };
        let mut f = self
            .shared
            .failover
            .write()
            .unwrap_or_else(|e| e.into_inner());
        f.mode = choice.mode.into();
        f.mode_reason = choice.reason;
        f.networkmanager = Some(nm);
    }

    fn save(&self, changes: &Changes) {
        if let Err(e) = state::save(&self.settings.state_path, changes) {
            error!("NetworkManager: {e}: a crash now would leave route metrics changed");
        }
    }

    /// The links to look at: the policy's candidates and whatever the agent changed.
    fn links(&self) -> Vec<String> {
        let mut links = self.order.clone();
        for l in self.changes.keys() {
            if !links.contains(l) {
                links.push(l.clone());
            }
        }
        links
    }

    /// The route metric the agent set on `link` for family `f`, if any.
    fn ours(&self, link: &str, f: super::Family) -> Option<u32> {
        self.changes
            .get(link)
            .and_then(|c| c.family(f))
            .map(|fc| fc.ours)
    }

    /// Read every link from NetworkManager: its applied connections, and the status lines.
    async fn observe(&mut self) -> Result<(Vec<super::Observed>, Vec<NmLinkStatus>), NmError> {
        let mut observed = vec![];
        let mut status = vec![];
        for link in self.links() {
            match self.nm.device(&link).await {
                Ok(d) => {
                    status.push(NmLinkStatus {
                        name: link.clone(),
                        managed: d.managed,
                        connection: d.applied.as_ref().map(|a| a.id.clone()),
                        connectivity: d.connectivity.as_str().into(),
                        metric_v4: self.ours(&link, super::Family::V4),
                        metric_v6: self.ours(&link, super::Family::V6),
                        route_v4: d.applied.as_ref().and_then(|a| a.route_v4),
                        route_v6: d.applied.as_ref().and_then(|a| a.route_v6),
                    });
                    if d.managed
                        && let Some(a) = d.applied
                    {
                        observed.push(a);
                    }
                }
                Err(NmError::UnknownDevice { .. }) => status.push(NmLinkStatus {
                    name: link.clone(),
                    connectivity: "unknown".into(),
                    ..NmLinkStatus::default()
                }),
                Err(e) if e.lost() || matches!(e, NmError::PermissionDenied { .. }) => {
                    return Err(e);
                }
                Err(e) => warn!(link = %link, "NetworkManager: {e}"),
            }
        }
        Ok((observed, status))
    }

    /// Make the applied metrics follow the latest decision.
    async fn sync(&mut self, switched: bool) {
        let (observed, status) = match self.observe().await {
            Ok(o) => o,
            Err(e) => return self.unavailable(e),
        };
        if !self.announced && !self.order.is_empty() {
            self.announced = true;
            for l in &status {
                match (&l.connection, l.managed) {
                    (_, false) => info!(link = %l.name,
                        "not managed by NetworkManager: its routes are left alone"),
                    (Some(c), true) => info!(link = %l.name, connection = %c,
                        connectivity = %l.connectivity, route_v4 = ?l.route_v4,
                        route_v6 = ?l.route_v6, "managed by NetworkManager"),
                    (None, true) => info!(link = %l.name,
                        "managed by NetworkManager, no active connection (yet)"),
                }
            }
        }
        let p = plan::reconcile(&self.order, self.chosen.is_some(), &observed, &self.changes);
        if let Err(e) = self.apply(p, "for the chosen link").await {
            return self.unavailable(e);
        }
        if switched {
            self.check_connectivity();
        }
        // The metrics the agent set: as they are now, not as observed before applying.
        let status = status
            .into_iter()
            .map(|l| NmLinkStatus {
                metric_v4: self.ours(&l.name, super::Family::V4),
                metric_v6: self.ours(&l.name, super::Family::V6),
                ..l
            })
            .collect();
        self.publish(None, status);
    }

    /// Apply a plan: write down what is about to change, Reapply, write down what holds.
    async fn apply(&mut self, p: plan::Plan, why: &str) -> Result<(), NmError> {
        if p.steps.is_empty() {
            if p.changes != self.changes {
                self.changes = p.changes;
                self.save(&self.changes);
            }
            return Ok(());
        }
        if self.settings.dry_run {
            for s in &p.steps {
                info!(link = %s.link, ipv4 = ?s.v4, ipv6 = ?s.v6,
                      "dry run: would set the route metric of the active connection {why}");
            }
            return Ok(());
        }
        let before = std::mem::take(&mut self.changes);
        let pending = plan::pending(&before, &p.steps);
        self.save(&pending);
        let mut now = p.changes.clone();
        let mut fatal = None;
        let put_back = |now: &mut Changes, link: &str| match before.get(link) {
            Some(c) => now.insert(link.to_string(), c.clone()),
            None => now.remove(link),
        };
        for s in &p.steps {
            if fatal.is_some() {
                // Not tried: as it was.
                put_back(&mut now, &s.link);
                continue;
            }
            let start = std::time::Instant::now();
            match self.nm.set_metrics(&s.link, &s.uuid, s.v4, s.v6).await {
                Ok(()) => info!(link = %s.link, ipv4 = ?s.v4, ipv6 = ?s.v6,
                                took_ms = start.elapsed().as_millis() as u64,
                                "route metric of the active connection set through NetworkManager {why}"),
                Err(e) => {
                    put_back(&mut now, &s.link);
                    warn!(link = %s.link, "NetworkManager: {e}");
                    if e.lost() || matches!(e, NmError::PermissionDenied { .. }) {
                        fatal = Some(e);
                    }
                }
            }
        }
        self.changes = now;
        self.save(&self.changes);
        match fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Undo every change that still holds; what cannot be undone now stays written down.
    async fn undo_all(&mut self, why: &str) {
        if self.changes.is_empty() || self.info.is_none() {
            return;
        }
        let (observed, _) = match self.observe().await {
            Ok(o) => o,
            Err(e) => {
                warn!("NetworkManager: cannot put route metrics back {why}: {e}");
                return;
            }
        };
        let p = plan::restore(&observed, &self.changes);
        if !p.steps.is_empty() {
            info!(
                links = p.steps.len(),
                "NetworkManager: putting back the route metrics the agent changed {why}"
            );
        }
        let msg = format!("back to the connection's own ({why})");
        if let Err(e) = self.apply(p, &msg).await {
            warn!("NetworkManager: cannot put every route metric back {why}: {e}");
        }
    }

    /// Ask NetworkManager to check connectivity now (one request at a time, in the
    /// background: its answer can take as long as its check's timeout).
    fn check_connectivity(&self) {
        if !self.info.as_ref().is_some_and(|i| i.connectivity.active()) {
            return;
        }
        if self.checking.swap(true, Ordering::SeqCst) {
            return;
        }
        let nm = self.nm.clone();
        let checking = self.checking.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(CHECK_TIMEOUT, nm.check_connectivity()).await {
                Ok(Ok(c)) => debug!(
                    connectivity = c.as_str(),
                    "NetworkManager checked connectivity"
                ),
                Ok(Err(e)) => debug!("NetworkManager: {e}"),
                Err(_) => debug!("NetworkManager's connectivity check did not answer in time"),
            }
            checking.store(false, Ordering::SeqCst);
        });
    }
}
