//! Scenarios of fresh evidence on a simulated clock: standby links confirmed
//! when the chosen one fails a round, a failover that waits for a standby
//! link's confirmation, a standby link that died silently never chosen, and a
//! fail-back or manual preference confirmed first.

use super::*;

/// The gateway at t=100 s: every link up and probed, bb0 chosen.
fn settled() -> Sim {
    let mut s = gateway();
    assert_eq!(s.chosen(0).as_deref(), Some("bb0"));
    s.decide(100 * SEC);
    s
}

fn asked(d: &Decision) -> Vec<(&str, u64)> {
    d.confirm.iter().map(|(n, t)| (n.as_str(), t.0)).collect()
}

#[test]
fn a_failed_round_on_the_chosen_link_asks_every_standby_not_proven_since() {
    let mut s = settled();
    let t = 100 * SEC;
    // Standby links on their slow rounds: wl0 proven 3 s ago, mb0 12 s ago.
    s.evidence("wl0", Some(t - 3 * SEC), None);
    s.evidence("mb0", Some(t - 12 * SEC), None);
    // bb0's round fails at t: still up (hysteresis), but in doubt.
    s.evidence("bb0", Some(t - 500), Some(t));
    let d = s.decide(t + 10);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(d.cause, Cause::Stay);
    assert_eq!(asked(&d), [("mb0", t), ("wl0", t)]);
    // wl0 answers its confirmation round: no longer asked.
    s.evidence("wl0", Some(t + 40), None);
    let d = s.decide(t + 40);
    assert_eq!(asked(&d), [("mb0", t)]);
    // bb0 is down two rounds later: wl0, proven since, takes over at once.
    s.set(t + 1800, "bb0", LinkState::Down);
    let d = s.decide(t + 1800);
    assert_eq!(d.chosen.as_deref(), Some("wl0"));
    assert_eq!(d.cause, Cause::CurrentDown);
    // A clean round on bb0 ends the doubt: nothing is asked any more.
    let mut s = settled();
    s.evidence("wl0", Some(t - 3 * SEC), None);
    s.evidence("bb0", Some(t - 500), Some(t));
    assert!(!s.decide(t).confirm.is_empty());
    s.probed("bb0");
    assert!(s.decide(t + 500).confirm.is_empty());
}

#[test]
fn a_sudden_failover_waits_for_the_standby_links_confirmation() {
    let mut s = settled();
    let t = 100 * SEC;
    s.evidence("wl0", Some(t - 4 * SEC), None);
    // mb0 was confirmed a moment ago, but ranks below wl0.
    s.evidence("mb0", Some(t - SEC), None);
    s.set(t, "bb0", LinkState::Down);
    let d = s.decide(t);
    assert_eq!(d.chosen, None);
    assert_eq!(d.cause, Cause::Confirming);
    assert_eq!(
        d.reason,
        "bb0 went down: confirming wl0 before moving to it"
    );
    // Both standby links: no link carries the route, and neither was
    // proven since.
    assert_eq!(asked(&d), [("mb0", t), ("wl0", t)]);
    assert_eq!(d.order, ["wl0", "mb0", "bb0"]);
    // The route left bb0 because it failed: one flap.
    assert_eq!(s.policy.flaps["bb0"].len(), 1);
    // Deciding again before the answer: still waiting, nothing new.
    let d = s.decide(t + 50);
    assert_eq!((d.chosen.clone(), d.cause), (None, Cause::Confirming));
    assert!(!d.switched());
    // wl0 answers: the failover completes, named after the link left.
    s.evidence("wl0", Some(t + 60), None);
    let d = s.decide(t + 60);
    assert_eq!(d.chosen.as_deref(), Some("wl0"));
    assert_eq!(d.previous, None);
    assert_eq!(d.cause, Cause::CurrentDown);
    assert_eq!(d.reason, "bb0 went down: moved to wl0, just confirmed");
    assert!(d.confirm.is_empty());
    assert_eq!(s.policy.flaps["bb0"].len(), 1);
}

#[test]
fn a_standby_link_that_died_silently_is_never_chosen() {
    let mut s = settled();
    let t = 100 * SEC;
    // wl0's upstream died at t-6 s; its slow round at t-2 s failed. It is
    // still `up` (one failed round), its last clean round 7 s old.
    s.evidence("wl0", Some(t - 7 * SEC), Some(t - 2 * SEC));
    s.set(t, "bb0", LinkState::Down);
    let d = s.decide(t);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(d.cause, Cause::CurrentDown);
    assert!(
        d.confirm.is_empty(),
        "doubtful links confirm themselves: {d:?}"
    );
    // Nothing else works: no link at all rather than the doubtful one.
    s.set(t + SEC, "mb0", LinkState::Down);
    let d = s.decide(t + SEC);
    assert_eq!(d.chosen, None);
    assert_eq!(d.cause, Cause::NoLink);
    assert_eq!(
        d.reason,
        "no online link is confirmed: each failed its last round"
    );
    // wl0 answers again (or goes down): chosen once proven.
    s.probed("wl0");
    assert_eq!(s.chosen(t + 2 * SEC).as_deref(), Some("wl0"));
}

#[test]
fn the_confirmation_fails_and_the_next_link_is_chosen() {
    let mut s = settled();
    let t = 100 * SEC;
    s.evidence("wl0", Some(t - 4 * SEC), None);
    s.set(t, "bb0", LinkState::Down);
    assert_eq!(s.decide(t).cause, Cause::Confirming);
    // wl0's confirmation round fails: doubtful, so mb0 at once.
    s.evidence("wl0", Some(t - 4 * SEC), Some(t + 300));
    let d = s.decide(t + 300);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(d.cause, Cause::CurrentDown);
    assert_eq!(d.reason, "bb0 went down: moved to mb0, just confirmed");
}

#[test]
fn fail_back_and_manual_preference_confirm_the_link_first() {
    let mut s = settled();
    let t = 100 * SEC;
    s.set(t, "bb0", LinkState::Down);
    assert_eq!(s.chosen(t).as_deref(), Some("wl0"));
    s.set(t + 10 * SEC, "bb0", LinkState::Up);
    // bb0 serves its hold-down on its slow standby rounds: last clean 4 s ago.
    s.evidence("bb0", Some(t + 26 * SEC), None);
    let d = s.decide(t + 30 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("wl0"));
    assert_eq!(d.cause, Cause::Stay);
    assert_eq!(
        d.reason,
        "confirming bb0 first (bb0 clean for 20 s: failing back from wl0)"
    );
    assert_eq!(asked(&d), [("bb0", t + 30 * SEC - 2500)]);
    s.probed("bb0");
    let d = s.decide(t + 30 * SEC + 40);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(d.cause, Cause::FailBack);
    // A manual preference for a link not proven lately: confirmed first too.
    s.evidence("mb0", Some(t), None);
    s.policy.prefer(Some("mb0".into()));
    let d = s.decide(t + 40 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(d.cause, Cause::Stay);
    assert_eq!(asked(&d), [("mb0", t + 40 * SEC - 2500)]);
    s.probed("mb0");
    let d = s.decide(t + 40 * SEC + 40);
    assert_eq!(d.chosen.as_deref(), Some("mb0"));
    assert_eq!(d.cause, Cause::Manual);
}
