//! Fresh evidence, as pure code: how often a link is probed and with how many
//! targets (its *pace*), how long its last clean round vouches for it (its
//! *confirmation window*), and from those whether the device is online. It
//! never reads a clock or a socket: timestamps in, decisions out.
//!
//! Rules:
//! - a link asked to confirm (see [`LinkNow::confirm_after`]: the policy is
//!   about to choose it, or the chosen link failed a round and this link's
//!   last clean round is older than that failure) is probed at the active
//!   interval with every target until a clean round newer than the request
//!   (or until it is no longer online); meanwhile the older evidence of a
//!   standby link does not count for the device (its window is zero: it was
//!   asked because that evidence is older than the trouble, or older than
//!   `interval_active × up_after`), while the active link keeps its window
//!   (it is asked because another link failed a round);
//! - a link that failed a round (or is proving itself after `down`) is probed
//!   at the active interval with every target until the health machine has
//!   confirmed it either way ([`crate::agent::health::LinkHealth::confirming`]);
//!   its window stays the one of its role (its own hysteresis bounds how long
//!   it can stay `up` with failing rounds);
//! - otherwise the role sets the pace. The active link (it carries the default
//!   route, or the policy chose it) is probed at `interval_active` with every
//!   target. A metered active link that uses its traffic as evidence is probed
//!   every `interval_metered_active` with one target (the traffic watch,
//!   [`crate::agent::traffic`], asks for a full round at once when the link
//!   sends but receives nothing); without traffic evidence a metered active
//!   link is probed at least a second apart. Standby links are probed every
//!   `interval_standby` (`interval_metered_standby` when metered) with one
//!   target, every target while `down`;
//! - a role's window is its interval plus the link's probe timeout and a
//!   little slack (a healthy link never looks stale between two rounds), and
//!   on an active link at least `interval_active × up_after`;
//! - the device is online while some `up` or `degraded` link's last clean
//!   round (or traffic proof) is within its window. A link that is `down` or
//!   `absent` never counts, however recent its evidence.

use crate::config::agent::HealthSection;
use crate::shared::time::Millis;
use crate::wire::LinkState;
use std::time::Duration;

/// Slack added to a window for timer jitter and scheduling.
pub const SLACK: Duration = Duration::from_millis(250);

/// The schedule figures, from `[health]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaceParams {
    pub interval_active: Duration,
    pub interval_standby: Duration,
    pub interval_metered_standby: Duration,
    pub interval_metered_active: Duration,
    /// Use a metered active link's traffic as evidence (`traffic_evidence`).
    pub traffic_evidence: bool,
    /// How old the last clean round of a link may be for the policy to move
    /// to it: `interval_active × up_after`.
    pub fresh_for: Duration,
}

impl PaceParams {
    pub fn from_config(h: &HealthSection) -> Self {
        PaceParams {
            interval_active: h.interval_active,
            interval_standby: h.interval_standby,
            interval_metered_standby: h.interval_metered_standby,
            interval_metered_active: h.interval_metered_active,
            traffic_evidence: h.traffic_evidence,
            fresh_for: fresh_for(h),
        }
    }
}

impl Default for PaceParams {
    fn default() -> Self {
        Self::from_config(&HealthSection::default())
    }
}

/// `interval_active × up_after`: the age beyond which a link's last clean
/// round no longer proves it to the policy.
pub fn fresh_for(h: &HealthSection) -> Duration {
    h.interval_active.saturating_mul(h.up_after)
}

/// What a link's pace depends on, at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkNow {
    /// Carries the default route, or is the policy's choice.
    pub active: bool,
    pub metered: bool,
    /// The link's traffic counters can be read (traffic evidence possible).
    pub counters: bool,
    pub state: LinkState,
    /// The health machine is confirming a change (failed rounds on a
    /// reachable link, clean rounds on a `down` one).
    pub confirming: bool,
    /// When the last clean round (or traffic proof) came in.
    pub last_clean: Option<Millis>,
    /// Asked to confirm: the link needs a clean round at or after this time.
    pub confirm_after: Option<Millis>,
    /// The link's probe timeout now (RTT-adaptive).
    pub timeout: Duration,
}

impl LinkNow {
    /// Is a confirmation asked for and not yet given?
    pub fn requested(&self) -> bool {
        self.state.is_online()
            && self
                .confirm_after
                .is_some_and(|t| self.last_clean.is_none_or(|c| c < t))
    }
}

/// Why the link is probed at its current rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Active link: every target at `interval_active`.
    Fast,
    /// Confirming a change or a request: every target at `interval_active`.
    Confirm,
    /// Metered active link with traffic as evidence: slow rounds.
    Traffic,
    /// Standby: slow rounds.
    Slow,
}

/// How a link is probed now, and how long its last clean round vouches for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub mode: Mode,
    /// Time from one round's start to the next one's.
    pub interval: Duration,
    /// Probe every reachability target (else one, rotating).
    pub all_targets: bool,
    /// The confirmation window.
    pub window: Duration,
}

/// The pace the facts call for.
pub fn pace(l: &LinkNow, p: &PaceParams) -> Pace {
    let role = role_pace(l, p);
    if l.requested() {
        return Pace {
            mode: Mode::Confirm,
            interval: p.interval_active,
            all_targets: true,
            // The active link keeps vouching meanwhile: it is asked because
            // another link failed, not because its own evidence is in doubt.
            window: if l.active {
                role.window
            } else {
                Duration::ZERO
            },
        };
    }
    if l.confirming {
        return Pace {
            mode: Mode::Confirm,
            interval: p.interval_active,
            all_targets: true,
            window: role.window,
        };
    }
    role
}

fn role_pace(l: &LinkNow, p: &PaceParams) -> Pace {
    let down = !l.state.is_online();
    let window = |interval: Duration| interval + l.timeout + SLACK;
    if l.active {
        if l.metered && p.traffic_evidence && l.counters {
            let interval = p.interval_metered_active;
            return Pace {
                mode: Mode::Traffic,
                interval,
                all_targets: down,
                window: window(interval),
            };
        }
        let interval = if l.metered {
            p.interval_active.max(Duration::from_secs(1))
        } else {
            p.interval_active
        };
        return Pace {
            mode: Mode::Fast,
            interval,
            all_targets: true,
            window: window(interval).max(p.fresh_for),
        };
    }
    let interval = if l.metered {
        p.interval_metered_standby
    } else {
        p.interval_standby
    };
    Pace {
        mode: Mode::Slow,
        interval,
        all_targets: down,
        window: window(interval),
    }
}

/// One link as the device's `online` sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vouch {
    pub state: LinkState,
    pub last_clean: Option<Millis>,
    pub window: Duration,
}

impl Vouch {
    /// Until when this link vouches for the device (None: it does not).
    pub fn until(&self) -> Option<Millis> {
        if !self.state.is_online() {
            return None;
        }
        self.last_clean.map(|c| c.plus(self.window))
    }
}

/// The device's `online` at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Online {
    pub online: bool,
    /// When `online` turns false if no new evidence comes (None when offline).
    pub until: Option<Millis>,
}

/// Is the device online at `now`: some `up` or `degraded` link whose last
/// clean round is within its window?
pub fn device_online(now: Millis, links: impl IntoIterator<Item = Vouch>) -> Online {
    let until = links
        .into_iter()
        .filter_map(|v| v.until())
        .filter(|u| *u >= now)
        .max();
    Online {
        online: until.is_some(),
        until,
    }
}

#[cfg(test)]
mod tests;
