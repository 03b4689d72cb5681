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
