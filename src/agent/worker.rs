//! One link's worker: schedules probe rounds and application checks at the
//! pace the link's role and the evidence call for ([`crate::agent::evidence`]),
//! watches a metered active link's traffic ([`crate::agent::traffic`]), feeds
//! the results and the netlink facts into the link's [`LinkHealth`],
//! publishes the result for the status listener and hands the main loop the
//! facts it decides on ([`Note::Link`]). Rounds run as their own tasks so a
//! carrier event never waits behind a probe timeout.

mod results;
mod rounds;

use crate::agent::evidence::{self, LinkNow, Pace, PaceParams};
use crate::agent::health::{HealthParams, LinkHealth, Observation, Round, Transition};
use crate::agent::probe::{ProbeFailure, ProbeOutcome, Prober};
use crate::agent::record::Recorder;
use crate::agent::status::{LinkView, Shared, TransitionLabels};
use crate::agent::traffic::{CounterSource, TrafficWatch};
use crate::config::agent::{HealthSection, LinkPlan, ProbeRole, ProbeSpec};
use crate::shared::time::{Clock, Millis};
use crate::wire::LinkState;
use crate::wire::v1::Body;
pub use rounds::run_round;
use rounds::{MinuteAcc, app_reason};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info};

/// How often a metered active link's traffic counters are read.
const TRAFFIC_SAMPLE: Duration = Duration::from_millis(100);

/// A link changed state.
#[derive(Debug, Clone)]
pub struct StateNote {
    pub link: String,
    pub kind: String,
    pub from: LinkState,
    pub to: LinkState,
    pub reason: Option<String>,
}

/// The facts of one link the main loop decides on (the policy's candidate,
/// and how long the link vouches for the device being online), as of the
/// worker's last change.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkFacts {
    pub name: String,
    /// Lower is preferred.
    pub priority: u32,
    pub metered: bool,
    pub state: LinkState,
    /// When the state last changed, on the agent's monotonic axis.
    pub since: Millis,
    /// When the last clean round (or traffic proof) came in.
    pub last_clean: Option<Millis>,
    /// When the first failed round since the last clean one came in.
    pub failing_since: Option<Millis>,
    /// How long `last_clean` vouches for the link (its confirmation window).
    pub window: Duration,
}

/// What a worker tells the agent's main loop.
#[derive(Debug, Clone)]
pub enum Note {
    /// The link's facts now (sent whenever the worker publishes, before any
    /// [`Note::State`] or [`Note::Evidence`] they explain).
    Link(LinkFacts),
    State(StateNote),
    /// The link's evidence changed in a way the policy cares about: a round
    /// failed after clean ones (or the reverse), or a confirmation asked for
    /// was given.
    Evidence(String),
}

/// Messages to a link worker.
#[derive(Debug)]
pub enum LinkMsg {
    Present(bool),
    Carrier(bool),
    /// Does this link carry the default route now?
    Active(bool),
    /// Is this link the policy's choice now?
    Chosen(bool),
    /// Confirm the link: a clean round at or after this time is needed
    /// (None: no longer needed).
    Confirm(Option<Millis>),
    /// Does the link have a global IPv6 address (IPv6 targets probed only then)?
    Ipv6(bool),
    /// New plan and thresholds after a config reload.
    Reload(Box<(LinkPlan, HealthSection)>),
    /// Probe now (an address or route changed).
    Kick,
    Stop,
}

enum Done {
    Round(Round, Vec<(String, ProbeOutcome)>),
    /// An application check's result; `last` closes the batch.
    App(String, ProbeOutcome, bool),
}

/// Where a worker gets its facts and hands its results.
#[derive(Clone)]
pub struct WorkerEnv {
    pub prober: Arc<dyn Prober>,
    pub counters: Arc<dyn CounterSource>,
    pub shared: Arc<Shared>,
    pub clock: Clock,
    pub notes: mpsc::UnboundedSender<Note>,
    pub recorder: Recorder,
}

pub struct Worker {
    plan: LinkPlan,
    hcfg: HealthSection,
    pace: PaceParams,
    health: LinkHealth,
    env: WorkerEnv,
    active: bool,
    chosen: bool,
    ipv6: bool,
    /// When the last clean round (or traffic proof) came in.
    last_clean: Option<Millis>,
    /// When the first failed round since the last clean one came in.
    failing_since: Option<Millis>,
    confirm_after: Option<Millis>,
    /// The traffic watch, while the link is a metered active one.
    traffic: Option<TrafficWatch>,
    /// The traffic counters can be read (else traffic is no evidence).
    counters_ok: bool,
    /// The round in flight was asked for by the traffic watch.
    traffic_round: bool,
    /// One of our probes was in flight since the last traffic reading.
    probed: bool,
    /// Start of the last round; a round is due at once when `kick` is set.
    last_round: Option<Instant>,
    kick: bool,
    /// Consecutive failures per reachability target, for warnings.
    target_fails: HashMap<String, (u32, Option<ProbeFailure>)>,
    warnings: Vec<String>,
    rotate: usize,
    probe_bytes: u64,
    last_app: Option<Instant>,
    /// When the application checks are due while none ran (yet, or since a kick).
    app_soon: Option<Instant>,
    minute: MinuteAcc,
}

impl Worker {
    pub fn new(plan: LinkPlan, hcfg: HealthSection, env: WorkerEnv) -> Self {
        let health = LinkHealth::new(
            HealthParams::from_config(&hcfg, plan.quorum),
            env.clock.now(),
        );
        Worker {
            pace: PaceParams::from_config(&hcfg),
            plan,
            hcfg,
            health,
            env,
            active: false,
            chosen: false,
            ipv6: false,
            last_clean: None,
            failing_since: None,
            confirm_after: None,
            traffic: None,
            counters_ok: true,
            traffic_round: false,
            probed: false,
            last_round: None,
            kick: true,
            target_fails: HashMap::new(),
            warnings: vec![],
            rotate: 0,
            probe_bytes: 0,
            last_app: None,
            app_soon: None,
            minute: MinuteAcc::default(),
        }
    }

    fn reach_targets(&self) -> Vec<ProbeSpec> {
        self.plan
            .probes
            .iter()
            .filter(|p| p.role() == ProbeRole::Reach && (self.ipv6 || !p.is_ipv6()))
            .cloned()
            .collect()
    }

    fn app_checks(&self) -> Vec<ProbeSpec> {
        self.plan
            .probes
            .iter()
            .filter(|p| p.role() == ProbeRole::App && (self.ipv6 || !p.is_ipv6()))
            .cloned()
            .collect()
    }

    /// The facts the pace depends on, now.
    fn link_now(&self) -> LinkNow {
        LinkNow {
            active: self.active || self.chosen,
            metered: self.plan.metered,
            counters: self.counters_ok,
            state: self.health.state(),
            confirming: self.health.confirming(),
            last_clean: self.last_clean,
            confirm_after: self.confirm_after,
            timeout: self.health.timeout(),
        }
    }

    fn pace(&self) -> Pace {
        evidence::pace(&self.link_now(), &self.pace)
    }

    /// Does the role use the traffic watch (metered and active)?
    fn watches_traffic(&self) -> bool {
        self.plan.metered
            && (self.active || self.chosen)
            && self.pace.traffic_evidence
            && self.counters_ok
    }

    fn app_interval(&self) -> Duration {
        match (self.active || self.chosen, self.plan.metered) {
            (true, true) => self.hcfg.app_interval_metered_active,
            (true, false) => self.hcfg.app_interval_active,
            (false, true) => self.hcfg.app_interval_metered_standby,
            (false, false) => self.hcfg.app_interval_standby,
        }
    }

    /// When the next round is due.
    fn next_round(&self) -> Instant {
        match self.last_round {
            Some(at) if !self.kick => at + self.pace().interval,
            _ => Instant::now(),
        }
    }

    /// The facts the main loop acts on: in doubt, asked to confirm.
    fn evidence_key(&self) -> (bool, bool) {
        (self.failing_since.is_some(), self.link_now().requested())
    }

    /// Publish, and tell the main loop when the evidence it acts on changed.
    fn evidence_changed(&mut self, before: (bool, bool)) {
        self.publish();
        if self.evidence_key() != before {
            let _ = self.env.notes.send(Note::Evidence(self.plan.name.clone()));
        }
    }

    fn publish(&self) {
        let mut warnings = self.warnings.clone();
        if self.health.state() == LinkState::Absent {
            warnings.insert(
                0,
                format!(
                    "interface {} does not exist (unplugged, not associated, or misnamed in the config)",
                    self.plan.name
                ),
            );
        }
        let view = LinkView {
            plan: self.plan.clone(),
            state: self.health.state(),
            reason: self.health.reason().map(str::to_string),
            since: self.env.clock.wall(self.health.since()),
            rtt_ms: self.health.rtt_ms(),
            loss_pct: self.health.loss_pct(),
            active: self.active,
            warnings,
            probe_bytes: self.probe_bytes,
        };
        self.env.shared.update(view);
        let _ = self.env.notes.send(Note::Link(LinkFacts {
            name: self.plan.name.clone(),
            priority: self.plan.priority,
            metered: self.plan.metered,
            state: self.health.state(),
            since: self.health.since(),
            last_clean: self.last_clean,
            failing_since: self.failing_since,
            window: self.pace().window,
        }));
    }

    fn note(&mut self, t: Option<Transition>) {
        let Some(t) = t else { return };
        let reason = t.reason.clone().unwrap_or_default();
        if t.from != t.to {
            info!(link = %self.plan.name, kind = %self.plan.kind, from = %t.from, to = %t.to,
                  reason = %reason, "link state changed");
            self.env
                .shared
                .metrics
                .transitions
                .get_or_create(&TransitionLabels {
                    link: self.plan.name.clone(),
                    to: t.to.into(),
                })
                .inc();
        } else {
            info!(link = %self.plan.name, state = %t.to, reason = %reason, "link reason changed");
        }
    }

    fn observe(&mut self, obs: Observation) {
        let before = self.evidence_key();
        self.observe_from(before, obs);
    }

    /// Feed `obs`; `before` is the evidence key before the caller changed it.
    fn observe_from(&mut self, before: (bool, bool), obs: Observation) {
        let t = self.health.observe(self.env.clock.now(), obs);
        self.note(t.clone());
        if let Some(t) = &t {
            // Reason changes are recorded too (`probes` -> `carrier` tells
            // IT staff the cable went, not the ISP).
            self.env.recorder.record(Body::LinkState {
                link: self.plan.name.clone(),
                kind: self.plan.kind,
                from: t.from,
                to: t.to,
                reason: t.reason.clone(),
            });
        }
        // Publish first: the main loop decides on the facts sent before the note.
        self.publish();
        if let Some(t) = t
            && t.from != t.to
        {
            let _ = self.env.notes.send(Note::State(StateNote {
                link: self.plan.name.clone(),
                kind: self.plan.kind.to_string(),
                from: t.from,
                to: t.to,
                reason: t.reason,
            }));
        }
        if self.evidence_key() != before {
            let _ = self.env.notes.send(Note::Evidence(self.plan.name.clone()));
        }
    }

    /// Run until told to stop.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<LinkMsg>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut round_busy = false;
        let mut app_busy = false;
        // A confirmation was asked for while a round was in flight.
        let mut confirm_waiting = false;
        let mut present = true;
        let mut carrier = true;
        let mut minute = tokio::time::interval_at(
            Instant::now() + Duration::from_secs(60),
            Duration::from_secs(60),
        );
        minute.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sample = tokio::time::interval(TRAFFIC_SAMPLE);
        sample.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        self.publish();
        loop {
            let can_probe = present && carrier;
            let watching = can_probe && self.watches_traffic();
            if !watching {
                // A new baseline when the watch resumes.
                self.traffic = None;
            }
            let next_round = self.next_round();
            let next_app = match self.last_app {
                // Fixed once: the loop may wake every 100 ms.
                None => *self
                    .app_soon
                    .get_or_insert_with(|| Instant::now() + Duration::from_millis(200)),
                Some(t) => t + self.app_interval(),
            };
            let app_due = can_probe
                && !app_busy
                && self.health.state().is_online()
                && !self.app_checks().is_empty();
            tokio::select! {
                _ = minute.tick() => {
                    if let Some(b) = self.minute.body(&self.plan.name, self.plan.kind) {
                        self.env.recorder.record(b);
                    }
                }
                _ = sample.tick(), if watching => self.traffic_sample(round_busy, app_busy),
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    match msg {
                        LinkMsg::Stop => break,
                        LinkMsg::Present(p) => {
                            if p != present {
                                present = p;
                                if p { carrier = true; }
                                self.observe(Observation::Present(p));
                                self.kick = true;
                            }
                        }
                        LinkMsg::Carrier(c) => {
                            if c != carrier || !present {
                                if !present { present = true; self.observe(Observation::Present(true)); }
                                carrier = c;
                                self.observe(Observation::Carrier(c));
                                self.kick = true;
                            }
                        }
                        LinkMsg::Active(a) => {
                            if a != self.active {
                                self.active = a;
                                info!(link = %self.plan.name, active = a, "default route moved");
                                self.publish();
                                self.kick = true;
                            }
                        }
                        LinkMsg::Chosen(c) => {
                            if c != self.chosen {
                                self.chosen = c;
                                debug!(link = %self.plan.name, chosen = c, "policy choice moved");
                                self.publish();
                                self.kick |= c;
                            }
                        }
                        LinkMsg::Confirm(t) => {
                            if t != self.confirm_after {
                                let before = self.evidence_key();
                                self.confirm_after = t;
                                if self.link_now().requested() {
                                    debug!(link = %self.plan.name, "asked to confirm");
                                    if round_busy {
                                        confirm_waiting = true;
                                    } else {
                                        self.kick = true;
                                    }
                                }
                                self.evidence_changed(before);
                            }
                        }
                        LinkMsg::Ipv6(v6) => self.ipv6 = v6,
                        LinkMsg::Reload(b) => {
                            let (plan, hcfg) = *b;
                            self.health.set_params(HealthParams::from_config(&hcfg, plan.quorum));
                            self.pace = PaceParams::from_config(&hcfg);
                            self.plan = plan;
                            self.hcfg = hcfg;
                            self.counters_ok = true;
                            self.target_fails.clear();
                            self.publish();
                        }
                        LinkMsg::Kick => {
                            self.kick = true;
                            self.last_app = None;
                        }
                    }
                }
                Some(done) = done_rx.recv() => {
                    match done {
                        Done::Round(r, outcomes) => {
                            round_busy = false;
                            if present && carrier {
                                let was_online = self.health.state().is_online();
                                self.round_done(r, outcomes);
                                if !was_online && self.health.state().is_online() {
                                    // Back: check the applications soon.
                                    self.last_app = None;
                                }
                            } else {
                                self.traffic_round = false;
                            }
                            if std::mem::take(&mut confirm_waiting) && self.link_now().requested() {
                                self.kick = true;
                            }
                        }
                        Done::App(label, o, last) => {
                            if last {
                                app_busy = false;
                            }
                            let kind = label.split(' ').next().unwrap_or("app").to_string();
                            self.count_probe(&label, &kind, &o);
                            let (ok, reason) = match &o.result {
                                Ok(_) => (true, None),
                                Err(f) => {
                                    debug!(link = %self.plan.name, probe = %label, "application check failed: {f}");
                                    (false, Some(app_reason(f)))
                                }
                            };
                            if present && carrier {
                                self.observe(Observation::App { probe: label, ok, reason });
                            }
                        }
                    }
                }
                _ = tokio::time::sleep_until(next_round), if can_probe && !round_busy => {
                    round_busy = true;
                    self.kick = false;
                    self.probed = true;
                    self.last_round = Some(Instant::now());
                    let all = self.pace().all_targets || self.traffic_round;
                    let mut targets = self.reach_targets();
                    if !all && targets.len() > 1 {
                        self.rotate = (self.rotate + 1) % targets.len();
                        targets = vec![targets.swap_remove(self.rotate)];
                    }
                    let timeout = self.health.timeout();
                    let prober = self.env.prober.clone();
                    let iface = self.plan.name.clone();
                    let tx = done_tx.clone();
                    tokio::spawn(async move {
                        let (round, outcomes) = run_round(&*prober, &iface, &targets, timeout).await;
                        let _ = tx.send(Done::Round(round, outcomes));
                    });
                }
                _ = tokio::time::sleep_until(next_app), if app_due => {
                    app_busy = true;
                    self.probed = true;
                    self.last_app = Some(Instant::now());
                    self.app_soon = None;
                    let checks = self.app_checks();
                    let timeout = self.hcfg.timeout_max.max(Duration::from_secs(2));
                    let prober = self.env.prober.clone();
                    let iface = self.plan.name.clone();
                    let tx = done_tx.clone();
                    tokio::spawn(async move {
                        // One after another: application checks are not urgent,
                        // and on a metered link they should not burst.
                        let n = checks.len();
                        for (i, spec) in checks.into_iter().enumerate() {
                            let o = prober.probe(&iface, &spec, timeout).await;
                            let _ = tx.send(Done::App(spec.label(), o, i + 1 == n));
                        }
                    });
                }
            }
        }
        if let Some(b) = self.minute.body(&self.plan.name, self.plan.kind) {
            self.env.recorder.record(b);
        }
        // Published views must not outlive the worker (a late round result may
        // have re-published after the agent forgot the link).
        self.env.shared.remove(&self.plan.name);
        debug!(link = %self.plan.name, "worker stopped");
    }
}
