//! Gateway link warnings in routes mode: failover to a backup link, a link
//! down for long, a metered link carrying the traffic for long.

use super::*;
use crate::wire::{LinkKind, LinkState};

fn link_rules() -> RuleSet {
    let mut down = rule("link_down", RuleKind::LinkDown);
    down.after_ms = 15 * MIN;
    let mut metered = rule("metered", RuleKind::MeteredTraffic);
    metered.after_ms = 30 * MIN;
    ruleset(vec![rule("failover", RuleKind::Failover), down, metered])
}

/// eth0 (broadband, preferred) fails at 10:00 and is back at 10:50; the
/// traffic moves to wwan0 (mobile, metered) meanwhile.
fn links(now: i64) -> GatewayLinks {
    let failed = (sun(10, 0)..sun(10, 50)).contains(&now);
    let since = if now < sun(10, 0) {
        sun(8, 0)
    } else if failed {
        sun(10, 0)
    } else {
        sun(10, 50)
    };
    let l = |name: &str, kind, metered, priority, state| LinkStatus {
        name: name.into(),
        kind,
        metered,
        priority,
        state,
        since_ms: since,
    };
    GatewayLinks {
        links: vec![
            l(
                "eth0",
                LinkKind::Broadband,
                false,
                1,
                if failed {
                    LinkState::Down
                } else {
                    LinkState::Up
                },
            ),
            l("wwan0", LinkKind::Mobile, true, 10, LinkState::Up),
        ],
        chosen: Some(if failed { "wwan0" } else { "eth0" }.into()),
        chosen_since_ms: since,
    }
}

fn run(gw: &Dev, from: i64, to: i64) -> Sim {
    let mut sim = Sim::new(link_rules());
    let mut now = from;
    while now < to {
        let mut f = gw.facts(now);
        f.links = Some(links(now));
        // An officer's laptop with links is not watched (gateways only).
        let mut laptop = Dev::new("laptop", "savar-uno").facts(now);
        laptop.links = Some(links(now));
        sim.tick(now, &[f, laptop]);
        now += TICK;
    }
    sim
}

#[test]
fn failover_link_down_and_metered_traffic_warn_and_recover() {
    let gw = Dev::new("gw", "savar-uno").gateway();
    let sim = run(&gw, sun(9, 0), sun(12, 0));
    let opened: Vec<(AlertKind, String, i64)> = sim
        .sent_of(Event::Opened)
        .iter()
        .map(|s| (s.n.view.kind, s.n.view.key.subject.to_string(), s.at))
        .collect();
    assert_eq!(
        opened,
        vec![
            (AlertKind::Failover, "device:gw".into(), sun(10, 0)),
            (AlertKind::LinkDown, "link:gw/eth0".into(), sun(10, 15)),
            (
                AlertKind::MeteredTraffic,
                "link:gw/wwan0".into(),
                sun(10, 30)
            ),
        ]
    );
    let failover = &sim.sent_of(Event::Opened)[0].n.view;
    assert_eq!(failover.links, ["eth0", "wwan0"]);
    assert_eq!(failover.kind.severity(), Severity::Warning);
    let rec = sim.sent_of(Event::Recovered);
    assert_eq!(rec.len(), 3);
    assert!(rec.iter().all(|s| s.at == sun(10, 50)));
    assert!(sim.open.is_empty());
}

#[test]
fn a_silent_gateway_s_links_are_not_believed() {
    // The gateway is silent from 10:20 to 11:10: its links' recovery at
    // 10:50 is only known, and the warnings closed, once it uploads again.
    let gw = Dev::new("gw", "savar-uno")
        .gateway()
        .outage(sun(10, 20), sun(11, 10));
    let sim = run(&gw, sun(9, 0), sun(12, 0));
    let opened: Vec<AlertKind> = sim
        .sent_of(Event::Opened)
        .iter()
        .map(|s| s.n.view.kind)
        .collect();
    // Metered traffic would have been due at 10:30, while silent: not opened.
    assert_eq!(opened, vec![AlertKind::Failover, AlertKind::LinkDown]);
    let rec = sim.sent_of(Event::Recovered);
    assert_eq!(rec.len(), 2);
    assert!(rec.iter().all(|s| s.at == sun(11, 10)), "{rec:#?}");
}

/// The gateway's records as its agent writes them: eth0 (broadband) and
/// wwan0 (mobile, metered) up from 08:00 with eth0 chosen; eth0 down over
/// `[down, back)`, the traffic on wwan0 meanwhile.
fn records(down: i64, back: i64) -> Vec<(i64, crate::wire::v1::Body)> {
    use crate::wire::v1::{Body, LinkFact};
    let fact = |name: &str, kind, metered, priority| LinkFact {
        name: name.into(),
        kind,
        metered,
        priority,
    };
    let state = |link: &str, from, to| Body::LinkState {
        link: link.into(),
        kind: LinkKind::Broadband,
        from,
        to,
        reason: None,
    };
    let failover = |from: &str, to: &str| Body::Failover {
        from: Some(from.into()).filter(|f: &String| !f.is_empty()),
        to: Some(to.into()),
        cause: "failover".into(),
        reason: String::new(),
    };
    vec![
        (
            sun(8, 0),
            Body::Facts {
                hostname: "gw".into(),
                os: "Debian".into(),
                agent_version: "0.1.0".into(),
                links: vec![
                    fact("eth0", LinkKind::Broadband, false, 1),
                    fact("wwan0", LinkKind::Mobile, true, 10),
                ],
            },
        ),
        (
            sun(8, 0) + 1,
            state("eth0", LinkState::Absent, LinkState::Up),
        ),
        (
            sun(8, 0) + 2,
            state("wwan0", LinkState::Absent, LinkState::Up),
        ),
        (sun(8, 0) + 3, failover("", "eth0")),
        (down, state("eth0", LinkState::Up, LinkState::Down)),
        (down + 1, failover("eth0", "wwan0")),
        (back, state("eth0", LinkState::Down, LinkState::Up)),
        (back + 1, failover("wwan0", "eth0")),
    ]
}

/// Tick every 15 s over `[from, to)`, the gateway's links folded from its
/// records placed up to each tick.
fn run_records(rules: RuleSet, recs: &[(i64, crate::wire::v1::Body)], from: i64, to: i64) -> Sim {
    let gw = Dev::new("gw", "savar-uno").gateway().phase(1);
    let mut sim = Sim::new(rules);
    let mut now = from;
    while now < to {
        let mut f = gw.facts(now);
        f.links = crate::collector::alerts::links::gateway_links(
            recs.iter()
                .filter(|(at, _)| *at <= now)
                .map(|(at, b)| (*at, b)),
        );
        sim.tick(now, &[f]);
        now += TICK;
    }
    sim
}

#[test]
fn warnings_from_the_gateway_s_own_records() {
    let sim = run_records(
        link_rules(),
        &records(sun(10, 0), sun(10, 50)),
        sun(9, 0),
        sun(12, 0),
    );
    let opened: Vec<(AlertKind, String, i64)> = sim
        .sent_of(Event::Opened)
        .iter()
        .map(|s| (s.n.view.kind, s.n.view.key.subject.to_string(), s.at))
        .collect();
    assert_eq!(
        opened,
        vec![
            (AlertKind::Failover, "device:gw".into(), sun(10, 0) + TICK),
            (AlertKind::LinkDown, "link:gw/eth0".into(), sun(10, 15)),
            (
                AlertKind::MeteredTraffic,
                "link:gw/wwan0".into(),
                sun(10, 30) + TICK
            ),
        ]
    );
    // eth0 is up from its record at 10:50; the failover back follows it.
    let rec: Vec<(AlertKind, i64)> = sim
        .sent_of(Event::Recovered)
        .iter()
        .map(|s| (s.n.view.kind, s.at))
        .collect();
    assert_eq!(
        rec,
        vec![
            (AlertKind::LinkDown, sun(10, 50)),
            (AlertKind::Failover, sun(10, 50) + TICK),
            (AlertKind::MeteredTraffic, sun(10, 50) + TICK),
        ]
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Over random outages of the preferred link and random thresholds,
    /// each warning opens once, at the first tick at least `after` into
    /// the outage, exactly when the outage lasts that long; all close
    /// at its end.
    #[test]
    fn each_warning_opens_iff_the_condition_lasts_its_after(
        start_min in 0i64..120,
        len_s in 1i64..5400,
        down_after_min in 1i64..60,
        metered_after_min in 1i64..60,
    ) {
        let mut down = rule("link_down", RuleKind::LinkDown);
        down.after_ms = down_after_min * MIN;
        let mut metered = rule("metered", RuleKind::MeteredTraffic);
        metered.after_ms = metered_after_min * MIN;
        let rules = ruleset(vec![rule("failover", RuleKind::Failover), down, metered]);
        let cut = sun(9, 0) + start_min * MIN + 7;
        let back = cut + len_s * 1000;
        let sim = run_records(rules, &records(cut, back), sun(9, 0), sun(13, 0));
        // The first tick at or after `t` (ticks from 09:00 every 15 s).
        let tick_at = |t: i64| sun(9, 0) + (t - sun(9, 0) + TICK - 1).div_euclid(TICK) * TICK;
        let expect = |since: i64, after: i64| -> Option<i64> {
            let at = tick_at(since + after);
            (at < tick_at(back)).then_some(at)
        };
        let opened = |kind: AlertKind| -> Vec<i64> {
            sim.sent_of(Event::Opened)
                .iter()
                .filter(|s| s.n.view.kind == kind)
                .map(|s| s.at)
                .collect()
        };
        for (kind, since, after) in [
            (AlertKind::Failover, cut + 1, 0),
            (AlertKind::LinkDown, cut, down_after_min * MIN),
            (AlertKind::MeteredTraffic, cut + 1, metered_after_min * MIN),
        ] {
            let want: Vec<i64> = expect(since, after).into_iter().collect();
            proptest::prop_assert_eq!(opened(kind), want, "{:?}", kind);
        }
        proptest::prop_assert!(sim.open.is_empty(), "all closed: {:?}", sim.open);
        for s in sim.sent_of(Event::Recovered) {
            proptest::prop_assert_eq!(s.at, tick_at(back + 1));
        }
    }
}
