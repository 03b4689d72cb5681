//! Which link carries the default route, as pure code: the candidates' states
//! (with when each last changed) and a timestamp in, a [`Decision`] out. It
//! never reads a clock or a socket, so tests drive hours of simulated time in
//! milliseconds.
//!
//! Rules:
//! - ranking, best first: online (`up`/`degraded`) before not; `up` before
//!   `degraded`; non-metered before metered; lower `priority` first; then name
//!   (the name only breaks ties: it never causes a fail-back on its own);
//! - no current link, or the current one not online (or gone from the list) →
//!   switch at once to the best online link (`Initial` / `CurrentDown`); none
//!   online → no link (`NoLink`), `order` still filled;
//! - current `degraded` while some link is `up` → switch at once to the best
//!   `up` one (`CurrentDegraded`);
//! - otherwise a better-ranked link takes over only once it has kept its state
//!   for its hold-down (`FailBack`); until then it is reported as `pending`.
//!   Sticky mode never fails back while the current link is online;
//! - a *flap* of X is recorded whenever the route leaves X because X went
//!   down or degraded (`CurrentDown`, `CurrentDegraded`, or `NoLink` after X
//!   failed). X's hold-down is `hold_down` for 0 or 1 flap within the
//!   `flap_window`, and doubles with each further one, capped at
//!   `hold_down_max`; flaps older than the window are forgotten (it decays);
//! - a manual preference wins whenever that link is online (`Manual`); when it
//!   is not, the rules above apply and the reason says so. Clearing it picks
//!   the best online link at once, without hold-down (`ManualCleared`).
//!
//! Fresh evidence (a link's last clean round, [`Candidate::last_clean`]):
//! - the route only ever moves to a link whose last round was clean and no
//!   older than `fresh_for` (`interval_active × up_after`); the current link
//!   may stay while it is online (it is probed at the active rate);
//! - an online link whose evidence is stale is *unconfirmed*: when a rule
//!   above would move the route to it, the policy asks for its confirmation
//!   ([`Decision::confirm`]) and meanwhile stays on the current link if that
//!   is online, or chooses no link (`Confirming`) if it is not, rather than a
//!   worse link it would leave again a moment later;
//! - an online link whose last round failed (other than the current one) is
//!   *doubtful*: never chosen, never waited for (its own fast rounds settle
//!   it either way);
//! - while the chosen link is in doubt (it failed a round), and while no link
//!   is chosen, every other online link whose last clean round is older than
//!   the beginning of that trouble is asked to confirm: the policy is about to
//!   choose among them;
//! - when another online link fails a round, the chosen link is asked to
//!   confirm too unless proven since (an outage may be area-wide).

use crate::shared::time::Millis;
use crate::wire::LinkState;
use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Duration;

mod first;
mod hold_down;
mod rank;

#[cfg(test)]
use rank::health_rank;
use rank::{Avail, Outcome, ask, avail, first_reason, human, pref_key, rank_cmp, went};

/// Tuning of the fail-over policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyParams {
    /// A better link must keep its state this long before we fail back to it.
    pub hold_down: Duration,
    /// Cap of the hold-down as it grows with flaps.
    pub hold_down_max: Duration,
    /// Failovers away from a link within this window count as its flaps.
    pub flap_window: Duration,
    /// Never fail back automatically while the current link is online.
    pub sticky: bool,
    /// The route moves only to a link whose last clean round is no older
    /// (`interval_active × up_after`).
    pub fresh_for: Duration,
    /// After the agent starts, how long the first choice may wait for a
    /// better link whose first round is not in yet (zero: never waits).
    pub first_choice_wait: Duration,
}

impl Default for PolicyParams {
    fn default() -> Self {
        PolicyParams {
            hold_down: Duration::from_secs(10),
            hold_down_max: Duration::from_secs(5 * 60),
            flap_window: Duration::from_secs(10 * 60),
            sticky: false,
            fresh_for: Duration::from_millis(2500),
            first_choice_wait: Duration::ZERO,
        }
    }
}

/// One link as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub name: String,
    /// Lower is preferred.
    pub priority: u32,
    pub metered: bool,
    pub state: LinkState,
    /// When the link's state last changed (from `LinkHealth::since`).
    pub since: Millis,
    /// When its last clean round (or traffic proof) came in.
    pub last_clean: Option<Millis>,
    /// When its first failed round since the last clean one came in: the
    /// link is in doubt.
    pub failing_since: Option<Millis>,
}

/// Why the decision chose what it chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cause {
    /// There was no current link: the best online one was taken.
    Initial,
    /// The current link is not online (or vanished): moved to the best online one.
    CurrentDown,
    /// The current link is degraded and a link is up: moved to the best up one.
    CurrentDegraded,
    /// A better link kept its state for its hold-down: moved back to it.
    FailBack,
    /// The manual preference is online and carries the route.
    Manual,
    /// The manual preference was just cleared: the best online link, at once.
    ManualCleared,
    /// No link is online (or every online one failed its last round).
    NoLink,
    /// The current link is not online and the best online link's evidence is
    /// stale: no link until its confirmation round is in.
    Confirming,
    /// Nothing to change: the current link stays (the reason says why, e.g. a
    /// better link waiting out its hold-down).
    Stay,
}

impl Cause {
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Initial => "initial",
            Cause::CurrentDown => "current-down",
            Cause::CurrentDegraded => "current-degraded",
            Cause::FailBack => "fail-back",
            Cause::Manual => "manual",
            Cause::ManualCleared => "manual-cleared",
            Cause::NoLink => "no-link",
            Cause::Confirming => "confirming",
            Cause::Stay => "stay",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome of one [`Policy::decide`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The link that carries the default route; `None` when no link is online.
    pub chosen: Option<String>,
    /// The link that carried it before this decision.
    pub previous: Option<String>,
    pub cause: Cause,
    /// One human sentence: why this link.
    pub reason: String,
    /// Every candidate in preference order (the chosen first); the route
    /// layer gives them increasing metrics.
    pub order: Vec<String>,
    /// When a better link is waiting out its hold-down: (name, time it will be
    /// eligible if nothing changes). If several wait, the one eligible first,
    /// so a caller can schedule its next `decide` at that time.
    pub pending: Option<(String, Millis)>,
    /// Links to confirm now, each with the time its next clean round must
    /// not be older than (sorted by name).
    pub confirm: Vec<(String, Millis)>,
}

impl Decision {
    /// Did this decision move the route?
    pub fn switched(&self) -> bool {
        self.chosen != self.previous
    }
}

/// At most this many flaps are remembered per link: far beyond the count
/// at which any hold-down reaches its cap.
const MAX_FLAPS: usize = 64;

/// The fail-over policy: the current link, the manual preference and each
/// link's flap history.
#[derive(Debug, Clone)]
pub struct Policy {
    params: PolicyParams,
    current: Option<String>,
    manual: Option<String>,
    /// A manual preference was cleared since the last decision.
    cleared: bool,
    /// Per link, when the route left it because it failed (oldest first).
    flaps: BTreeMap<String, VecDeque<Millis>>,
    /// The link the route left while a confirmation is awaited.
    left: Option<String>,
    /// Since when the chosen link is in doubt, or no link is chosen.
    trouble: Option<Millis>,
    /// When the first decision was made (the agent's start).
    first_at: Option<Millis>,
}

impl Policy {
    pub fn new(params: PolicyParams) -> Self {
        Policy {
            params,
            current: None,
            manual: None,
            cleared: false,
            flaps: BTreeMap::new(),
            left: None,
            trouble: None,
            first_at: None,
        }
    }

    pub fn params(&self) -> &PolicyParams {
        &self.params
    }

    /// Replace the tuning (config reload) without losing the state.
    pub fn set_params(&mut self, p: PolicyParams) {
        self.params = p;
    }

    /// Manual override from `linkwatch prefer LINK`; `None` = automatic again.
    pub fn prefer(&mut self, link: Option<String>) {
        match link {
            Some(l) => {
                self.manual = Some(l);
                self.cleared = false;
            }
            None => {
                if self.manual.take().is_some() {
                    self.cleared = true;
                }
            }
        }
    }

    pub fn preferred(&self) -> Option<&str> {
        self.manual.as_deref()
    }

    pub fn current(&self) -> Option<&str> {
        self.current.as_deref()
    }

    /// Decide with the candidates as they are at `now`. Returns the decision
    /// every time (callers compare `chosen` with `previous`, see
    /// [`Decision::switched`]); switching updates the internal state.
    /// Names should be unique; of duplicates only the first counts.
    pub fn decide(&mut self, now: Millis, candidates: &[Candidate]) -> Decision {
        self.forget_old_flaps(now);
        let first_at = *self.first_at.get_or_insert(now);
        let first_until = first_at.plus(self.params.first_choice_wait);
        // At start, a better link whose first round is not in yet: waited for.
        let mut awaited: Option<&Candidate> = None;
        let mut ranked: Vec<&Candidate> = Vec::with_capacity(candidates.len());
        for c in candidates {
            if !ranked.iter().any(|r| r.name == c.name) {
                ranked.push(c);
            }
        }
        ranked.sort_by(|a, b| rank_cmp(a, b));
        let find = |name: &str| ranked.iter().copied().find(|c| c.name == name);
        let previous = self.current.clone();
        let fresh_for = self.params.fresh_for;
        let av = |c: &Candidate| avail(c, now, fresh_for, previous.as_deref());
        // The link the rules would want: the best one that is usable or worth
        // confirming.
        let best = ranked
            .iter()
            .copied()
            .find(|c| matches!(av(c), Avail::Ready | Avail::Unconfirmed));
        let cur = previous.as_deref().and_then(find);
        let cleared = std::mem::take(&mut self.cleared);
        // Evidence must not be older than this for a confirmation.
        let fresh_after = Millis(now.0.saturating_sub(fresh_for.as_millis() as u64));
        let mut confirm: BTreeMap<String, Millis> = BTreeMap::new();

        let mut note = None;
        let mut out: Option<Outcome> = None;
        if let Some(m) = self.manual.as_deref() {
            match find(m) {
                // An unconfirmed preference is confirmed first (below).
                Some(c) if matches!(av(c), Avail::Ready | Avail::Unconfirmed) => {
                    out = Some(Outcome::new(
                        Some(c),
                        Cause::Manual,
                        format!("manual preference for {m}"),
                    ));
                }
                Some(c) if av(c) == Avail::Doubtful => {
                    note = Some(format!(
                        "manual preference for {m} not usable ({m} failed its last round)"
                    ))
                }
                Some(c) => {
                    note = Some(format!(
                        "manual preference for {m} not usable ({m} is {})",
                        c.state
                    ))
                }
                None => {
                    note = Some(format!(
                        "manual preference for {m} not usable ({m} is not present)"
                    ))
                }
            }
        }

        let out = match (out, best) {
            (Some(o), _) => o,
            (None, None) => {
                let why = if ranked.iter().any(|c| c.state.is_online()) {
                    "no online link is confirmed: each failed its last round"
                } else {
                    "no link is online"
                };
                Outcome::new(None, Cause::NoLink, why.into())
            }
            (None, Some(b)) if cleared => Outcome::new(
                Some(b),
                Cause::ManualCleared,
                format!("manual preference cleared: {}", first_reason(b)),
            ),
            (None, Some(b)) => match (previous.as_deref(), cur) {
                (None, _) => match self.left.as_deref() {
                    Some(p) if p != b.name => Outcome::new(
                        Some(b),
                        Cause::CurrentDown,
                        format!("{p} went down: moved to {}, just confirmed", b.name),
                    ),
                    _ => match first::awaited(&ranked, b).filter(|_| now < first_until) {
                        Some(w) => {
                            awaited = Some(w);
                            Outcome {
                                chosen: None,
                                cause: Cause::Confirming,
                                reason: format!(
                                    "waiting up to {} for {}'s first round before the first choice",
                                    human(first_until.saturating_sub(now), true),
                                    w.name
                                ),
                                pending: Some((w.name.clone(), first_until)),
                            }
                        }
                        None => Outcome::new(Some(b), Cause::Initial, first_reason(b)),
                    },
                },
                (Some(p), None) => Outcome::new(
                    Some(b),
                    Cause::CurrentDown,
                    format!("{p} disappeared: moved to {}", b.name),
                ),
                (Some(p), Some(c)) if !c.state.is_online() => Outcome::new(
                    Some(b),
                    Cause::CurrentDown,
                    format!("{p} {}: moved to {}", went(c.state), b.name),
                ),
                (Some(p), Some(c))
                    if c.state == LinkState::Degraded && b.state == LinkState::Up =>
                {
                    Outcome::new(
                        Some(b),
                        Cause::CurrentDegraded,
                        format!("{p} is degraded: moved to {}, which is up", b.name),
                    )
                }
                (Some(_), Some(c)) => self.fail_back(now, &ranked, c, &av),
            },
        };

        // Never move to a link whose evidence is stale: confirm it first.
        let out = match out.chosen {
            Some(t) if Some(t.name.as_str()) != previous.as_deref() && av(t) != Avail::Ready => {
                ask(&mut confirm, &t.name, fresh_after);
                if out.cause == Cause::ManualCleared {
                    self.cleared = true;
                }
                match cur.filter(|c| c.state.is_online()) {
                    Some(c) => Outcome {
                        chosen: Some(c),
                        cause: Cause::Stay,
                        reason: format!("confirming {} first ({})", t.name, out.reason),
                        pending: out.pending,
                    },
                    None => {
                        let why = match (previous.as_deref(), cur) {
                            (Some(p), Some(c)) => format!(
                                "{p} {}: confirming {} before moving to it",
                                went(c.state),
                                t.name
                            ),
                            (Some(p), None) => format!(
                                "{p} disappeared: confirming {} before moving to it",
                                t.name
                            ),
                            (None, _) => format!("confirming {} before choosing it", t.name),
                        };
                        Outcome::new(None, Cause::Confirming, why)
                    }
                }
            }
            _ => out,
        };

        let Outcome {
            chosen,
            cause,
            mut reason,
            pending,
        } = out;
        if let Some(n) = note {
            reason = format!("{n}; {reason}");
        }
        // The route leaves a link that failed: a flap of that link.
        if let Some(p) = previous.as_deref()
            && chosen.map(|c| c.name.as_str()) != Some(p)
            && matches!(
                cause,
                Cause::CurrentDown | Cause::CurrentDegraded | Cause::NoLink | Cause::Confirming
            )
        {
            self.record_flap(p, now);
        }
        // Trouble: the chosen link failed a round, or no link is chosen. It
        // lasts until a chosen link is not in doubt; meanwhile every online
        // link not proven since it began is asked to confirm (the policy is
        // about to choose among them).
        self.trouble = match chosen {
            Some(c) => c.failing_since,
            None => Some(self.trouble.unwrap_or(now)),
        };
        if let Some(t) = self.trouble {
            for x in ranked
                .iter()
                .filter(|x| chosen.is_none_or(|c| c.name != x.name))
            {
                if x.state.is_online() && x.last_clean.is_none_or(|l| l < t) {
                    ask(&mut confirm, &x.name, t);
                }
            }
        }
        // A link falling into doubt elsewhere questions the chosen one (an
        // outage may be area-wide): a chosen link not proven since is asked
        // too. It costs one round where the chosen link is probed fast, and
        // spares a metered one on its slow traffic schedule a long wait.
        if let Some(c) = chosen
            && c.failing_since.is_none()
            && let Some(f) = ranked
                .iter()
                .filter(|x| x.name != c.name && x.state.is_online())
                .filter_map(|x| x.failing_since)
                .max()
            && c.last_clean.is_none_or(|l| l < f)
        {
            ask(&mut confirm, &c.name, f);
        }
        self.left = match (cause, chosen) {
            (Cause::Confirming, _) => previous.clone().or(self.left.take()),
            _ => None,
        };
        // The route layer's order: the chosen link first (or, while the
        // first choice waits for it, the awaited one: the route stays where
        // it will most likely go).
        let lead = chosen.or(awaited);
        let mut order: Vec<String> = Vec::with_capacity(ranked.len());
        if let Some(c) = lead {
            order.push(c.name.clone());
        }
        order.extend(
            ranked
                .iter()
                .filter(|r| lead.is_none_or(|c| c.name != r.name))
                .map(|r| r.name.clone()),
        );
        let chosen = chosen.map(|c| c.name.clone());
        self.current = chosen.clone();
        Decision {
            chosen,
            previous,
            cause,
            reason,
            order,
            pending,
            confirm: confirm.into_iter().collect(),
        }
    }

    /// The current link `c` is online and nothing forces a switch: fail back
    /// to a better link that served its hold-down, or stay.
    fn fail_back<'a>(
        &self,
        now: Millis,
        ranked: &[&'a Candidate],
        c: &'a Candidate,
        av: &dyn Fn(&Candidate) -> Avail,
    ) -> Outcome<'a> {
        let better: Vec<&Candidate> = ranked
            .iter()
            .copied()
            .filter(|x| {
                matches!(av(x), Avail::Ready | Avail::Unconfirmed) && pref_key(x) < pref_key(c)
            })
            .collect();
        if better.is_empty() {
            let why = if ranked.first().is_some_and(|f| f.name == c.name) {
                first_reason(c)
            } else {
                match c.state {
                    LinkState::Up => format!("{} is up and no link ranks higher", c.name),
                    _ => format!("{} is degraded, but no link is up", c.name),
                }
            };
            return Outcome::new(Some(c), Cause::Stay, why);
        }
        if self.params.sticky {
            return Outcome::new(
                Some(c),
                Cause::Stay,
                format!(
                    "sticky: staying on {} while it is online ({} ranks higher)",
                    c.name, better[0].name
                ),
            );
        }
        let ready: Vec<(&Candidate, Millis)> = better
            .iter()
            .map(|x| (*x, self.eligible_at(&x.name, x.since, now)))
            .collect();
        let target = ready.iter().find(|(_, at)| *at <= now).map(|(x, _)| *x);
        // The waiting link above the target (or above `c`) that is eligible first.
        let pending = ready
            .iter()
            .take_while(|(x, _)| target.is_none_or(|t| rank_cmp(x, t) == Ordering::Less))
            .filter(|(_, at)| *at > now)
            .min_by_key(|(_, at)| *at)
            .map(|(x, at)| (x.name.clone(), *at));
        let mut out = match target {
            Some(t) => Outcome::new(
                Some(t),
                Cause::FailBack,
                format!(
                    "{} clean for {}: failing back from {}",
                    t.name,
                    human(now.saturating_sub(t.since), false),
                    c.name
                ),
            ),
            None => {
                let (p, at) = pending.as_ref().expect("a better link is waiting");
                Outcome::new(
                    Some(c),
                    Cause::Stay,
                    format!(
                        "{p} is waiting out its hold-down ({} left): staying on {}",
                        human(at.saturating_sub(now), true),
                        c.name
                    ),
                )
            }
        };
        out.pending = pending;
        out
    }
}

#[cfg(test)]
mod tests;
