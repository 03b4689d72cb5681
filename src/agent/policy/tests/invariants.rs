//! The policy's invariants, checked on every decision: exhaustively over
//! every state and evidence combination of three links, and by property tests
//! over random hours of link and evidence changes (helpers from the
//! hand-written scenarios, `super`).
//!
//! Fresh evidence is checked against a reference: the same policy deciding on
//! the same links, with every doubtful link (last round failed) taken as
//! down and every unconfirmed one (last round clean but stale) as freshly
//! proven. The real decision must be the reference's, except that
//! where the reference moves to an unconfirmed link, the policy asks for its
//! confirmation and stays on the current link (or, when that is not online,
//! chooses none, `Confirming`). The reference itself keeps the invariants of
//! a policy without freshness ([`check_plain`]).

use super::*;

/// How a link can serve, from the policy's point of view (see `rank::avail`).
fn class_of(c: &Candidate, now: Millis, p: &PolicyParams, current: Option<&str>) -> Avail {
    avail(c, now, p.fresh_for, current)
}

/// Checks one decision `d` made by `before` (a policy about to decide) on
/// `cands` at `now`.
fn check_decision(before: &Policy, now: Millis, cands: &[Candidate], d: &Decision) {
    let p = before.params().clone();
    let cur = before.current();
    let ctx = format!("{cands:?} current {cur:?} → {d:?}");
    // Names are unique in these tests.
    let find = |n: &str| cands.iter().find(|c| c.name == n);
    let class = |c: &Candidate| class_of(c, now, &p, cur);
    let asked = |n: &str| d.confirm.iter().find(|(x, _)| x == n).map(|(_, t)| *t);

    let reference: Vec<Candidate> = cands
        .iter()
        .map(|c| {
            let mut r = c.clone();
            match class(c) {
                Avail::Doubtful => r.state = LinkState::Down,
                Avail::Unconfirmed => r.last_clean = Some(now),
                Avail::Ready | Avail::Off => {}
            }
            r
        })
        .collect();
    let mut ref_policy = before.clone();
    let r = ref_policy.decide(now, &reference);
    check_plain(before, now, &reference, &r);

    if r.chosen == d.chosen {
        assert_eq!(r.cause, d.cause, "{ctx}");
        assert_eq!(r.pending, d.pending, "{ctx}");
    } else {
        // The reference moves to an unconfirmed link: confirm it first.
        let x = find(r.chosen.as_deref().expect("the reference chose a link")).unwrap();
        assert_eq!(class(x), Avail::Unconfirmed, "{ctx}");
        assert!(asked(&x.name).is_some(), "{ctx}");
        match cur.and_then(find).filter(|c| c.state.is_online()) {
            Some(c) => {
                assert_eq!(d.chosen.as_deref(), Some(c.name.as_str()), "{ctx}");
                assert_eq!(d.cause, Cause::Stay, "{ctx}");
            }
            None => {
                assert_eq!(d.chosen, None, "{ctx}");
                assert_eq!(d.cause, Cause::Confirming, "{ctx}");
            }
        }
    }
    assert_eq!(d.previous.as_deref(), cur, "{ctx}");

    // Never a move to a link whose evidence is stale.
    if let Some(ch) = d.chosen.as_deref().map(|n| find(n).unwrap()) {
        assert!(ch.state.is_online(), "{ctx}");
        if Some(ch.name.as_str()) != cur {
            let age = now.saturating_sub(ch.last_clean.expect("a clean round"));
            assert!(
                age <= p.fresh_for,
                "moved to {} proven {age:?} ago: {ctx}",
                ch.name
            );
            assert_eq!(ch.failing_since, None, "moved to a failing link: {ctx}");
        }
    }
    // Confirmations: online links asked only for evidence they lack, each
    // once, sorted; the chosen one only when another link is in doubt since
    // its last clean round (and then it is asked).
    let doubt = |ch: &Candidate| {
        cands
            .iter()
            .filter(|x| x.name != ch.name && x.state.is_online())
            .filter_map(|x| x.failing_since)
            .max()
            .filter(|f| ch.failing_since.is_none() && ch.last_clean.is_none_or(|l| l < *f))
    };
    for (n, t) in &d.confirm {
        let x = find(n).expect("asked of a candidate");
        assert!(x.state.is_online(), "{ctx}");
        if Some(n.as_str()) == d.chosen.as_deref() {
            assert_eq!(doubt(x), Some(*t), "{ctx}");
        }
        assert!(x.last_clean.is_none_or(|l| l < *t), "{ctx}");
    }
    if let Some(ch) = d.chosen.as_deref().map(|n| find(n).unwrap())
        && let Some(f) = doubt(ch)
    {
        assert_eq!(asked(&ch.name), Some(f), "{ctx}");
    }
    assert!(d.confirm.windows(2).all(|w| w[0].0 < w[1].0), "{ctx}");
    // Trouble (the chosen link in doubt, or no link chosen): every other
    // online link not proven since it began is asked.
    let chosen = d.chosen.as_deref().map(|n| find(n).unwrap());
    let trouble = match chosen {
        Some(ch) => ch.failing_since,
        None => Some(before.trouble.unwrap_or(now)),
    };
    if let Some(f) = trouble {
        let others = cands
            .iter()
            .filter(|x| chosen.is_none_or(|c| c.name != x.name) && x.state.is_online());
        for x in others {
            if x.last_clean.is_none_or(|l| l < f) {
                assert!(
                    asked(&x.name).is_some_and(|t| t >= f),
                    "{} not asked: {ctx}",
                    x.name
                );
            }
        }
    }
    // The order: every candidate once, the chosen first, then by rank.
    let mut rest: Vec<&Candidate> = cands
        .iter()
        .filter(|c| Some(c.name.as_str()) != d.chosen.as_deref())
        .collect();
    rest.sort_by(|a, b| rank_cmp(a, b));
    let expect: Vec<String> = d
        .chosen
        .iter()
        .cloned()
        .chain(rest.into_iter().map(|c| c.name.clone()))
        .collect();
    assert_eq!(d.order, expect, "{ctx}");
}

/// The invariants of a decision on links whose evidence is all usable (every
/// online link fresh or current, none doubtful).
fn check_plain(before: &Policy, now: Millis, cands: &[Candidate], d: &Decision) {
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
            None if before.current().is_none() => {
                // After a wait for a confirmation, the link left is named.
                let left = before.left.as_deref().filter(|l| *l != ch.name);
                let want = if left.is_some() {
                    Cause::CurrentDown
                } else {
                    Cause::Initial
                };
                assert_eq!(d.cause, want, "{ctx}");
            }
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

/// Evidence classes of the exhaustive tests, at `now`: (last clean round,
/// first failed round since) as ages in seconds.
const EVIDENCE: [(Option<u64>, Option<u64>); 5] = [
    // Fresh; fresh but the last round failed; stale; stale and failing; never clean.
    (Some(1), None),
    (Some(1), Some(0)),
    (Some(10), None),
    (Some(10), Some(5)),
    (None, None),
];

fn with_evidence(mut c: Candidate, now: Millis, e: (Option<u64>, Option<u64>)) -> Candidate {
    c.last_clean = e.0.map(|a| Millis(now.0 - a * SEC));
    c.failing_since = e.1.map(|a| Millis(now.0 - a * SEC));
    c
}

/// Every state of three links × served or not × a current link or none ×
/// sticky or not × a flap history or not (evidence fresh), and every state ×
/// evidence class × served or not × current (no stickiness, no flaps), and
/// every state × evidence × current × a manual preference.
#[test]
fn exhaustive_three_links() {
    let now = Millis(3600 * SEC);
    let link_sets: [[(&str, u32, bool); 3]; 2] = [
        // Distinct: metered c ranks last despite its priority.
        [("a", 0, false), ("b", 1, false), ("c", 0, true)],
        // All equal but the name.
        [("a", 0, false), ("b", 0, false), ("c", 0, false)],
    ];
    let n_ev = EVIDENCE.len();
    let all_fresh = [0usize; 3];
    let mut cases = 0;
    for links in link_sets {
        let make = |states: usize, served_bits: usize, ev: [usize; 3]| -> Vec<Candidate> {
            links
                .iter()
                .enumerate()
                .map(|(i, (n, pri, m))| {
                    let st = STATES[(states >> (2 * i)) & 3];
                    // 1 h ago, or 15 s ago: served with the base hold-down,
                    // not with two flaps.
                    let since = if served_bits >> i & 1 == 1 {
                        now.0 - 3600 * SEC
                    } else {
                        now.0 - 15 * SEC
                    };
                    with_evidence(cand(n, *pri, *m, st, since), now, EVIDENCE[ev[i]])
                })
                .collect()
        };
        let mut run = |cands: Vec<Candidate>,
                       current: Option<&str>,
                       sticky: bool,
                       flappy: bool,
                       manual: Option<&str>| {
            let mut pol = Policy::new(PolicyParams {
                sticky,
                ..PolicyParams::default()
            });
            pol.current = current.map(String::from);
            pol.manual = manual.map(String::from);
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
            assert_eq!(again.confirm, d.confirm);
            cases += 1;
        };
        let currents = [None, Some("a"), Some("b"), Some("c")];
        for states in 0..64usize {
            for current in currents {
                for served_bits in 0..8usize {
                    for sticky in [false, true] {
                        for flappy in [false, true] {
                            run(
                                make(states, served_bits, all_fresh),
                                current,
                                sticky,
                                flappy,
                                None,
                            );
                        }
                    }
                }
                for ev in 0..n_ev.pow(3) {
                    let ev = [ev % n_ev, ev / n_ev % n_ev, ev / n_ev / n_ev];
                    for served_bits in 0..8usize {
                        run(make(states, served_bits, ev), current, false, false, None);
                    }
                    for manual in ["a", "c"] {
                        run(make(states, 7, ev), current, false, false, Some(manual));
                    }
                }
            }
        }
    }
    assert_eq!(cases, 2 * 64 * 4 * (8 * 2 * 2 + 125 * (8 + 2)));
}

/// Availability class of a state: what can make the policy move.
fn class(s: Option<LinkState>) -> u8 {
    s.map_or(2, health_rank)
}

fn params_strategy() -> impl Strategy<Value = PolicyParams> {
    (1u64..30, 0u32..6, 0u64..20, any::<bool>(), 1u64..6).prop_map(|(hd, k, w, sticky, fresh)| {
        PolicyParams {
            hold_down: secs(hd),
            hold_down_max: secs(hd << k),
            flap_window: secs(w * 60),
            sticky,
            fresh_for: Duration::from_millis(fresh * 500),
            first_choice_wait: Duration::ZERO,
        }
    })
}

/// A link's evidence in the random hours: probed (a clean round at every
/// decision while online), quiet since a time (no round since), or failing
/// since a time (its last round failed; the last clean one is older).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ev {
    Probed,
    Quiet(Millis),
    Failing(Millis),
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random hours of link and evidence changes (including links vanishing),
    /// decisions at every change and at every pending time.
    #[test]
    fn random_hours_keep_the_invariants(
        params in params_strategy(),
        initial in proptest::collection::vec(0usize..5, 3),
        events in proptest::collection::vec((0u64..40_000, 0usize..3, 0usize..8), 0..200),
    ) {
        let names = ["bb0", "wl0", "mb0"];
        let meta = [(0u32, false), (1, false), (2, true)];
        // None = not in the list.
        let to_state = |i: usize| STATES.get(i).copied();
        let mut states: Vec<Option<LinkState>> = initial.iter().map(|i| to_state(*i)).collect();
        let mut since = [Millis(0); 3];
        let mut ev = [Ev::Probed; 3];
        // The last clean round of each link while it is not probed.
        let mut clean = [Some(Millis(0)); 3];
        let cands = |states: &[Option<LinkState>], since: &[Millis; 3], ev: &[Ev; 3],
                     clean: &[Option<Millis>; 3], at: Millis| -> Vec<Candidate> {
            (0..3)
                .filter_map(|i| {
                    states[i].map(|st| {
                        let mut c = cand(names[i], meta[i].0, meta[i].1, st, since[i].0);
                        (c.last_clean, c.failing_since) = match ev[i] {
                            Ev::Probed if st.is_online() => (Some(at), None),
                            Ev::Probed | Ev::Quiet(_) => (clean[i], None),
                            Ev::Failing(f) => (clean[i], Some(f)),
                        };
                        c
                    })
                })
                .collect()
        };
        let mut pol = Policy::new(params.clone());
        let mut now = Millis(0);
        let mut switches = 0u32;
        let mut changes = 0u32;
        let mut pending: Option<Millis>;

        let step = |pol: &mut Policy, now: Millis, cs: &[Candidate], switches: &mut u32,
                    at_pending: &dyn Fn(Millis) -> Vec<Candidate>|
            -> Result<Option<Millis>, TestCaseError> {
            let before = pol.clone();
            let d = pol.decide(now, cs);
            check_decision(&before, now, cs, &d);
            // (1) a link is chosen whenever one usable is and none better waits
            // for its confirmation.
            if d.chosen.is_none() {
                prop_assert!(matches!(d.cause, Cause::NoLink | Cause::Confirming));
            }
            // (2) a fail-back only once the link kept its state for its hold-down.
            if d.cause == Cause::FailBack {
                let n = d.chosen.as_deref().unwrap();
                let c = cs.iter().find(|c| c.name == n).unwrap();
                prop_assert!(now.saturating_sub(c.since) >= before.hold_down_for(n, now));
                prop_assert!(now.saturating_sub(c.since) >= params.hold_down);
            }
            // The pending time is exact: nothing moves 1 ms before; then the
            // link takes over, or is asked to confirm first.
            if let Some((n, at)) = &d.pending {
                let mut early = pol.clone();
                let e = early.decide(Millis(at.0 - 1), &at_pending(Millis(at.0 - 1)));
                prop_assert!(!e.switched(), "moved before the pending time: {:?}", e);
                let mut on_time = pol.clone();
                let then = at_pending(*at);
                let o = on_time.decide(*at, &then);
                let x = then.iter().find(|c| &c.name == n).unwrap();
                // Unless its last round failed and its evidence went stale meanwhile.
                let doubtful = class_of(x, *at, &params, pol.current()) == Avail::Doubtful;
                prop_assert!(
                    o.cause == Cause::FailBack
                        || (o.cause == Cause::Stay && o.confirm.iter().any(|(c, _)| c == n))
                        || doubtful,
                    "{:?}", o
                );
            }
            if d.switched() {
                *switches += 1;
            }
            Ok(d.pending.map(|(_, at)| at))
        };

        let snapshot = (states.clone(), since, ev, clean);
        pending = step(&mut pol, now, &cands(&states, &since, &ev, &clean, now), &mut switches,
                       &|t| cands(&snapshot.0, &snapshot.1, &snapshot.2, &snapshot.3, t))?;
        for (adv, link, kind) in events {
            let at = Millis(now.0 + adv);
            while let Some(p) = pending.filter(|p| *p <= at) {
                now = p;
                let snap = (states.clone(), since, ev, clean);
                pending = step(&mut pol, now, &cands(&states, &since, &ev, &clean, now),
                               &mut switches, &|t| cands(&snap.0, &snap.1, &snap.2, &snap.3, t))?;
            }
            now = at;
            // What a probed link last proved, before its evidence changes.
            for i in 0..3 {
                if ev[i] == Ev::Probed && states[i].is_some_and(|s| s.is_online()) {
                    clean[i] = Some(now);
                }
            }
            if kind < 5 {
                let new = to_state(kind);
                if new != states[link] {
                    if class(new) != class(states[link]) {
                        changes += 1;
                    }
                    states[link] = new;
                    since[link] = now;
                }
            } else {
                let new = match kind {
                    5 => Ev::Probed,
                    6 => Ev::Quiet(now),
                    _ => Ev::Failing(now),
                };
                if std::mem::discriminant(&new) != std::mem::discriminant(&ev[link]) {
                    changes += 1;
                    ev[link] = new;
                }
            }
            let snap = (states.clone(), since, ev, clean);
            pending = step(&mut pol, now, &cands(&states, &since, &ev, &clean, now), &mut switches,
                           &|t| cands(&snap.0, &snap.1, &snap.2, &snap.3, t))?;
        }
        // (3) every switch is paid for by a change of availability or
        // evidence (the first pick by the start).
        prop_assert!(switches <= changes + 1, "{} switches for {} changes", switches, changes);
    }
}
