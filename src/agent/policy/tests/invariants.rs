//! The policy's invariants, checked on every decision: exhaustively over
//! every state combination of three links, and by property tests over random
//! hours of link changes (helpers from the hand-written scenarios, `super`).

use super::*;

/// Checks the invariants of one decision made by `before` (a policy about to
/// decide) on `cands` at `now`.
fn check_decision(before: &Policy, now: Millis, cands: &[Candidate], d: &Decision) {
    let p = before.params();
    let find = |n: &str| cands.iter().find(|c| c.name == n);
    let served = |c: &Candidate| now.saturating_sub(c.since) >= before.hold_down_for(&c.name, now);
    let any_online = cands.iter().any(|c| c.state.is_online());
    let any_up = cands.iter().any(|c| c.state == LinkState::Up);
    let cur = before.current().and_then(find);
    let ctx = format!("{cands:?} current {:?} → {d:?}", before.current());

    // Online if anything is online; nothing otherwise.
    assert_eq!(d.chosen.is_some(), any_online, "{ctx}");
    let chosen = d.chosen.as_deref().map(|n| find(n).expect("a candidate"));
    if let Some(c) = chosen {
        assert!(c.state.is_online(), "{ctx}");
    }
    assert_eq!(d.previous.as_deref(), before.current(), "{ctx}");

    if let Some(ch) = chosen
        && before.preferred().is_none()
    {
        // Never below an online link, unless it waits out its hold-down or
        // sticky keeps the current one.
        for x in cands.iter().filter(|x| x.state.is_online()) {
            if pref_key(x) < pref_key(ch) {
                let sticky_stay = p.sticky && Some(&ch.name) == cur.map(|c| &c.name);
                assert!(!served(x) || sticky_stay, "{} ranks higher: {ctx}", x.name);
            }
        }
        // No needless switch.
        if let Some(c) = cur
            && c.state.is_online()
            && (c.state == LinkState::Up || !any_up)
        {
            let better_ready = cands
                .iter()
                .any(|x| x.state.is_online() && pref_key(x) < pref_key(c) && served(x));
            if !better_ready || p.sticky {
                assert_eq!(ch.name, c.name, "{ctx}");
                assert_eq!(d.cause, Cause::Stay, "{ctx}");
            } else {
                assert_eq!(d.cause, Cause::FailBack, "{ctx}");
                assert!(pref_key(ch) < pref_key(c) && served(ch), "{ctx}");
            }
        }
        // Causes match the situation.
        match cur {
            None if before.current().is_none() => assert_eq!(d.cause, Cause::Initial, "{ctx}"),
            None => assert_eq!(d.cause, Cause::CurrentDown, "{ctx}"),
            Some(c) if !c.state.is_online() => assert_eq!(d.cause, Cause::CurrentDown, "{ctx}"),
            Some(c) if c.state == LinkState::Degraded && any_up => {
                assert_eq!(d.cause, Cause::CurrentDegraded, "{ctx}");
                assert_eq!(ch.state, LinkState::Up, "{ctx}");
            }
            Some(_) => assert!(matches!(d.cause, Cause::Stay | Cause::FailBack), "{ctx}"),
        }
    }
    if !any_online {
        assert_eq!(d.cause, Cause::NoLink, "{ctx}");
    }

    // The order: every candidate once, the chosen first, then by rank.
    let mut rest: Vec<&Candidate> = cands
        .iter()
        .filter(|c| Some(c.name.as_str()) != d.chosen.as_deref())
        .collect();
    rest.sort_by(|a, b| rank_cmp(a, b));
    let expect: Vec<String> = chosen
        .into_iter()
        .chain(rest)
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(d.order, expect, "{ctx}");

    // Pending: an online link above the chosen one, not yet served.
    if let Some((n, at)) = &d.pending {
        let x = find(n).expect("pending is a candidate");
        let ch = chosen.expect("pending needs a chosen link");
        assert!(!p.sticky, "{ctx}");
        assert!(
            x.state.is_online() && rank_cmp(x, ch) == Ordering::Less,
            "{ctx}"
        );
        assert!(!served(x), "{ctx}");
        assert!(
            *at > now && *at <= x.since.plus(before.hold_down_for(n, now)),
            "{ctx}"
        );
    }
}

/// Every state of three links × served or not × a current link or none ×
/// sticky or not × a flap history or not.
#[test]
fn exhaustive_three_links() {
    let now = Millis(3600 * SEC);
    let link_sets: [[(&str, u32, bool); 3]; 2] = [
        // Distinct: metered c ranks last despite its priority.
        [("a", 0, false), ("b", 1, false), ("c", 0, true)],
        // All equal but the name.
        [("a", 0, false), ("b", 0, false), ("c", 0, false)],
    ];
    let mut cases = 0;
    for links in link_sets {
        for states in 0..64usize {
            for served_bits in 0..8usize {
                for current in [None, Some("a"), Some("b"), Some("c")] {
                    for sticky in [false, true] {
                        for flappy in [false, true] {
                            let cands: Vec<Candidate> = links
                                .iter()
                                .enumerate()
                                .map(|(i, (n, pri, m))| {
                                    let st = STATES[(states >> (2 * i)) & 3];
                                    // 1 h ago, or 15 s ago: served with the
                                    // base hold-down, not with two flaps.
                                    let since = if served_bits >> i & 1 == 1 {
                                        now.0 - 3600 * SEC
                                    } else {
                                        now.0 - 15 * SEC
                                    };
                                    cand(n, *pri, *m, st, since)
                                })
                                .collect();
                            let mut pol = Policy::new(PolicyParams {
                                sticky,
                                ..PolicyParams::default()
                            });
                            pol.current = current.map(String::from);
                            if flappy {
                                pol.record_flap("a", Millis(now.0 - 100 * SEC));
                                pol.record_flap("a", Millis(now.0 - 50 * SEC));
                            }
                            let before = pol.clone();
                            let d = pol.decide(now, &cands);
                            check_decision(&before, now, &cands, &d);
                            assert_eq!(pol.current(), d.chosen.as_deref());
                            // Deciding again at once changes nothing.
                            let again = pol.decide(now, &cands);
                            assert_eq!(again.chosen, d.chosen);
                            assert!(!again.switched());
                            cases += 1;
                        }
                    }
                }
            }
        }
    }
    assert_eq!(cases, 2 * 64 * 8 * 4 * 2 * 2);
}

/// Availability class of a state: what can make the policy move.
fn class(s: Option<LinkState>) -> u8 {
    s.map_or(2, health_rank)
}

fn params_strategy() -> impl Strategy<Value = PolicyParams> {
    (1u64..30, 0u32..6, 0u64..20, any::<bool>()).prop_map(|(hd, k, w, sticky)| PolicyParams {
        hold_down: secs(hd),
        hold_down_max: secs(hd << k),
        flap_window: secs(w * 60),
        sticky,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random hours of link changes (including links vanishing), decisions at
    /// every change and at every pending time.
    #[test]
    fn random_hours_keep_the_invariants(
        params in params_strategy(),
        initial in proptest::collection::vec(0usize..5, 3),
        events in proptest::collection::vec((0u64..40_000, 0usize..3, 0usize..5), 0..200),
    ) {
        let names = ["bb0", "wl0", "mb0"];
        let meta = [(0u32, false), (1, false), (2, true)];
        // None = not in the list.
        let to_state = |i: usize| STATES.get(i).copied();
        let mut states: Vec<Option<LinkState>> = initial.iter().map(|i| to_state(*i)).collect();
        let mut since = [Millis(0); 3];
        let cands = |states: &[Option<LinkState>], since: &[Millis; 3]| -> Vec<Candidate> {
            (0..3)
                .filter_map(|i| {
                    states[i].map(|st| cand(names[i], meta[i].0, meta[i].1, st, since[i].0))
                })
                .collect()
        };
        let mut pol = Policy::new(params.clone());
        let mut now = Millis(0);
        let mut switches = 0u32;
        let mut changes = 0u32;
        let mut pending: Option<Millis>;

        let step = |pol: &mut Policy, now: Millis, cs: &[Candidate], switches: &mut u32|
            -> Result<Option<Millis>, TestCaseError> {
            let before = pol.clone();
            let d = pol.decide(now, cs);
            check_decision(&before, now, cs, &d);
            // (1) never a non-online link while one is online.
            let any_online = cs.iter().any(|c| c.state.is_online());
            prop_assert_eq!(d.chosen.is_some(), any_online);
            // (2) a fail-back only once the link kept its state for its hold-down.
            if d.cause == Cause::FailBack {
                let n = d.chosen.as_deref().unwrap();
                let c = cs.iter().find(|c| c.name == n).unwrap();
                prop_assert!(now.saturating_sub(c.since) >= before.hold_down_for(n, now));
                prop_assert!(now.saturating_sub(c.since) >= params.hold_down);
            }
            // The pending time is exact: nothing moves 1 ms before, it moves then.
            if let Some((_, at)) = &d.pending {
                let mut early = pol.clone();
                let e = early.decide(Millis(at.0 - 1), cs);
                prop_assert!(!e.switched(), "moved before the pending time: {:?}", e);
                let mut on_time = pol.clone();
                let o = on_time.decide(*at, cs);
                prop_assert_eq!(o.cause, Cause::FailBack, "{:?}", o);
            }
            if d.switched() {
                *switches += 1;
            }
            Ok(d.pending.map(|(_, at)| at))
        };

        pending = step(&mut pol, now, &cands(&states, &since), &mut switches)?;
        for (adv, link, st) in events {
            let at = Millis(now.0 + adv);
            while let Some(p) = pending.filter(|p| *p <= at) {
                now = p;
                pending = step(&mut pol, now, &cands(&states, &since), &mut switches)?;
            }
            now = at;
            let new = to_state(st);
            if new != states[link] {
                if class(new) != class(states[link]) {
                    changes += 1;
                }
                states[link] = new;
                since[link] = now;
            }
            pending = step(&mut pol, now, &cands(&states, &since), &mut switches)?;
        }
        // (3) every switch is paid for by a change of availability (the
        // first pick by the start).
        prop_assert!(switches <= changes + 1, "{} switches for {} changes", switches, changes);
    }
}
