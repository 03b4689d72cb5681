//! Property tests over random days of random devices (outages, announced
//! stops, gateways, two offices): a device that announced its stop never
//! gets an unreachable alert, nor joins an office alert; every alert told
//! is resolved once all is well, and its recovery told.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeSet, HashSet};

type Window = (i64, i64);

fn windows() -> impl Strategy<Value = Vec<Window>> {
    prop::collection::vec((0i64..600, 1i64..150), 0..3).prop_map(|v| {
        v.into_iter()
            .map(|(s, l)| (sun(8, 0) + s * MIN, sun(8, 0) + (s + l) * MIN))
            .collect()
    })
}

fn device() -> impl Strategy<Value = (usize, bool, i64, Vec<Window>, Vec<Window>)> {
    (
        0usize..2,
        prop::bool::weighted(0.2),
        0i64..5,
        windows(),
        windows(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn an_announced_stop_is_never_unreachable(
        devs in prop::collection::vec(device(), 1..7),
        not_running_after in 10i64..180,
    ) {
        let mut nr = rule("not-running", RuleKind::NotRunning);
        nr.after_ms = not_running_after * MIN;
        let mut sim = Sim::new(ruleset(vec![rule("unreachable", RuleKind::Unreachable), nr]));
        let devs: Vec<Dev> = devs
            .into_iter()
            .enumerate()
            .map(|(k, (o, gw, phase, outages, stops))| {
                let mut d = Dev::new(&format!("d{k}"), ["savar-uno", "keraniganj"][o]).phase(phase * MIN);
                d.gateway = gw;
                d.outages = outages;
                d.stops = stops;
                d
            })
            .collect();
        let mut told: BTreeSet<i64> = BTreeSet::new();
        let mut now = sun(8, 0);
        // Every window ends by 20:30; all is well from then on.
        while now < sun(23, 0) {
            let facts: Vec<DeviceFacts> = devs.iter().map(|d| d.facts(now)).collect();
            let stopped: HashSet<&str> = facts
                .iter()
                .filter(|f| f.stopped.is_some())
                .map(|f| f.name.as_str())
                .collect();
            let d = sim.tick(now, &facts);
            for a in &d.open {
                if a.kind == AlertKind::Unreachable {
                    let name = a.key.subject.device_name().unwrap();
                    prop_assert!(!stopped.contains(name), "{name} stopped, yet unreachable at {now}");
                }
                for m in &a.members {
                    prop_assert!(!stopped.contains(m.as_str()), "{m} stopped, yet in an office alert");
                }
            }
            for u in &d.update {
                for m in u.members.iter().flatten() {
                    prop_assert!(!stopped.contains(m.as_str()), "{m} stopped, yet joins an office alert");
                }
            }
            for n in &d.notify {
                if n.event == Event::Opened && n.view.kind == AlertKind::Unreachable {
                    let name = n.view.key.subject.device_name().unwrap();
                    prop_assert!(!stopped.contains(name), "{name} stopped, yet told unreachable");
                }
            }
            now += MIN;
        }
        for s in &sim.sent {
            if s.n.event == Event::Opened {
                told.insert(s.id);
            }
        }
        prop_assert!(sim.open.is_empty(), "still open when all is well: {:#?}", sim.open);
        for r in &sim.resolved {
            if told.contains(&r.id) && r.reason == ResolveReason::Recovered {
                prop_assert!(
                    sim.sent.iter().any(|s| s.id == r.id && s.n.event == Event::Recovered),
                    "alert {} recovered untold", r.id
                );
            }
        }
        // Alerts never told never tell a recovery.
        for s in sim.sent_of(Event::Recovered) {
            prop_assert!(told.contains(&s.id));
        }
    }
}
