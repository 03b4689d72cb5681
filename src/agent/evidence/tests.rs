//! Tests of pace and device `online` on a simulated clock: every combination
//! of a link's facts against the rules, properties of `device_online`, and a
//! model of a device (`sim`) that wires the health machines, the pace and the
//! policy the way the agent does, to check the end-to-end bounds.

use super::*;
use proptest::prelude::*;

mod sim;

const MS: u64 = 1;
const SEC: u64 = 1000 * MS;

const STATES: [LinkState; 4] = [
    LinkState::Up,
    LinkState::Degraded,
    LinkState::Down,
    LinkState::Absent,
];

/// Every combination of a link's facts, with the expected pace.
#[test]
fn pace_of_every_combination() {
    let now = Millis(100 * SEC);
    let timeout = Duration::from_millis(300);
    let mut n = 0;
    for traffic_evidence in [false, true] {
        let p = PaceParams {
            traffic_evidence,
            ..PaceParams::default()
        };
        for bits in 0..16u32 {
            let [active, metered, counters, confirming] = [0, 1, 2, 3].map(|i| bits >> i & 1 == 1);
            for state in STATES {
                for last_clean in [None, Some(Millis(now.0 - 10 * SEC)), Some(now)] {
                    for confirm_after in [None, Some(Millis(now.0 - SEC)), Some(now)] {
                        let l = LinkNow {
                            active,
                            metered,
                            counters,
                            state,
                            confirming,
                            last_clean,
                            confirm_after,
                            timeout,
                        };
                        check_pace(&l, &p, pace(&l, &p));
                        n += 1;
                    }
                }
            }
        }
    }
    assert_eq!(n, 2 * 16 * 4 * 3 * 3);
}

fn check_pace(l: &LinkNow, p: &PaceParams, got: Pace) {
    let ctx = format!("{l:?} {p:?} → {got:?}");
    let requested = l.state.is_online()
        && l.confirm_after
            .is_some_and(|t| l.last_clean.is_none_or(|c| c < t));
    assert_eq!(l.requested(), requested, "{ctx}");
    // Never slower than the slowest schedule, never faster than the active one.
    assert!(got.interval >= p.interval_active, "{ctx}");
    // A round's evidence never looks stale before the next one is in, unless
    // a confirmation was asked for.
    if !requested {
        assert!(
            got.window >= got.interval.min(role_interval(l, p)) + l.timeout,
            "{ctx}"
        );
    }
    if requested {
        assert_eq!(
            got,
            Pace {
                mode: Mode::Confirm,
                interval: p.interval_active,
                all_targets: true,
                // A standby's evidence from before the request does not
                // count; the active link keeps its window.
                window: if l.active {
                    role_window_of(l, p)
                } else {
                    Duration::ZERO
                },
            },
            "{ctx}"
        );
        return;
    }
    let role_window = role_interval(l, p) + l.timeout + SLACK;
    if l.confirming {
        assert_eq!(got.mode, Mode::Confirm, "{ctx}");
        assert_eq!(got.interval, p.interval_active, "{ctx}");
        assert!(got.all_targets, "{ctx}");
        // Its own failures do not shrink its window.
        let want = if l.active && !(l.metered && p.traffic_evidence && l.counters) {
            role_window.max(p.fresh_for)
        } else {
            role_window
        };
        assert_eq!(got.window, want, "{ctx}");
        return;
    }
    match (l.active, l.metered) {
        (false, m) => {
            // A healthy standby link stays on its slow schedule, one target.
            assert_eq!(got.mode, Mode::Slow, "{ctx}");
            let slow = if m {
                p.interval_metered_standby
            } else {
                p.interval_standby
            };
            assert_eq!(got.interval, slow, "{ctx}");
            assert_eq!(got.all_targets, !l.state.is_online(), "{ctx}");
            assert_eq!(got.window, role_window, "{ctx}");
        }
        (true, true) if p.traffic_evidence && l.counters => {
            assert_eq!(got.mode, Mode::Traffic, "{ctx}");
            assert_eq!(got.interval, p.interval_metered_active, "{ctx}");
            assert_eq!(got.all_targets, !l.state.is_online(), "{ctx}");
        }
        (true, metered) => {
            assert_eq!(got.mode, Mode::Fast, "{ctx}");
            assert!(got.all_targets, "{ctx}");
            let want = if metered {
                Duration::from_secs(1)
            } else {
                p.interval_active
            };
            assert_eq!(got.interval, want, "{ctx}");
            assert!(got.window >= p.fresh_for, "{ctx}");
        }
    }
}

/// The window of the link's role.
fn role_window_of(l: &LinkNow, p: &PaceParams) -> Duration {
    let w = role_interval(l, p) + l.timeout + SLACK;
    if l.active && !(l.metered && p.traffic_evidence && l.counters) {
        w.max(p.fresh_for)
    } else {
        w
    }
}

/// The interval of the link's role (what its window is made of).
fn role_interval(l: &LinkNow, p: &PaceParams) -> Duration {
    match (l.active, l.metered) {
        (true, true) if p.traffic_evidence && l.counters => p.interval_metered_active,
        (true, true) => p.interval_active.max(Duration::from_secs(1)),
        (true, false) => p.interval_active,
        (false, true) => p.interval_metered_standby,
        (false, false) => p.interval_standby,
    }
}

#[test]
fn defaults_give_the_documented_windows() {
    let p = PaceParams::default();
    assert_eq!(p.fresh_for, Duration::from_millis(2500));
    let t = Duration::from_millis(300);
    let link = |active, metered| LinkNow {
        active,
        metered,
        counters: true,
        state: LinkState::Up,
        confirming: false,
        last_clean: Some(Millis(0)),
        confirm_after: None,
        timeout: t,
    };
    let w = |l: LinkNow| pace(&l, &p).window.as_millis();
    assert_eq!(w(link(true, false)), 2500);
    assert_eq!(w(link(false, false)), 5550);
    assert_eq!(w(link(false, true)), 15550);
    assert_eq!(w(link(true, true)), 20550);
    // Asked to confirm: its evidence stops counting until the answer.
    let mut asked = link(false, false);
    asked.confirm_after = Some(Millis(1));
    assert_eq!(w(asked), 0);
}

fn vouch_strategy() -> impl Strategy<Value = Vouch> {
    (0usize..4, proptest::option::of(0u64..20_000), 0u64..20_000).prop_map(|(s, c, w)| Vouch {
        state: STATES[s],
        last_clean: c.map(Millis),
        window: Duration::from_millis(w),
    })
}

proptest! {
    /// Online exactly while some online link's last clean round is within its
    /// window; `until` is the last moment of that, and nothing changes before.
    #[test]
    fn device_online_is_fresh_evidence_of_an_online_link(
        links in proptest::collection::vec(vouch_strategy(), 0..5),
        now in 0u64..40_000,
    ) {
        let now = Millis(now);
        let o = device_online(now, links.iter().copied());
        let expect = links.iter().any(|v| {
            v.state.is_online() && v.last_clean.is_some_and(|c| now.0 <= c.0 + v.window.as_millis() as u64)
        });
        prop_assert_eq!(o.online, expect);
        prop_assert_eq!(o.until.is_some(), o.online);
        if let Some(u) = o.until {
            prop_assert!(u >= now);
            prop_assert!(device_online(u, links.iter().copied()).online);
            prop_assert!(!device_online(Millis(u.0 + 1), links.iter().copied()).online);
        }
        // A down or absent link never counts, however fresh.
        let off: Vec<Vouch> = links.iter().map(|v| Vouch { state: LinkState::Down, ..*v }).collect();
        prop_assert!(!device_online(now, off).online);
    }
}
