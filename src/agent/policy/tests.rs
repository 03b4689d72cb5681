//! Tests of the fail-over policy on a simulated clock: hand-written scenarios,
//! an exhaustive check of every state combination of three links, and property
//! tests over random hours of link changes (`invariants`); the scenarios of
//! fresh evidence are in `fresh`.

use super::*;
use proptest::prelude::*;

mod first;
mod fresh;
mod invariants;

const SEC: u64 = 1000;

fn cand(name: &str, priority: u32, metered: bool, state: LinkState, since: u64) -> Candidate {
    Candidate {
        name: name.into(),
        priority,
        metered,
        state,
        since: Millis(since),
        // The change came with a round: clean if the link is online.
        last_clean: state.is_online().then_some(Millis(since)),
        failing_since: None,
    }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A device's links on a simulated clock: a state change sets `since`. Every
/// online link has a clean round at each decision (as the agent's rounds give
/// it), unless its evidence was set by hand ([`Sim::evidence`]).
struct Sim {
    policy: Policy,
    links: Vec<Candidate>,
    now: u64,
    by_hand: std::collections::BTreeSet<String>,
}

impl Sim {
    /// Links given as (name, priority, metered), all `up` since t=0.
    fn new(params: PolicyParams, links: &[(&str, u32, bool)]) -> Self {
        Sim {
            policy: Policy::new(params),
            links: links
                .iter()
                .map(|(n, p, m)| cand(n, *p, *m, LinkState::Up, 0))
                .collect(),
            now: 0,
            by_hand: Default::default(),
        }
    }
    /// Set a link's evidence by hand (kept until [`Sim::probed`]).
    fn evidence(&mut self, name: &str, last_clean: Option<u64>, failing_since: Option<u64>) {
        self.by_hand.insert(name.into());
        let l = self.links.iter_mut().find(|l| l.name == name).unwrap();
        l.last_clean = last_clean.map(Millis);
        l.failing_since = failing_since.map(Millis);
    }
    /// The link's evidence follows its rounds again.
    fn probed(&mut self, name: &str) {
        self.by_hand.remove(name);
    }
    fn set(&mut self, at: u64, name: &str, state: LinkState) {
        self.now = at;
        let l = self.links.iter_mut().find(|l| l.name == name).unwrap();
        if l.state != state {
            l.state = state;
            l.since = Millis(at);
        }
    }
    fn decide(&mut self, at: u64) -> Decision {
        self.now = at;
        for l in self.links.iter_mut() {
            if !self.by_hand.contains(&l.name) && l.state.is_online() {
                l.last_clean = Some(Millis(at));
                l.failing_since = None;
            }
        }
        self.policy.decide(Millis(at), &self.links)
    }
    fn chosen(&mut self, at: u64) -> Option<String> {
        self.decide(at).chosen
    }
}

fn gateway() -> Sim {
    Sim::new(
        PolicyParams::default(),
        &[("bb0", 0, false), ("wl0", 1, false), ("mb0", 2, true)],
    )
}

#[test]
fn initial_pick_by_ranking() {
    let mut s = gateway();
    let d = s.decide(0);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(d.previous, None);
    assert_eq!(d.cause, Cause::Initial);
    assert_eq!(d.reason, "bb0 is up and ranks first");
    assert_eq!(d.order, ["bb0", "wl0", "mb0"]);
    assert_eq!(d.pending, None);
    assert!(d.switched());
    // Nothing changes: the same link stays, no switch.
    let d = s.decide(SEC);
    assert_eq!(d.cause, Cause::Stay);
    assert_eq!(d.previous.as_deref(), Some("bb0"));
    assert!(!d.switched());
    assert_eq!(s.policy.current(), Some("bb0"));

    // Starting with the primary down: the next one, and the down one last.
    let mut s = gateway();
    s.set(0, "bb0", LinkState::Down);
    let d = s.decide(0);
    assert_eq!(d.chosen.as_deref(), Some("wl0"));
    assert_eq!(d.order, ["wl0", "mb0", "bb0"]);
}

#[test]
fn failover_on_down_absent_and_removed() {
    let mut s = gateway();
    s.decide(0);
    s.set(5 * SEC, "bb0", LinkState::Down);
    let d = s.decide(5 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("wl0"));
    assert_eq!(d.previous.as_deref(), Some("bb0"));
    assert_eq!(d.cause, Cause::CurrentDown);
    assert_eq!(d.reason, "bb0 went down: moved to wl0");
    assert_eq!(d.order, ["wl0", "mb0", "bb0"]);

    s.set(6 * SEC, "wl0", LinkState::Absent);
    let d = s.decide(6 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(d.cause, Cause::CurrentDown);
    assert_eq!(d.reason, "wl0 is absent: moved to mb0");

    // The current link vanishes from the list altogether.
    let mut s = gateway();
    s.decide(0);
    s.links.retain(|l| l.name != "bb0");
    let d = s.decide(SEC);
    assert_eq!(d.chosen.as_deref(), Some("wl0"));
    assert_eq!(d.cause, Cause::CurrentDown);
    assert_eq!(d.reason, "bb0 disappeared: moved to wl0");
    assert_eq!(d.order, ["wl0", "mb0"]);
}

#[test]
fn degraded_ranks_below_up_and_up_beats_degraded_current() {
    // A captive Wi-Fi ranks below an up mobile link, metered or not.
    let mut s = Sim::new(
        PolicyParams::default(),
        &[("wl0", 0, false), ("mb0", 1, true)],
    );
    s.set(0, "wl0", LinkState::Degraded);
    assert_eq!(s.chosen(0).as_deref(), Some("mb0"));

    // The current link degrades while another is up: switch at once.
    let mut s = Sim::new(
        PolicyParams::default(),
        &[("wl0", 0, false), ("mb0", 1, true)],
    );
    s.decide(0);
    s.set(60 * SEC, "wl0", LinkState::Degraded);
    let d = s.decide(60 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(d.cause, Cause::CurrentDegraded);
    assert_eq!(d.reason, "wl0 is degraded: moved to mb0, which is up");
    assert_eq!(d.order, ["mb0", "wl0"]);

    // The current link degrades and nothing else is up: it stays.
    let mut s = Sim::new(
        PolicyParams::default(),
        &[("wl0", 0, false), ("mb0", 1, true)],
    );
    s.decide(0);
    s.set(SEC, "mb0", LinkState::Down);
    s.set(SEC, "wl0", LinkState::Degraded);
    let d = s.decide(SEC);
    assert_eq!(d.chosen.as_deref(), Some("wl0"));
    assert_eq!(d.cause, Cause::Stay);
    assert_eq!(d.reason, "wl0 is degraded, but no link is up");
    // Another degraded link does not take over either.
    s.set(2 * SEC, "mb0", LinkState::Degraded);
    assert_eq!(s.chosen(2 * SEC).as_deref(), Some("wl0"));
}

#[test]
fn metered_links_are_the_last_resort_among_equally_healthy() {
    let mut s = Sim::new(
        PolicyParams::default(),
        &[("mb0", 0, true), ("wl0", 5, false)],
    );
    let d = s.decide(0);
    assert_eq!(d.chosen.as_deref(), Some("wl0"));
    assert_eq!(d.order, ["wl0", "mb0"]);
    // But health comes first: an up metered link beats a degraded free one.
    s.set(SEC, "wl0", LinkState::Degraded);
    assert_eq!(s.chosen(SEC).as_deref(), Some("mb0"));
}

#[test]
fn fail_back_exactly_when_the_hold_down_is_served() {
    let mut s = Sim::new(
        PolicyParams::default(),
        &[("bb0", 0, false), ("mb0", 1, true)],
    );
    s.decide(0);
    s.set(1000, "bb0", LinkState::Down);
    assert_eq!(s.chosen(1000).as_deref(), Some("mb0"));
    assert_eq!(s.policy.hold_down_for("bb0", Millis(1000)), secs(10));

    s.set(5000, "bb0", LinkState::Up);
    let d = s.decide(5000);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(d.cause, Cause::Stay);
    assert_eq!(d.pending, Some(("bb0".into(), Millis(15_000))));
    assert_eq!(
        d.reason,
        "bb0 is waiting out its hold-down (10 s left): staying on mb0"
    );
    // The order is the preference order with the chosen first.
    assert_eq!(d.order, ["mb0", "bb0"]);
    let d = s.decide(14_999);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(
        d.reason,
        "bb0 is waiting out its hold-down (1 s left): staying on mb0"
    );

    let d = s.decide(15_000);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(d.previous.as_deref(), Some("mb0"));
    assert_eq!(d.cause, Cause::FailBack);
    assert_eq!(d.reason, "bb0 clean for 10 s: failing back from mb0");
    assert_eq!(d.pending, None);
    assert_eq!(d.order, ["bb0", "mb0"]);

    // A link that goes down while waiting restarts its hold-down when back.
    let mut s = Sim::new(
        PolicyParams::default(),
        &[("bb0", 0, false), ("mb0", 1, true)],
    );
    s.decide(0);
    s.set(1000, "bb0", LinkState::Down);
    s.decide(1000);
    s.set(2000, "bb0", LinkState::Up);
    s.decide(2000);
    s.set(9000, "bb0", LinkState::Down);
    s.decide(9000);
    s.set(10_000, "bb0", LinkState::Up);
    assert_eq!(s.chosen(12_000).as_deref(), Some("mb0"));
    assert_eq!(s.chosen(19_999).as_deref(), Some("mb0"));
    assert_eq!(s.chosen(20_000).as_deref(), Some("bb0"));
}

#[test]
fn the_best_eligible_link_fails_back_and_a_better_one_stays_pending() {
    let mut s = gateway();
    s.decide(0);
    s.set(0, "bb0", LinkState::Down);
    s.set(0, "wl0", LinkState::Down);
    assert_eq!(s.chosen(0).as_deref(), Some("mb0"));
    // Make bb0 flap once more so its hold-down is 20 s.
    s.policy.record_flap("bb0", Millis(0));
    s.set(SEC, "bb0", LinkState::Up);
    s.set(SEC, "wl0", LinkState::Up);
    let d = s.decide(SEC);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    // wl0 is eligible first (11 s), bb0 at 21 s.
    assert_eq!(d.pending, Some(("wl0".into(), Millis(11 * SEC))));
    let d = s.decide(11 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("wl0"));
    assert_eq!(d.cause, Cause::FailBack);
    assert_eq!(d.pending, Some(("bb0".into(), Millis(21 * SEC))));
    let d = s.decide(21 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(d.cause, Cause::FailBack);
    assert_eq!(d.pending, None);
}

#[test]
fn equal_links_never_fail_back_on_the_name_alone() {
    let mut s = Sim::new(
        PolicyParams::default(),
        &[("bb0", 0, false), ("bb1", 0, false)],
    );
    assert_eq!(s.chosen(0).as_deref(), Some("bb0"));
    s.set(SEC, "bb0", LinkState::Down);
    assert_eq!(s.chosen(SEC).as_deref(), Some("bb1"));
    s.set(2 * SEC, "bb0", LinkState::Up);
    let d = s.decide(3600 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("bb1"));
    assert_eq!(d.pending, None);
    assert_eq!(d.reason, "bb1 is up and no link ranks higher");
    assert_eq!(d.order, ["bb1", "bb0"]);
}

/// A primary that goes down one second after every fail-back: its hold-down
/// doubles with each flap up to the cap.
#[test]
fn flapping_primary_hold_down_doubles_up_to_the_cap() {
    let params = PolicyParams {
        flap_window: secs(3600),
        ..PolicyParams::default()
    };
    let mut s = Sim::new(params, &[("bb0", 0, false), ("mb0", 1, true)]);
    s.decide(0);
    let mut t = 0;
    let mut holds = Vec::new();
    for _ in 0..8 {
        t += SEC;
        s.set(t, "bb0", LinkState::Down);
        assert_eq!(s.decide(t).cause, Cause::CurrentDown);
        t += 5 * SEC;
        s.set(t, "bb0", LinkState::Up);
        let d = s.decide(t);
        assert_eq!(d.chosen.as_deref(), Some("mb0"), "no fail-back at once");
        let (name, at) = d.pending.expect("pending");
        assert_eq!(name, "bb0");
        holds.push((at.0 - t) / SEC);
        assert_eq!(s.chosen(at.0 - 1).as_deref(), Some("mb0"));
        let d = s.decide(at.0);
        assert_eq!(d.cause, Cause::FailBack);
        t = at.0;
    }
    assert_eq!(holds, [10, 20, 40, 80, 160, 300, 300, 300]);
}

/// Runs a scenario with decisions at every event and at every pending time
/// (as the runtime would with a timer); returns the switches.
fn run_timeline(s: &mut Sim, events: &[(u64, &str, LinkState)], end: u64) -> Vec<Decision> {
    let mut switches = Vec::new();
    let mut pending: Option<u64> = None;
    let mut record = |d: Decision, pending: &mut Option<u64>| {
        *pending = d.pending.as_ref().map(|(_, at)| at.0);
        if d.switched() {
            switches.push(d);
        }
    };
    let d = s.decide(0);
    record(d, &mut pending);
    for &(at, name, state) in events.iter().chain([(end, "", LinkState::Up)].iter()) {
        while let Some(p) = pending.filter(|p| *p <= at) {
            let d = s.decide(p);
            record(d, &mut pending);
        }
        if name.is_empty() {
            break;
        }
        s.set(at, name, state);
        let d = s.decide(at);
        record(d, &mut pending);
    }
    switches
}

/// A primary flapping every 15 s for an hour: the route moves rarely.
#[test]
fn flapping_primary_does_not_ping_pong() {
    let p = PolicyParams::default();
    let mut s = Sim::new(p.clone(), &[("bb0", 0, false), ("mb0", 1, true)]);
    let hour = 3600 * SEC;
    let events: Vec<(u64, &str, LinkState)> = (1..hour / (15 * SEC))
        .map(|i| {
            let st = if i % 2 == 1 {
                LinkState::Down
            } else {
                LinkState::Up
            };
            (i * 15 * SEC, "bb0", st)
        })
        .collect();
    let switches = run_timeline(&mut s, &events, hour);
    let bound = (hour / p.hold_down_max.as_millis() as u64) * 2 + 6;
    assert!(
        switches.len() as u64 <= bound,
        "{} switches over the hour (bound {bound}): {:#?}",
        switches.len(),
        switches
            .iter()
            .map(|d| (&d.reason, d.cause))
            .collect::<Vec<_>>()
    );
    // 240 state changes, yet only a few dozen switches at most.
    assert!(switches.len() < events.len() / 8);
}

#[test]
fn hold_down_decays_after_the_flap_window() {
    let p = PolicyParams::default();
    let mut pol = Policy::new(p.clone());
    for t in [0, 60, 120] {
        pol.record_flap("bb0", Millis(t * SEC));
    }
    assert_eq!(pol.hold_down_for("bb0", Millis(120 * SEC)), secs(40));
    // The first flap is forgotten exactly one window after it.
    assert_eq!(pol.hold_down_for("bb0", Millis(600 * SEC - 1)), secs(40));
    assert_eq!(pol.hold_down_for("bb0", Millis(600 * SEC)), secs(20));
    assert_eq!(pol.hold_down_for("bb0", Millis(660 * SEC)), secs(10));
    assert_eq!(pol.hold_down_for("bb0", Millis(720 * SEC)), secs(10));
    assert_eq!(pol.hold_down_for("wl0", Millis(0)), secs(10));

    // A waiting link whose flaps expire meanwhile is told the earlier time:
    // up at 590 s with 40 s to wait, but at 600 s it needs only 20 s, at 660 s 10 s.
    assert_eq!(
        pol.eligible_at("bb0", Millis(590 * SEC), Millis(590 * SEC)),
        Millis(610 * SEC)
    );
    assert_eq!(
        pol.eligible_at("bb0", Millis(550 * SEC), Millis(550 * SEC)),
        Millis(590 * SEC)
    );
    assert_eq!(
        pol.eligible_at("bb0", Millis(645 * SEC), Millis(645 * SEC)),
        Millis(660 * SEC)
    );

    // Through decide: flaps are pruned and the hold-down is back to the base.
    let mut s = Sim::new(p, &[("bb0", 0, false), ("mb0", 1, true)]);
    s.decide(0);
    for i in 0..4 {
        let t = i * 40 * SEC;
        s.set(t + SEC, "bb0", LinkState::Down);
        s.decide(t + SEC);
        s.set(t + 2 * SEC, "bb0", LinkState::Up);
        s.decide(t + 2 * SEC);
        s.decide(t + 39 * SEC);
    }
    assert!(s.policy.hold_down_for("bb0", Millis(160 * SEC)) > secs(10));
    s.decide(3600 * SEC);
    assert!(s.policy.flaps.is_empty());
    assert_eq!(s.policy.hold_down_for("bb0", Millis(3600 * SEC)), secs(10));
}

#[test]
fn sticky_never_fails_back_while_the_current_link_is_up() {
    let params = PolicyParams {
        sticky: true,
        ..PolicyParams::default()
    };
    let mut s = Sim::new(params, &[("bb0", 0, false), ("mb0", 1, true)]);
    s.decide(0);
    s.set(SEC, "bb0", LinkState::Down);
    assert_eq!(s.chosen(SEC).as_deref(), Some("mb0"));
    s.set(2 * SEC, "bb0", LinkState::Up);
    let d = s.decide(3600 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(d.cause, Cause::Stay);
    assert_eq!(d.pending, None);
    assert_eq!(
        d.reason,
        "sticky: staying on mb0 while it is online (bb0 ranks higher)"
    );
    // A failing current link still moves the route.
    s.set(3601 * SEC, "mb0", LinkState::Degraded);
    let d = s.decide(3601 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(d.cause, Cause::CurrentDegraded);
}

#[test]
fn manual_override_and_clear() {
    let mut s = Sim::new(
        PolicyParams::default(),
        &[("bb0", 0, false), ("mb0", 1, true)],
    );
    s.decide(0);
    s.policy.prefer(Some("mb0".into()));
    assert_eq!(s.policy.preferred(), Some("mb0"));
    let d = s.decide(SEC);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(d.cause, Cause::Manual);
    assert_eq!(d.reason, "manual preference for mb0");
    assert_eq!(d.order, ["mb0", "bb0"]);
    // Manual wins even when degraded.
    s.set(2 * SEC, "mb0", LinkState::Degraded);
    assert_eq!(s.decide(2 * SEC).cause, Cause::Manual);

    // Not online: the normal rules, and the reason says why.
    s.set(3 * SEC, "mb0", LinkState::Down);
    let d = s.decide(3 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(d.cause, Cause::CurrentDown);
    assert_eq!(
        d.reason,
        "manual preference for mb0 not usable (mb0 is down); mb0 went down: moved to bb0"
    );
    // Back online: manual again at once, no hold-down.
    s.set(4 * SEC, "mb0", LinkState::Up);
    let d = s.decide(4 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(d.cause, Cause::Manual);

    // Clearing picks the best online link at once, even one just back up.
    s.set(5 * SEC, "bb0", LinkState::Down);
    s.decide(5 * SEC);
    s.set(6 * SEC, "bb0", LinkState::Up);
    s.decide(6 * SEC);
    s.policy.prefer(None);
    assert_eq!(s.policy.preferred(), None);
    let d = s.decide(7 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(d.cause, Cause::ManualCleared);
    assert_eq!(
        d.reason,
        "manual preference cleared: bb0 is up and ranks first"
    );
    assert_eq!(s.decide(8 * SEC).cause, Cause::Stay);
    // Clearing twice is no event.
    s.policy.prefer(None);
    assert_eq!(s.decide(9 * SEC).cause, Cause::Stay);

    // A preference for a link that is not there.
    s.policy.prefer(Some("wl9".into()));
    let d = s.decide(10 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(
        d.reason,
        "manual preference for wl9 not usable (wl9 is not present); bb0 is up and ranks first"
    );
}

#[test]
fn no_link_online() {
    let mut s = gateway();
    s.decide(0);
    for l in ["bb0", "wl0", "mb0"] {
        s.set(SEC, l, LinkState::Down);
    }
    s.set(SEC, "wl0", LinkState::Absent);
    let d = s.decide(SEC);
    assert_eq!(d.chosen, None);
    assert_eq!(d.previous.as_deref(), Some("bb0"));
    assert_eq!(d.cause, Cause::NoLink);
    assert_eq!(d.reason, "no link is online");
    assert_eq!(d.order, ["bb0", "wl0", "mb0"]);
    assert_eq!(s.policy.current(), None);
    // The link that carried the route failed: a flap.
    assert_eq!(s.policy.flaps["bb0"].len(), 1);
    let d = s.decide(2 * SEC);
    assert_eq!(d.cause, Cause::NoLink);
    assert!(!d.switched());
    // Anything online comes back at once.
    s.set(3 * SEC, "mb0", LinkState::Up);
    let d = s.decide(3 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(d.cause, Cause::Initial);
    // Manual preference does not invent a link either.
    s.policy.prefer(Some("bb0".into()));
    s.set(4 * SEC, "mb0", LinkState::Down);
    assert_eq!(s.decide(4 * SEC).cause, Cause::NoLink);
    // An empty list.
    assert_eq!(
        Policy::new(PolicyParams::default())
            .decide(Millis(0), &[])
            .order
            .len(),
        0
    );
}

#[test]
fn duplicate_names_count_once() {
    let mut p = Policy::new(PolicyParams::default());
    let d = p.decide(
        Millis(0),
        &[
            cand("bb0", 5, false, LinkState::Down, 0),
            cand("bb0", 0, false, LinkState::Up, 0),
            cand("mb0", 1, true, LinkState::Up, 0),
        ],
    );
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(d.order, ["mb0", "bb0"]);
}

#[test]
fn durations_read_well() {
    assert_eq!(human(Duration::from_millis(24_001), true), "25 s");
    assert_eq!(human(Duration::from_millis(24_999), false), "24 s");
    assert_eq!(human(secs(119), false), "119 s");
    assert_eq!(human(secs(120), false), "2 min");
    assert_eq!(human(secs(250), false), "4 min 10 s");
    assert_eq!(human(secs(3600), false), "1 h");
    assert_eq!(human(secs(3900), false), "1 h 5 min");
    assert_eq!(Cause::FailBack.to_string(), "fail-back");
}

const STATES: [LinkState; 4] = [
    LinkState::Up,
    LinkState::Degraded,
    LinkState::Down,
    LinkState::Absent,
];
