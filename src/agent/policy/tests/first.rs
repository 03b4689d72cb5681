//! The first choice after start, on a simulated clock: a better link whose
//! first round is not in yet is waited for (at most `first_choice_wait`), so
//! a busy start never fails over to a worse link and back a hold-down later.

use super::*;

const WAIT: u64 = 2 * SEC;

/// The gateway at start: every link `down` with no round in yet.
fn starting() -> Sim {
    let mut s = Sim::new(
        PolicyParams {
            first_choice_wait: Duration::from_millis(WAIT),
            ..PolicyParams::default()
        },
        &[("bb0", 0, false), ("wl0", 1, false), ("mb0", 2, true)],
    );
    for l in ["bb0", "wl0", "mb0"] {
        s.set(0, l, LinkState::Down);
        s.evidence(l, None, None);
    }
    s
}

/// A link's first round is in at `at`: clean (`up`) or failed.
fn first_round(s: &mut Sim, at: u64, name: &str, clean: bool) {
    if clean {
        s.set(at, name, LinkState::Up);
        s.probed(name);
    } else {
        s.evidence(name, None, Some(at));
    }
}

#[test]
fn a_worse_link_answering_first_waits_for_the_better_ones_first_round() {
    let mut s = starting();
    assert_eq!(s.decide(0).chosen, None);
    first_round(&mut s, 100, "wl0", true);
    let d = s.decide(100);
    assert_eq!(d.chosen, None);
    assert_eq!(d.cause, Cause::Confirming);
    assert_eq!(
        d.reason,
        "waiting up to 2 s for bb0's first round before the first choice"
    );
    assert_eq!(d.pending, Some(("bb0".to_string(), Millis(WAIT))));
    // The route layer keeps bb0 first meanwhile.
    assert_eq!(d.order, ["bb0", "wl0", "mb0"]);
    first_round(&mut s, 400, "bb0", true);
    let d = s.decide(400);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(d.cause, Cause::Initial);
    assert_eq!(d.previous, None);
}

#[test]
fn a_better_link_that_never_answers_is_waited_for_only_until_the_deadline() {
    let mut s = starting();
    assert_eq!(s.decide(0).chosen, None);
    first_round(&mut s, 100, "wl0", true);
    assert_eq!(s.decide(100).chosen, None);
    assert_eq!(s.decide(WAIT - 1).chosen, None);
    let d = s.decide(WAIT);
    assert_eq!(d.chosen.as_deref(), Some("wl0"));
    assert_eq!(d.cause, Cause::Initial);
}

#[test]
fn a_better_link_whose_first_round_failed_is_not_waited_for() {
    let mut s = starting();
    first_round(&mut s, 100, "bb0", false);
    first_round(&mut s, 200, "wl0", true);
    assert_eq!(s.chosen(200).as_deref(), Some("wl0"));
}

#[test]
fn a_worse_link_is_never_waited_for() {
    let mut s = starting();
    first_round(&mut s, 100, "bb0", true);
    let d = s.decide(100);
    assert_eq!(d.chosen.as_deref(), Some("bb0"));
    assert_eq!(d.cause, Cause::Initial);
}

#[test]
fn without_a_wait_the_first_link_up_is_taken() {
    let mut s = starting();
    s.policy.set_params(PolicyParams::default());
    first_round(&mut s, 100, "wl0", true);
    assert_eq!(s.chosen(100).as_deref(), Some("wl0"));
}

#[test]
fn only_the_first_choice_waits() {
    let mut s = starting();
    first_round(&mut s, 100, "bb0", true);
    first_round(&mut s, 100, "wl0", true);
    assert_eq!(s.chosen(100).as_deref(), Some("bb0"));
    // Later, bb0 goes down and its evidence is gone: wl0 at once.
    s.set(60 * SEC, "bb0", LinkState::Down);
    s.evidence("bb0", None, None);
    let d = s.decide(60 * SEC);
    assert_eq!(d.chosen.as_deref(), Some("wl0"));
    assert_eq!(d.cause, Cause::CurrentDown);
}

/// Every way the three first rounds can come back: each link clean, failed
/// or silent, at 0.1, 0.6, 1.5 or 2.5 s (729 starts). Deciding at each event
/// and when the policy asks to look again:
/// - once a link is chosen, no better link's first round came back clean
///   before the deadline (there would be a fail-back a hold-down later);
/// - some link is chosen by the deadline, or as soon as one is clean after it;
/// - nothing is chosen before its round is clean.
#[test]
fn every_order_of_first_rounds_chooses_once_and_well() {
    let links = ["bb0", "wl0", "mb0"];
    let times = [100, 600, 1500, 2500];
    // None: silent; Some((t, clean)).
    let mut outcomes: Vec<Option<(u64, bool)>> = vec![None];
    for t in times {
        outcomes.push(Some((t, true)));
        outcomes.push(Some((t, false)));
    }
    let mut count = 0;
    for a in &outcomes {
        for b in &outcomes {
            for c in &outcomes {
                count += 1;
                let plan = [*a, *b, *c];
                let mut s = starting();
                let mut events: Vec<u64> = plan.iter().flatten().map(|(t, _)| *t).collect();
                events.extend([0, WAIT, 3 * SEC]);
                events.sort_unstable();
                events.dedup();
                let mut chosen_at: Option<(u64, String)> = None;
                let mut i = 0;
                while i < events.len() {
                    let t = events[i];
                    for (l, o) in links.iter().zip(plan) {
                        if o.is_some_and(|(at, _)| at == t) {
                            first_round(&mut s, t, l, o.unwrap().1);
                        }
                    }
                    let d = s.decide(t);
                    if let Some((_, at)) = &d.pending
                        && !events.contains(&at.0)
                    {
                        events.push(at.0);
                        events[i + 1..].sort_unstable();
                    }
                    if let Some(ch) = &d.chosen {
                        let k = links.iter().position(|l| l == ch).unwrap();
                        let (at, clean) = plan[k].expect("chosen without a round");
                        assert!(clean && at <= t, "{plan:?}: {ch} chosen at {t}");
                        if chosen_at.is_none() {
                            chosen_at = Some((t, ch.clone()));
                        }
                    }
                    i += 1;
                }
                let first_clean = plan
                    .iter()
                    .flatten()
                    .filter(|(_, c)| *c)
                    .map(|(t, _)| *t)
                    .min();
                match (&chosen_at, first_clean) {
                    (None, None) => {}
                    (None, Some(_)) => panic!("{plan:?}: nothing chosen"),
                    (Some(_), None) => unreachable!(),
                    (Some((t, ch)), Some(fc)) => {
                        assert!(*t <= fc.max(WAIT), "{plan:?}: {ch} chosen late, at {t}");
                        let k = links.iter().position(|l| l == ch).unwrap();
                        for (j, o) in plan.iter().enumerate().take(k) {
                            // A better link (lower index), clean before the deadline.
                            if let Some((at, true)) = o {
                                assert!(
                                    *at >= WAIT,
                                    "{plan:?}: {ch} chosen at {t}, {} was clean at {at}",
                                    links[j]
                                );
                            }
                        }
                    }
                }
            }
        }
    }
    assert_eq!(count, 729);
}
