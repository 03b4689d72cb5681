//! Escalation one level up the hierarchy when an alert is not
//! acknowledged, and routing along it.

use super::*;

fn ac_down(cut: i64, back: i64) -> Vec<Dev> {
    // Alone in the Savar AC office (one device: never grouped).
    vec![Dev::new("laptop-ac", "savar-ac").outage(cut, back)]
}

#[test]
fn unacknowledged_alerts_climb_one_level_at_a_time() {
    let mut sim = Sim::new(unreachable_only());
    sim.run(sun(9, 0), sun(13, 0), &ac_down(sun(10, 1), sun(12, 30)));
    let levels: Vec<(Event, Vec<RouteLevel>, i64)> = sim
        .sent
        .iter()
        .map(|s| (s.n.event, s.n.levels.clone(), s.at / TICK))
        .collect();
    use RouteLevel::*;
    // Office (the AC's contact), then the district (no upazila contact),
    // the division, the ministry; then nothing higher. Recovery to all.
    assert_eq!(
        levels,
        vec![
            (Event::Opened, vec![Office], sun(10, 7) / TICK),
            (Event::Escalated, vec![District], sun(10, 37) / TICK),
            (Event::Escalated, vec![Division], sun(11, 7) / TICK),
            (Event::Escalated, vec![Ministry], sun(11, 37) / TICK),
            (
                Event::Recovered,
                vec![Office, District, Division, Ministry],
                sun(12, 30) / TICK
            ),
        ]
    );
    let esc = &sim.sent_of(Event::Escalated)[0].n.view;
    assert_eq!(esc.escalated_from, Some(Office));
    assert_eq!(esc.level, District);
    // Who that is.
    let ac = &offices()[1];
    let names = |levels: &[RouteLevel]| {
        sim.routing
            .recipients(Some(ac), levels)
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&[Office]), ["ac"]);
    assert_eq!(names(&[District]), ["dc-dhaka"]);
    assert_eq!(
        names(&[Office, District, Division, Ministry]),
        ["ac", "dc-dhaka", "div-dhaka", "ministry"]
    );
    // The Rangpur office has only the ministry above it.
    let pirganj = &offices()[3];
    assert_eq!(sim.routing.levels(Some(pirganj)), vec![Ministry]);
    assert_eq!(sim.routing.levels(None), vec![Ministry]);
}

#[test]
fn an_acknowledged_alert_stays_where_it_is() {
    let mut sim = Sim::new(unreachable_only());
    let devs = ac_down(sun(10, 1), sun(12, 30));
    sim.run(sun(9, 0), sun(10, 10), &devs);
    assert_eq!(sim.open.len(), 1);
    sim.open[0].acked = Some(Acknowledged {
        by: "ac".into(),
        at_ms: sun(10, 10),
    });
    sim.run(sun(10, 10), sun(13, 0), &devs);
    assert!(sim.sent_of(Event::Escalated).is_empty());
    let rec = sim.sent_of(Event::Recovered);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].n.levels, vec![RouteLevel::Office]);
}

#[test]
fn escalation_waits_for_office_hours() {
    let mut sim = Sim::new(unreachable_only());
    // Told at 16:42; escalation due at 17:12, but the office is closed then.
    sim.run(
        sun(16, 0),
        at(11, 30, 9, 30),
        &ac_down(sun(16, 36), at(11, 30, 12, 0)),
    );
    let esc = sim.sent_of(Event::Escalated);
    assert_eq!(esc.len(), 1, "{esc:#?}");
    assert_eq!(esc[0].at / TICK, at(11, 30, 9, 0) / TICK);
}

#[test]
fn a_silence_defers_escalation_to_its_end() {
    let mut sim = Sim::new(unreachable_only());
    let devs = ac_down(sun(10, 1), sun(13, 0));
    sim.silences.push(Silence {
        id: 1,
        target: Target::Device("laptop-ac".into()),
        start_ms: sun(10, 30),
        end_ms: sun(11, 30),
        reason: "technician on the way".into(),
    });
    sim.run(sun(9, 0), sun(12, 31), &devs);
    let esc = sim.sent_of(Event::Escalated);
    // Due at 10:37 (silenced), then 30 min after the silence's end.
    assert_eq!(esc.len(), 2, "{esc:#?}");
    assert_eq!(esc[0].at / TICK, sun(12, 0) / TICK);
    assert_eq!(esc[1].at / TICK, sun(12, 30) / TICK);
}

#[test]
fn a_removed_rule_closes_its_alerts_quietly() {
    let mut sim = Sim::new(unreachable_only());
    let devs = ac_down(sun(10, 1), sun(13, 0));
    sim.run(sun(9, 0), sun(10, 10), &devs);
    assert_eq!(sim.open.len(), 1);
    let told = sim.sent.len();
    sim.ctx = Context::new(
        ruleset(vec![rule("other-name", RuleKind::Unreachable)]),
        offices(),
    );
    let facts: Vec<DeviceFacts> = devs.iter().map(|d| d.facts(sun(10, 10))).collect();
    let d = sim.tick(sun(10, 10), &facts);
    assert!(
        d.resolve
            .iter()
            .any(|r| r.reason == ResolveReason::RuleRemoved)
    );
    assert!(d.open.iter().any(|a| a.key.rule == "other-name"));
    assert_eq!(
        sim.sent.len(),
        told + 1,
        "the new rule's alert is told, the old one closes without a notice"
    );
}
