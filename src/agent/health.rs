//! The health state machine of one link, as pure code: timestamped observations
//! in (presence, carrier, probe rounds, application checks), the link's state
//! out (`up`, `degraded`, `down`, `absent`, with a reason). It never reads a
//! clock or a socket, so tests drive hours of simulated time in milliseconds.
//!
//! Rules:
//! - not present → `absent`; carrier lost → `down` (reason `carrier`) at once;
//! - a *round* probes the link's reachability targets; it is clean when at
//!   least `quorum` targets answered (so one dead target never fails a round);
//! - `down_after` consecutive failed rounds → `down`; `up_after` consecutive
//!   clean rounds → back (hysteresis). The very first clean round after start
//!   brings a link up at once (nothing to flap from yet);
//! - while reachable: loss or median RTT over the window above its threshold,
//!   or an application check failing → `degraded` with the reason; recovery
//!   needs the figure below a lower threshold (hysteresis again).

use crate::config::agent::HealthSection;
use crate::shared::time::Millis;
use crate::wire::LinkState;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// Thresholds and counts, from `[health]` (see `config.example.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthParams {
    pub down_after: u32,
    pub up_after: u32,
    pub quorum: u32,
    pub window: usize,
    pub loss_degraded_pct: f64,
    pub loss_recover_pct: f64,
    pub latency_degraded: Duration,
    pub latency_recover: Duration,
    pub app_fail_after: u32,
    pub timeout_min: Duration,
    pub timeout_max: Duration,
    /// Rounds needed in the window before loss or latency is judged at all.
    pub min_samples: u32,
}

impl HealthParams {
    pub fn from_config(h: &HealthSection, quorum: u32) -> Self {
        HealthParams {
            down_after: h.down_after,
            up_after: h.up_after,
            quorum,
            window: h.window as usize,
            loss_degraded_pct: h.loss_degraded_pct,
            loss_recover_pct: h.loss_degraded_pct / 2.0,
            latency_degraded: h.latency_degraded,
            latency_recover: h.latency_degraded.mul_f64(0.8),
            app_fail_after: h.app_fail_after,
            timeout_min: h.timeout_min,
            timeout_max: h.timeout_max,
            min_samples: (h.window / 2).max(1),
        }
    }
}

/// The probe timeout before any RTT is measured: one second, or
/// `timeout_max` if lower (never below `timeout_min`).
pub fn first_timeout(timeout_min: Duration, timeout_max: Duration) -> Duration {
    timeout_max.min(Duration::from_secs(1)).max(timeout_min)
}

impl Default for HealthParams {
    fn default() -> Self {
        Self::from_config(&HealthSection::default(), 1)
    }
}

/// One round of reachability probes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Round {
    /// Targets probed in this round.
    pub sent: u32,
    /// Targets that answered.
    pub answered: u32,
    /// Round-trip times of the answers.
    pub rtts: Vec<Duration>,
    /// When the round failed: the most telling failure word (`timeout`,
    /// `permission`, `no-interface`, ...).
    pub failure: Option<String>,
}

impl Round {
    /// Is the round clean: at least `quorum` targets answered (all of them
    /// when fewer were probed)?
    pub fn clean(&self, quorum: u32) -> bool {
        self.sent > 0 && self.answered >= quorum.min(self.sent).max(1)
    }

    /// A clean round: `answered` of `sent` with the given RTT each.
    pub fn answered(sent: u32, answered: u32, rtt: Duration) -> Self {
        Round {
            sent,
            answered,
            rtts: vec![rtt; answered as usize],
            failure: if answered == 0 {
                Some("timeout".into())
            } else {
                None
            },
        }
    }
}

/// Something the agent learned about a link.
#[derive(Debug, Clone, PartialEq)]
pub enum Observation {
    /// The interface exists (or vanished).
    Present(bool),
    /// Carrier (operational state) from netlink.
    Carrier(bool),
    /// A round of reachability probes finished.
    Round(Round),
    /// An application check finished. `reason` is the failure word when it failed.
    App {
        probe: String,
        ok: bool,
        reason: Option<String>,
    },
}

/// A change of state, to log, count and record.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub from: LinkState,
    pub to: LinkState,
    pub reason: Option<String>,
    pub at: Millis,
}

#[derive(Debug, Clone, PartialEq)]
struct AppCheck {
    fails: u32,
    failing: bool,
    reason: String,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct WindowEntry {
    sent: u32,
    answered: u32,
}

/// The health of one link.
#[derive(Debug, Clone)]
pub struct LinkHealth {
    params: HealthParams,
    state: LinkState,
    reason: Option<String>,
    since: Millis,
    present: bool,
    carrier: bool,
    /// Reachability lost through probes (or not yet proven).
    reach_down: bool,
    reach_reason: String,
    ever_up: bool,
    fails: u32,
    oks: u32,
    window: VecDeque<WindowEntry>,
    rtts: VecDeque<Duration>,
    srtt: Option<f64>,
    rttvar: f64,
    quality: Option<&'static str>,
    apps: BTreeMap<String, AppCheck>,
    transitions: u64,
}

impl LinkHealth {
    /// A link seen for the first time at `at`: present, carrier assumed up,
    /// `down` with reason `starting` until the first clean round.
    pub fn new(params: HealthParams, at: Millis) -> Self {
        LinkHealth {
            params,
            state: LinkState::Down,
            reason: Some("starting".into()),
            since: at,
            present: true,
            carrier: true,
            reach_down: true,
            reach_reason: "starting".into(),
            ever_up: false,
            fails: 0,
            oks: 0,
            window: VecDeque::new(),
            rtts: VecDeque::new(),
            srtt: None,
            rttvar: 0.0,
            quality: None,
            apps: BTreeMap::new(),
            transitions: 0,
        }
    }

    pub fn state(&self) -> LinkState {
        self.state
    }
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
    pub fn since(&self) -> Millis {
        self.since
    }
    pub fn params(&self) -> &HealthParams {
        &self.params
    }
    /// Replace thresholds (config reload) without losing the state.
    pub fn set_params(&mut self, params: HealthParams) {
        self.params = params;
    }
    /// Number of state changes so far.
    pub fn transitions(&self) -> u64 {
        self.transitions
    }
    /// Consecutive failed rounds right now (a suspicion the runtime acts on
    /// by probing faster).
    pub fn failing_rounds(&self) -> u32 {
        self.fails
    }
    /// Is a change being confirmed (failed rounds on a reachable link, or clean
    /// rounds on a down one)? The runtime then probes at the fast rate.
    pub fn confirming(&self) -> bool {
        self.present
            && self.carrier
            && ((self.fails > 0 && !self.reach_down) || (self.oks > 0 && self.reach_down))
    }

    /// Is the link waiting to be proven reachable (down but with carrier)?
    pub fn recovering(&self) -> bool {
        self.present && self.carrier && self.reach_down
    }

    /// Loss over the window, percent; `None` before any probe.
    pub fn loss_pct(&self) -> Option<f64> {
        let (sent, answered) = self.window_totals();
        (sent > 0).then(|| 100.0 * f64::from(sent - answered) / f64::from(sent))
    }

    /// Median RTT over the window, milliseconds.
    pub fn rtt_ms(&self) -> Option<f64> {
        median(&self.rtts).map(|d| d.as_secs_f64() * 1000.0)
    }

    /// Probe timeout adapted to the link's measured RTT:
    /// `2·srtt + 4·rttvar`, clamped to `[timeout_min, timeout_max]`; before
    /// any measurement, one second (or `timeout_max` if lower).
    pub fn timeout(&self) -> Duration {
        let p = &self.params;
        match self.srtt {
            None => first_timeout(p.timeout_min, p.timeout_max),
            Some(srtt) => {
                let t = Duration::from_secs_f64((2.0 * srtt + 4.0 * self.rttvar).max(0.0));
                t.clamp(p.timeout_min, p.timeout_max)
            }
        }
    }

    fn window_totals(&self) -> (u32, u32) {
        self.window
            .iter()
            .fold((0, 0), |(s, a), e| (s + e.sent, a + e.answered.min(e.sent)))
    }

    /// Feed one observation made at `at`; returns the transition if the state
    /// (or, within the same state, the reason) changed.
    pub fn observe(&mut self, at: Millis, obs: Observation) -> Option<Transition> {
        match obs {
            Observation::Present(p) => {
                if !p {
                    self.lose_reach("absent");
                } else if !self.present {
                    self.carrier = true;
                    self.reach_reason = "probing".into();
                }
                self.present = p;
            }
            Observation::Carrier(c) => {
                if !c {
                    self.lose_reach("carrier");
                } else if !self.carrier && self.reach_down {
                    // Carrier is back: down until probes prove the link.
                    self.reach_reason = "probing".into();
                }
                self.carrier = c;
            }
            Observation::Round(r) => self.round(r),
            Observation::App { probe, ok, reason } => self.app(probe, ok, reason),
        }
        self.settle(at)
    }

    fn lose_reach(&mut self, why: &str) {
        self.reach_down = true;
        self.reach_reason = why.to_string();
        self.fails = 0;
        self.oks = 0;
        self.clear_quality();
    }

    fn clear_quality(&mut self) {
        self.window.clear();
        self.rtts.clear();
        self.quality = None;
        self.apps.clear();
    }

    fn round(&mut self, r: Round) {
        if !self.present || !self.carrier {
            // A round that raced with carrier loss tells nothing new.
            return;
        }
        for rtt in &r.rtts {
            self.sample_rtt(*rtt);
        }
        if r.clean(self.params.quorum) {
            self.oks += 1;
            self.fails = 0;
            if self.reach_down && (self.oks >= self.params.up_after || !self.ever_up) {
                self.reach_down = false;
                self.ever_up = true;
                self.window.clear();
                self.rtts.clear();
            }
        } else {
            self.fails += 1;
            self.oks = 0;
            let why = match r.failure.as_deref() {
                Some(w @ ("permission" | "no-interface")) => w.to_string(),
                _ => "probes".to_string(),
            };
            if !self.reach_down && self.fails >= self.params.down_after {
                self.lose_reach(&why);
                return;
            }
            if self.reach_down && self.fails >= self.params.down_after {
                // Never came up (or still down): say why now, not "starting".
                self.reach_reason = why;
            }
        }
        if !self.reach_down {
            self.window.push_back(WindowEntry {
                sent: r.sent,
                answered: r.answered,
            });
            while self.window.len() > self.params.window {
                self.window.pop_front();
            }
            for rtt in r.rtts {
                self.rtts.push_back(rtt);
            }
            let cap = self.params.window * 4;
            while self.rtts.len() > cap {
                self.rtts.pop_front();
            }
            self.judge_quality();
        }
    }

    fn sample_rtt(&mut self, rtt: Duration) {
        let r = rtt.as_secs_f64();
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2.0;
            }
            Some(s) => {
                self.rttvar = 0.75 * self.rttvar + 0.25 * (s - r).abs();
                self.srtt = Some(0.875 * s + 0.125 * r);
            }
        }
    }

    fn judge_quality(&mut self) {
        let p = &self.params;
        if (self.window.len() as u32) < p.min_samples {
            return;
        }
        let loss = self.loss_pct().unwrap_or(0.0);
        let rtt = median(&self.rtts);
        let lossy = loss > p.loss_degraded_pct;
        let slow = rtt.is_some_and(|r| r > p.latency_degraded);
        self.quality = match self.quality {
            None if lossy => Some("loss"),
            None if slow => Some("latency"),
            None => None,
            Some(q) => {
                let loss_ok = loss <= p.loss_recover_pct;
                let rtt_ok = rtt.is_none_or(|r| r <= p.latency_recover);
                if loss_ok && rtt_ok {
                    None
                } else if !loss_ok && lossy {
                    Some("loss")
                } else if !rtt_ok && slow {
                    Some("latency")
                } else {
                    Some(q)
                }
            }
        };
    }

    fn app(&mut self, probe: String, ok: bool, reason: Option<String>) {
        if self.reach_down || !self.present || !self.carrier {
            return;
        }
        if ok {
            self.apps.remove(&probe);
            return;
        }
        let reason = reason.unwrap_or_else(|| "app".into());
        let entry = self.apps.entry(probe).or_insert(AppCheck {
            fails: 0,
            failing: false,
            reason: reason.clone(),
        });
        entry.fails += 1;
        entry.reason = reason;
        if entry.reason == "captive" || entry.fails >= self.params.app_fail_after {
            entry.failing = true;
        }
    }

    /// The state and reason the facts call for now.
    fn target(&self) -> (LinkState, Option<String>) {
        if !self.present {
            return (LinkState::Absent, Some("absent".into()));
        }
        if !self.carrier {
            return (LinkState::Down, Some("carrier".into()));
        }
        if self.reach_down {
            return (LinkState::Down, Some(self.reach_reason.clone()));
        }
        let failing: Vec<&AppCheck> = self.apps.values().filter(|a| a.failing).collect();
        if let Some(a) = failing.iter().find(|a| a.reason == "captive") {
            return (LinkState::Degraded, Some(a.reason.clone()));
        }
        if let Some(q) = self.quality {
            return (LinkState::Degraded, Some(q.into()));
        }
        if let Some(a) = failing.first() {
            return (LinkState::Degraded, Some(a.reason.clone()));
        }
        (LinkState::Up, None)
    }

    fn settle(&mut self, at: Millis) -> Option<Transition> {
        let (state, reason) = self.target();
        if state == self.state && reason == self.reason {
            return None;
        }
        let changed = state != self.state;
        let t = Transition {
            from: self.state,
            to: state,
            reason: reason.clone(),
            at,
        };
        self.state = state;
        self.reason = reason;
        // A new reason in the same state is reported too, but keeps `since`.
        if changed {
            self.since = at;
            self.transitions += 1;
        }
        Some(t)
    }
}

fn median(v: &VecDeque<Duration>) -> Option<Duration> {
    if v.is_empty() {
        return None;
    }
    let mut s: Vec<Duration> = v.iter().copied().collect();
    s.sort_unstable();
    Some(s[s.len() / 2])
}

#[cfg(test)]
mod tests;
