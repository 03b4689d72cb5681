//! One link's worker: schedules probe rounds and application checks at the
//! rate the link's role calls for, feeds their results and the netlink facts
//! into the link's [`LinkHealth`], and publishes the result. Rounds run as
//! their own tasks so a carrier event never waits behind a probe timeout.

use crate::agent::health::{HealthParams, LinkHealth, Observation, Round, Transition};
use crate::agent::probe::{ProbeFailure, ProbeOutcome, Prober};
use crate::agent::record::Recorder;
use crate::agent::status::{LinkLabels, LinkView, ProbeLabels, Shared, TransitionLabels};
use crate::config::agent::{HealthSection, LinkPlan, ProbeRole, ProbeSpec};
use crate::shared::time::Clock;
use crate::wire::LinkState;
use crate::wire::v1::Body;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn};

/// What a worker tells the agent's main loop: a link changed state.
#[derive(Debug, Clone)]
pub struct StateNote {
    pub link: String,
    pub kind: String,
    pub from: LinkState,
    pub to: LinkState,
    pub reason: Option<String>,
}

/// Messages to a link worker.
#[derive(Debug)]
pub enum LinkMsg {
    Present(bool),
    Carrier(bool),
    /// Does this link carry the default route now?
    Active(bool),
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

/// Reason word a failed probe gives to the link.
fn app_reason(f: &ProbeFailure) -> String {
    match f {
        ProbeFailure::Timeout => "app-timeout".into(),
        ProbeFailure::Network(_) => "app-network".into(),
        other => other.reason_word().into(),
    }
}

/// The failure that best explains a failed round.
fn round_failure(outcomes: &[(String, ProbeOutcome)]) -> Option<String> {
    let mut words: Vec<&'static str> = outcomes
        .iter()
        .filter_map(|(_, o)| o.result.as_ref().err().map(|f| f.reason_word()))
        .collect();
    words.sort_by_key(|w| match *w {
        "permission" => 0,
        "no-interface" => 1,
        _ => 2,
    });
    words.first().map(|w| w.to_string())
}

/// Probing figures of the current minute, for the `link_minutes` record.
#[derive(Debug, Default)]
struct MinuteAcc {
    sent: u32,
    lost: u32,
    rtts_ms: Vec<f64>,
    bytes: u64,
}

impl MinuteAcc {
    fn body(&mut self, link: &str, kind: crate::wire::LinkKind) -> Option<Body> {
        if self.sent == 0 && self.bytes == 0 {
            return None;
        }
        let mut r = std::mem::take(&mut self.rtts_ms);
        r.sort_by(|a, b| a.total_cmp(b));
        let pick = |q: f64| -> Option<f64> {
            (!r.is_empty()).then(|| {
                let i = ((r.len() - 1) as f64 * q).round() as usize;
                (r[i] * 100.0).round() / 100.0
            })
        };
        let body = Body::LinkMinutes {
            link: link.to_string(),
            kind,
            minutes: 1,
            sent: self.sent,
            lost: self.lost,
            rtt_p50_ms: pick(0.5),
            rtt_p95_ms: pick(0.95),
            rtt_max_ms: pick(1.0),
            bytes: self.bytes,
        };
        *self = MinuteAcc::default();
        Some(body)
    }
}

pub struct Worker {
    plan: LinkPlan,
    hcfg: HealthSection,
    health: LinkHealth,
    prober: Arc<dyn Prober>,
    shared: Arc<Shared>,
    clock: Clock,
    active: bool,
    ipv6: bool,
    /// Consecutive failures per reachability target, for warnings.
    target_fails: HashMap<String, (u32, Option<ProbeFailure>)>,
    warnings: Vec<String>,
    rotate: usize,
    probe_bytes: u64,
    last_app: Option<Instant>,
    notes: mpsc::UnboundedSender<StateNote>,
    recorder: Recorder,
    minute: MinuteAcc,
}

impl Worker {
    pub fn new(
        plan: LinkPlan,
        hcfg: HealthSection,
        prober: Arc<dyn Prober>,
        shared: Arc<Shared>,
        clock: Clock,
        notes: mpsc::UnboundedSender<StateNote>,
        recorder: Recorder,
    ) -> Self {
        let health = LinkHealth::new(HealthParams::from_config(&hcfg, plan.quorum), clock.now());
        Worker {
            plan,
            hcfg,
            health,
            prober,
            shared,
            clock,
            active: false,
            ipv6: false,
            target_fails: HashMap::new(),
            warnings: vec![],
            rotate: 0,
            probe_bytes: 0,
            last_app: None,
            notes,
            recorder,
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

    /// Time between rounds for the link's role right now.
    fn round_interval(&self) -> Duration {
        if self.active || self.health.confirming() {
            if self.plan.metered && !self.health.confirming() {
                self.hcfg.interval_active.max(Duration::from_secs(1))
            } else {
                self.hcfg.interval_active
            }
        } else if self.plan.metered {
            self.hcfg.interval_metered_standby
        } else {
            self.hcfg.interval_standby
        }
    }

    fn app_interval(&self) -> Duration {
        if self.active {
            self.hcfg.app_interval_active
        } else if self.plan.metered {
            self.hcfg.app_interval_metered_standby
        } else {
            self.hcfg.app_interval_standby
        }
    }

    /// Should a standby round probe every target (confirming a change) or one?
    fn full_round(&self) -> bool {
        self.active || self.health.confirming() || self.health.state() == LinkState::Down
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
            since: self.clock.wall(self.health.since()),
            since_ms: self.health.since(),
            rtt_ms: self.health.rtt_ms(),
            loss_pct: self.health.loss_pct(),
            active: self.active,
            warnings,
            probe_bytes: self.probe_bytes,
        };
        self.shared.update(view);
    }

    fn note(&mut self, t: Option<Transition>) {
        let Some(t) = t else { return };
        let reason = t.reason.clone().unwrap_or_default();
        if t.from != t.to {
            info!(link = %self.plan.name, kind = %self.plan.kind, from = %t.from, to = %t.to,
                  reason = %reason, "link state changed");
            self.shared
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
        let t = self.health.observe(self.clock.now(), obs);
        self.note(t.clone());
        self.publish();
        if let Some(t) = &t {
            // Reason changes are recorded too (`probes` -> `carrier` tells
            // IT staff the cable went, not the ISP).
            self.recorder.record(Body::LinkState {
                link: self.plan.name.clone(),
                kind: self.plan.kind,
                from: t.from,
                to: t.to,
                reason: t.reason.clone(),
            });
        }
        if let Some(t) = t
            && t.from != t.to
        {
            let _ = self.notes.send(StateNote {
                link: self.plan.name.clone(),
                kind: self.plan.kind.to_string(),
                from: t.from,
                to: t.to,
                reason: t.reason,
            });
        }
    }

    fn count_probe(&mut self, spec_label: &str, kind: &str, o: &ProbeOutcome) {
        self.probe_bytes += o.bytes;
        self.minute.bytes += o.bytes;
        let labels = LinkLabels {
            link: self.plan.name.clone(),
            kind: self.plan.kind.to_string(),
        };
        self.shared
            .metrics
            .probe_bytes
            .get_or_create(&labels)
            .inc_by(o.bytes);
        self.shared
            .metrics
            .probes
            .get_or_create(&ProbeLabels {
                link: self.plan.name.clone(),
                probe: kind.to_string(),
                result: match &o.result {
                    Ok(_) => "ok".into(),
                    Err(f) => f.reason_word().into(),
                },
            })
            .inc();
        if let Ok(rtt) = o.result
            && (kind == "icmp" || kind == "tcp")
        {
            self.shared
                .metrics
                .rtt
                .get_or_create(&labels)
                .observe(rtt.as_secs_f64());
        }
        debug!(link = %self.plan.name, probe = spec_label, result = ?o.result, "probe");
    }

    fn round_done(&mut self, round: Round, outcomes: Vec<(String, ProbeOutcome)>) {
        let mut warnings = vec![];
        let round_clean = round.answered >= self.plan.quorum.min(round.sent).max(1);
        self.minute.sent += round.sent;
        self.minute.lost += round.sent.saturating_sub(round.answered);
        self.minute
            .rtts_ms
            .extend(round.rtts.iter().map(|d| d.as_secs_f64() * 1000.0));
        for (label, o) in &outcomes {
            let kind = label.split(' ').next().unwrap_or("probe").to_string();
            self.count_probe(label, &kind, o);
            let entry = self.target_fails.entry(label.clone()).or_insert((0, None));
            match &o.result {
                Ok(_) => *entry = (0, None),
                Err(f) => {
                    entry.0 += 1;
                    entry.1 = Some(f.clone());
                }
            }
        }
        // Warnings come from every target's last outcome, not only this
        // round's (a standby round probes one target at a time).
        for (label, (n, last)) in &self.target_fails {
            match last {
                Some(
                    f @ (ProbeFailure::Permission(_)
                    | ProbeFailure::NoSuchInterface
                    | ProbeFailure::Resolve(_)),
                ) => warnings.push(format!("{label}: {f}")),
                // A target that keeps failing while the link works.
                Some(_) if *n >= 10 && round_clean => warnings.push(format!(
                    "{label}: no answer for {n} probes in a row (the link itself works)"
                )),
                _ => {}
            }
        }
        warnings.sort();
        warnings.dedup();
        if warnings != self.warnings {
            for w in warnings.iter().filter(|w| !self.warnings.contains(w)) {
                warn!(link = %self.plan.name, "{w}");
            }
            self.warnings = warnings;
        }
        self.observe(Observation::Round(round));
    }

    /// Run until told to stop.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<LinkMsg>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let mut round_busy = false;
        let mut app_busy = false;
        let mut next_round = Instant::now();
        let mut present = true;
        let mut carrier = true;
        let mut minute = tokio::time::interval_at(
            Instant::now() + Duration::from_secs(60),
            Duration::from_secs(60),
        );
        minute.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.publish();
        loop {
            let can_probe = present && carrier;
            let next_app = match self.last_app {
                None => Instant::now() + Duration::from_millis(200),
                Some(t) => t + self.app_interval(),
            };
            let app_due = can_probe
                && !app_busy
                && self.health.state().is_online()
                && !self.app_checks().is_empty();
            tokio::select! {
                _ = minute.tick() => {
                    if let Some(b) = self.minute.body(&self.plan.name, self.plan.kind) {
                        self.recorder.record(b);
                    }
                }
                msg = rx.recv() => {
                    let Some(msg) = msg else { break };
                    match msg {
                        LinkMsg::Stop => break,
                        LinkMsg::Present(p) => {
                            if p != present {
                                present = p;
                                if p { carrier = true; }
                                self.observe(Observation::Present(p));
                                next_round = Instant::now();
                            }
                        }
                        LinkMsg::Carrier(c) => {
                            if c != carrier || !present {
                                if !present { present = true; self.observe(Observation::Present(true)); }
                                carrier = c;
                                self.observe(Observation::Carrier(c));
                                next_round = Instant::now();
                            }
                        }
                        LinkMsg::Active(a) => {
                            if a != self.active {
                                self.active = a;
                                info!(link = %self.plan.name, active = a, "default route moved");
                                self.publish();
                                next_round = Instant::now();
                            }
                        }
                        LinkMsg::Ipv6(v6) => self.ipv6 = v6,
                        LinkMsg::Reload(b) => {
                            let (plan, hcfg) = *b;
                            self.health.set_params(HealthParams::from_config(&hcfg, plan.quorum));
                            self.plan = plan;
                            self.hcfg = hcfg;
                            self.target_fails.clear();
                            self.publish();
                        }
                        LinkMsg::Kick => {
                            next_round = Instant::now();
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
                    let interval = self.round_interval();
                    next_round = Instant::now() + interval;
                    let mut targets = self.reach_targets();
                    if !self.full_round() && targets.len() > 1 {
                        self.rotate = (self.rotate + 1) % targets.len();
                        targets = vec![targets.swap_remove(self.rotate)];
                    }
                    let timeout = self.health.timeout();
                    let prober = self.prober.clone();
                    let iface = self.plan.name.clone();
                    let tx = done_tx.clone();
                    tokio::spawn(async move {
                        let (round, outcomes) = run_round(&*prober, &iface, &targets, timeout).await;
                        let _ = tx.send(Done::Round(round, outcomes));
                    });
                }
                _ = tokio::time::sleep_until(next_app), if app_due => {
                    app_busy = true;
                    self.last_app = Some(Instant::now());
                    let checks = self.app_checks();
                    let timeout = self.hcfg.timeout_max.max(Duration::from_secs(2));
                    let prober = self.prober.clone();
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
            self.recorder.record(b);
        }
        // Published views must not outlive the worker (a late round result may
        // have re-published after the agent forgot the link).
        self.shared.remove(&self.plan.name);
        debug!(link = %self.plan.name, "worker stopped");
    }
}

/// Probe every target of a round concurrently.
pub async fn run_round(
    prober: &dyn Prober,
    iface: &str,
    targets: &[ProbeSpec],
    timeout: Duration,
) -> (Round, Vec<(String, ProbeOutcome)>) {
    let futs = targets.iter().map(|t| async move {
        let o = prober.probe(iface, t, timeout).await;
        (t.label(), o)
    });
    let outcomes: Vec<(String, ProbeOutcome)> = futures::future::join_all(futs).await;
    let rtts: Vec<Duration> = outcomes
        .iter()
        .filter_map(|(_, o)| o.result.as_ref().ok().copied())
        .collect();
    // A probe the OS refused to send is not packet loss: count only probes
    // that left (the refusal still fails the round when nothing else answers).
    let sent = outcomes
        .iter()
        .filter(|(_, o)| {
            !matches!(
                o.result,
                Err(ProbeFailure::Permission(_) | ProbeFailure::NoSuchInterface)
            )
        })
        .count();
    let round = Round {
        sent: sent as u32,
        answered: rtts.len() as u32,
        rtts,
        failure: round_failure(&outcomes),
    };
    (round, outcomes)
}
