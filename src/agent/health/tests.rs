//! Tests of the health state machine on a simulated clock: hand-written
//! scenarios, an exhaustive check of every short round sequence against a
//! reference model, and property tests for loss and detection bounds.

use super::*;
use proptest::prelude::*;

const RTT: Duration = Duration::from_millis(20);

fn ok(n: u32) -> Observation {
    Observation::Round(Round::answered(n, n, RTT))
}
fn partial(sent: u32, answered: u32) -> Observation {
    Observation::Round(Round::answered(sent, answered, RTT))
}
fn fail(n: u32) -> Observation {
    Observation::Round(Round::answered(n, 0, RTT))
}

/// A link that is `up` at t=0 (after its first clean round).
fn up_link(params: HealthParams) -> LinkHealth {
    let mut h = LinkHealth::new(params, Millis(0));
    h.observe(Millis(0), ok(3));
    assert_eq!(h.state(), LinkState::Up);
    h
}

#[test]
fn starts_down_and_first_clean_round_brings_it_up() {
    let mut h = LinkHealth::new(HealthParams::default(), Millis(0));
    assert_eq!(h.state(), LinkState::Down);
    assert_eq!(h.reason(), Some("starting"));
    let t = h.observe(Millis(500), ok(3)).expect("transition");
    assert_eq!((t.from, t.to), (LinkState::Down, LinkState::Up));
    assert_eq!(h.since(), Millis(500));
}

#[test]
fn down_after_consecutive_failed_rounds_and_up_after_clean_run() {
    let p = HealthParams::default();
    let mut h = up_link(p.clone());
    for i in 1..p.down_after {
        assert!(h.observe(Millis(u64::from(i) * 500), fail(3)).is_none());
        assert_eq!(h.state(), LinkState::Up);
    }
    let t = h.observe(Millis(2000), fail(3)).expect("down");
    assert_eq!(t.to, LinkState::Down);
    assert_eq!(t.reason.as_deref(), Some("probes"));
    // Recovery needs `up_after` clean rounds, not one.
    for i in 1..p.up_after {
        h.observe(Millis(2000 + u64::from(i) * 500), ok(3));
        assert_eq!(h.state(), LinkState::Down, "after {i} clean rounds");
    }
    h.observe(Millis(5000), ok(3));
    assert_eq!(h.state(), LinkState::Up);
}

#[test]
fn a_failed_round_in_a_clean_run_restarts_the_count() {
    let p = HealthParams::default();
    let mut h = up_link(p.clone());
    for _ in 0..p.down_after {
        h.observe(Millis(1), fail(3));
    }
    assert_eq!(h.state(), LinkState::Down);
    for _ in 0..p.up_after - 1 {
        h.observe(Millis(2), ok(3));
    }
    h.observe(Millis(3), fail(3));
    for _ in 0..p.up_after - 1 {
        h.observe(Millis(4), ok(3));
    }
    assert_eq!(h.state(), LinkState::Down);
    h.observe(Millis(5), ok(3));
    assert_eq!(h.state(), LinkState::Up);
}

#[test]
fn carrier_loss_is_down_at_once_and_recovery_needs_clean_rounds() {
    let p = HealthParams::default();
    let mut h = up_link(p.clone());
    let t = h.observe(Millis(100), Observation::Carrier(false)).unwrap();
    assert_eq!(t.to, LinkState::Down);
    assert_eq!(t.reason.as_deref(), Some("carrier"));
    assert_eq!(t.at, Millis(100));
    // Rounds that raced with the carrier loss do not matter.
    h.observe(Millis(110), ok(3));
    assert_eq!(h.state(), LinkState::Down);
    h.observe(Millis(200), Observation::Carrier(true));
    assert_eq!(h.state(), LinkState::Down);
    for _ in 0..p.up_after {
        h.observe(Millis(300), ok(3));
    }
    assert_eq!(h.state(), LinkState::Up);
}

#[test]
fn absent_then_back() {
    let p = HealthParams::default();
    let mut h = up_link(p.clone());
    let t = h.observe(Millis(10), Observation::Present(false)).unwrap();
    assert_eq!(t.to, LinkState::Absent);
    h.observe(Millis(20), ok(3));
    assert_eq!(h.state(), LinkState::Absent);
    h.observe(Millis(30), Observation::Present(true));
    assert_eq!(h.state(), LinkState::Down);
    for _ in 0..p.up_after {
        h.observe(Millis(40), ok(3));
    }
    assert_eq!(h.state(), LinkState::Up);
}

#[test]
fn one_dead_target_never_fails_a_round() {
    let mut h = up_link(HealthParams::default());
    for i in 0..10_000u64 {
        h.observe(Millis(i * 500), partial(3, 2));
    }
    // 1/3 of probes lost is loss over the threshold: degraded, never down.
    assert_eq!(h.state(), LinkState::Degraded);
    assert_eq!(h.reason(), Some("loss"));
}

#[test]
fn quorum_two_needs_two_answers() {
    let p = HealthParams {
        quorum: 2,
        ..Default::default()
    };
    let mut h = up_link(p.clone());
    for _ in 0..p.down_after {
        h.observe(Millis(1), partial(3, 1));
    }
    assert_eq!(h.state(), LinkState::Down);
}

#[test]
fn standby_round_with_one_target_uses_that_target() {
    let p = HealthParams {
        quorum: 2,
        ..Default::default()
    };
    let mut h = up_link(p);
    for _ in 0..100 {
        h.observe(Millis(1), ok(1));
    }
    assert_eq!(h.state(), LinkState::Up);
}

#[test]
fn permission_failure_is_named() {
    let p = HealthParams::default();
    let mut h = up_link(p.clone());
    for _ in 0..p.down_after {
        h.observe(
            Millis(1),
            Observation::Round(Round {
                sent: 3,
                answered: 0,
                rtts: vec![],
                failure: Some("permission".into()),
            }),
        );
    }
    assert_eq!(h.reason(), Some("permission"));
}

#[test]
fn captive_portal_degrades_at_once_and_clears_on_success() {
    let mut h = up_link(HealthParams::default());
    let app = |ok: bool| Observation::App {
        probe: "http portal".into(),
        ok,
        reason: (!ok).then(|| "captive".to_string()),
    };
    let t = h.observe(Millis(10), app(false)).unwrap();
    assert_eq!(t.to, LinkState::Degraded);
    assert_eq!(t.reason.as_deref(), Some("captive"));
    h.observe(Millis(20), app(true));
    assert_eq!(h.state(), LinkState::Up);
}

#[test]
fn other_app_failures_need_app_fail_after() {
    let p = HealthParams::default();
    let mut h = up_link(p.clone());
    let bad = || Observation::App {
        probe: "dns x".into(),
        ok: false,
        reason: Some("dns".into()),
    };
    for _ in 1..p.app_fail_after {
        h.observe(Millis(1), bad());
        assert_eq!(h.state(), LinkState::Up);
    }
    h.observe(Millis(2), bad());
    assert_eq!(h.state(), LinkState::Degraded);
    assert_eq!(h.reason(), Some("dns"));
}

#[test]
fn down_clears_app_failures_so_recovery_is_not_stale() {
    let p = HealthParams::default();
    let mut h = up_link(p.clone());
    h.observe(
        Millis(1),
        Observation::App {
            probe: "p".into(),
            ok: false,
            reason: Some("captive".into()),
        },
    );
    assert_eq!(h.state(), LinkState::Degraded);
    h.observe(Millis(2), Observation::Carrier(false));
    h.observe(Millis(3), Observation::Carrier(true));
    for _ in 0..p.up_after {
        h.observe(Millis(4), ok(3));
    }
    assert_eq!(h.state(), LinkState::Up);
}

#[test]
fn latency_over_threshold_degrades_and_recovers_with_hysteresis() {
    let p = HealthParams::default();
    let mut h = up_link(p.clone());
    let slow = p.latency_degraded + Duration::from_millis(100);
    for _ in 0..p.window {
        h.observe(Millis(1), Observation::Round(Round::answered(3, 3, slow)));
    }
    assert_eq!(h.state(), LinkState::Degraded);
    assert_eq!(h.reason(), Some("latency"));
    // Just under the threshold but over the recovery mark: stays degraded.
    let between = p.latency_degraded - Duration::from_millis(10);
    for _ in 0..p.window {
        h.observe(
            Millis(2),
            Observation::Round(Round::answered(3, 3, between)),
        );
    }
    assert_eq!(h.state(), LinkState::Degraded);
    for _ in 0..p.window {
        h.observe(Millis(3), ok(3));
    }
    assert_eq!(h.state(), LinkState::Up);
    assert!(h.rtt_ms().unwrap() < 25.0);
}

#[test]
fn timeout_adapts_to_rtt_within_bounds() {
    let p = HealthParams::default();
    let mut h = LinkHealth::new(p.clone(), Millis(0));
    assert_eq!(h.timeout(), Duration::from_secs(1));
    for _ in 0..50 {
        h.observe(
            Millis(1),
            Observation::Round(Round::answered(3, 3, Duration::from_millis(1))),
        );
    }
    assert_eq!(h.timeout(), p.timeout_min);
    for _ in 0..50 {
        h.observe(
            Millis(1),
            Observation::Round(Round::answered(3, 3, Duration::from_millis(400))),
        );
    }
    let t = h.timeout();
    assert!(
        t > Duration::from_millis(700) && t <= p.timeout_max,
        "{t:?}"
    );
    for _ in 0..50 {
        h.observe(
            Millis(1),
            Observation::Round(Round::answered(3, 3, Duration::from_secs(10))),
        );
    }
    assert_eq!(h.timeout(), p.timeout_max);
}

/// Reference model of reachability for rounds only: a plain reading of the rules.
fn reference(rounds: &[bool], p: &HealthParams) -> Vec<bool> {
    let mut down = true;
    let mut ever_up = false;
    let (mut f, mut o) = (0, 0);
    let mut out = vec![];
    for &clean in rounds {
        if clean {
            o += 1;
            f = 0;
            if down && (o >= p.up_after || !ever_up) {
                down = false;
                ever_up = true;
            }
        } else {
            f += 1;
            o = 0;
            if !down && f >= p.down_after {
                down = true;
                f = 0;
            }
        }
        out.push(!down);
    }
    out
}

#[test]
fn exhaustive_round_sequences_match_the_reference_model() {
    let p = HealthParams {
        min_samples: u32::MAX, // judge reachability only
        ..Default::default()
    };
    let n = 14;
    for bits in 0u32..(1 << n) {
        let rounds: Vec<bool> = (0..n).map(|i| bits & (1 << i) != 0).collect();
        let want = reference(&rounds, &p);
        let mut h = LinkHealth::new(p.clone(), Millis(0));
        for (i, &clean) in rounds.iter().enumerate() {
            h.observe(Millis(i as u64), if clean { ok(3) } else { fail(3) });
            assert_eq!(
                h.state() == LinkState::Up,
                want[i],
                "sequence {rounds:?} at round {i}"
            );
        }
    }
}

/// Deterministic pseudo-random generator for the simulations (xorshift).
struct Rng(u64);
impl Rng {
    fn chance(&mut self, pct: f64) -> bool {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % 10_000) as f64 / 100.0 < pct
    }
}

fn lossy_round(rng: &mut Rng, targets: u32, loss_pct: f64) -> Observation {
    let answered = (0..targets).filter(|_| !rng.chance(loss_pct)).count() as u32;
    partial(targets, answered)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Under random loss up to 20% per probe (the test), ten minutes of
    /// fast rounds never bring a healthy link down.
    #[test]
    fn no_false_down_under_random_loss(seed in 1u64.., loss in 0.0f64..=20.0) {
        let p = HealthParams::default();
        let mut h = up_link(p);
        let mut rng = Rng(seed);
        for i in 0..1200u64 {
            h.observe(Millis(i * 500), lossy_round(&mut rng, 3, loss));
            prop_assert_ne!(h.state(), LinkState::Down, "round {}", i);
        }
    }

    /// Whatever happened before, a dead link is down within `down_after` rounds,
    /// and an alive one is up again within `up_after` rounds.
    #[test]
    fn dead_link_is_down_within_the_bound(
        seed in 1u64..,
        history in proptest::collection::vec(0.0f64..100.0, 0..200),
    ) {
        let p = HealthParams::default();
        let mut h = up_link(p.clone());
        let mut rng = Rng(seed);
        for (i, loss) in history.iter().enumerate() {
            h.observe(Millis(i as u64), lossy_round(&mut rng, 3, *loss));
        }
        for _ in 0..p.down_after {
            h.observe(Millis(1_000_000), fail(3));
        }
        prop_assert_eq!(h.state(), LinkState::Down);
        for _ in 0..p.up_after {
            h.observe(Millis(2_000_000), ok(3));
        }
        prop_assert_eq!(h.state(), LinkState::Up);
    }

    /// Transitions always change the state and carry the current time; `since`
    /// follows the last real change.
    #[test]
    fn transitions_are_consistent(
        ops in proptest::collection::vec(0u8..7, 1..300),
    ) {
        let mut h = LinkHealth::new(HealthParams::default(), Millis(0));
        for (i, op) in ops.iter().enumerate() {
            let at = Millis(i as u64 * 10);
            let before = h.state();
            let obs = match op {
                0 => ok(3),
                1 => fail(3),
                2 => partial(3, 1),
                3 => Observation::Carrier(i % 2 == 0),
                4 => Observation::Present(i % 3 != 0),
                5 => Observation::App { probe: "a".into(), ok: false, reason: Some("captive".into()) },
                _ => Observation::App { probe: "a".into(), ok: true, reason: None },
            };
            if let Some(t) = h.observe(at, obs) {
                prop_assert_eq!(t.from, before);
                prop_assert_eq!(t.to, h.state());
                prop_assert_eq!(t.at, at);
                if t.from != t.to {
                    prop_assert_eq!(h.since(), at);
                }
            } else {
                prop_assert_eq!(h.state(), before);
            }
        }
    }
}

#[test]
fn a_link_that_never_comes_up_says_why_after_down_after_rounds() {
    let p = HealthParams::default();
    let mut h = LinkHealth::new(p.clone(), Millis(0));
    for _ in 0..p.down_after {
        h.observe(Millis(1), fail(3));
    }
    assert_eq!(h.state(), LinkState::Down);
    assert_eq!(h.reason(), Some("probes"));
}

#[test]
fn carrier_back_says_probing_until_the_link_is_proven() {
    let p = HealthParams::default();
    let mut h = up_link(p.clone());
    h.observe(Millis(1), Observation::Carrier(false));
    assert_eq!(h.reason(), Some("carrier"));
    let t = h.observe(Millis(2), Observation::Carrier(true)).unwrap();
    assert_eq!((t.from, t.to), (LinkState::Down, LinkState::Down));
    assert_eq!(h.reason(), Some("probing"));
}
