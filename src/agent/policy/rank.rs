//! The policy's vocabulary: how candidates rank, how a candidate can serve
//! at one moment (fresh, unconfirmed, doubtful), an outcome before it is
//! written down, and the words of its reasons.

use super::{Candidate, Cause};
use crate::shared::time::Millis;
use crate::wire::LinkState;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::time::Duration;

/// How a candidate can serve at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Avail {
    /// Online, its last round clean and no older than `fresh_for` (or it is
    /// the current link): may be chosen.
    Ready,
    /// Online, its last round clean but older: worth a confirmation round.
    Unconfirmed,
    /// Online, but its last round failed: neither chosen nor waited for.
    Doubtful,
    /// Not online.
    Off,
}

pub(super) fn avail(
    c: &Candidate,
    now: Millis,
    fresh_for: Duration,
    current: Option<&str>,
) -> Avail {
    if !c.state.is_online() {
        Avail::Off
    } else if current == Some(c.name.as_str()) {
        Avail::Ready
    } else if c.failing_since.is_some() {
        Avail::Doubtful
    } else if c
        .last_clean
        .is_some_and(|t| now.saturating_sub(t) <= fresh_for)
    {
        Avail::Ready
    } else {
        Avail::Unconfirmed
    }
}

/// Ask `name` for a clean round at or after `at` (the later of two asks wins).
pub(super) fn ask(confirm: &mut BTreeMap<String, Millis>, name: &str, at: Millis) {
    let e = confirm.entry(name.to_string()).or_insert(at);
    *e = (*e).max(at);
}

/// How a link that is not online left: "went down", "is absent".
pub(super) fn went(s: LinkState) -> &'static str {
    match s {
        LinkState::Absent => "is absent",
        _ => "went down",
    }
}

/// A decision before it is written down.
pub(super) struct Outcome<'a> {
    pub(super) chosen: Option<&'a Candidate>,
    pub(super) cause: Cause,
    pub(super) reason: String,
    pub(super) pending: Option<(String, Millis)>,
}

impl<'a> Outcome<'a> {
    pub(super) fn new(chosen: Option<&'a Candidate>, cause: Cause, reason: String) -> Self {
        Outcome {
            chosen,
            cause,
            reason,
            pending: None,
        }
    }
}

/// `up` 0, `degraded` 1, anything not online 2.
pub(super) fn health_rank(s: LinkState) -> u8 {
    match s {
        LinkState::Up => 0,
        LinkState::Degraded => 1,
        LinkState::Down | LinkState::Absent => 2,
    }
}

/// What makes a link better than another (smaller is better); the name is
/// left out, so equals never fail back to each other.
pub(super) fn pref_key(c: &Candidate) -> (u8, bool, u32) {
    (health_rank(c.state), c.metered, c.priority)
}

/// The full ranking, best first.
pub(super) fn rank_cmp(a: &Candidate, b: &Candidate) -> Ordering {
    pref_key(a)
        .cmp(&pref_key(b))
        .then_with(|| a.name.cmp(&b.name))
}

/// Why the best-ranked link is chosen.
pub(super) fn first_reason(c: &Candidate) -> String {
    match c.state {
        LinkState::Up => format!("{} is up and ranks first", c.name),
        _ => format!("{} is degraded, but no link is up", c.name),
    }
}

/// `25 s`, `2 min`, `4 min 10 s`, `1 h 5 min`; whole seconds, rounded up or down.
pub(super) fn human(d: Duration, round_up: bool) -> String {
    let mut s = d.as_secs();
    if round_up && d.subsec_nanos() > 0 {
        s += 1;
    }
    if s < 120 {
        format!("{s} s")
    } else if s < 3600 {
        match s % 60 {
            0 => format!("{} min", s / 60),
            r => format!("{} min {r} s", s / 60),
        }
    } else {
        match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        }
    }
}
