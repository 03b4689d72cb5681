//! Silence and schedules: office hours, weekends, holidays, each office's
//! own hours; clean stops; silences and maintenance windows; a pending
//! alert resolved before it is told.

use super::*;

fn thu(h: i8, m: i8) -> i64 {
    at(12, 3, h, m)
}

#[test]
fn an_evening_silence_alerts_only_after_the_grace_in_office_hours() {
    let mut sim = Sim::new(unreachable_only());
    // Last upload Sunday 16:55, deadline 17:00: nothing scheduled after it
    // that day. Monday 09:00 the office opens: alert at 09:02.
    let dev = Dev::new("laptop-1", "keraniganj").outage(sun(16, 56), at(11, 30, 10, 0));
    sim.run(sun(16, 0), at(11, 30, 9, 30), &[dev]);
    assert_eq!(sim.opened.len(), 1);
    let (t, a) = &sim.opened[0];
    assert!(
        *t >= at(11, 30, 9, 2) && *t < at(11, 30, 9, 2) + TICK,
        "{t}"
    );
    assert_eq!(a.since_ms, sun(16, 55));
}

#[test]
fn a_silence_over_the_weekend_raises_nothing() {
    let mut sim = Sim::new(unreachable_only());
    // Thursday 17:30 to Sunday 08:50: Friday and Saturday are off.
    let dev = Dev::new("laptop-1", "keraniganj").outage(thu(17, 30), at(12, 6, 8, 50));
    sim.run(thu(17, 0), at(12, 6, 9, 30), &[dev]);
    assert!(sim.opened.is_empty(), "{:?}", sim.opened);
    // The same silence starting at 16:30 Thursday alerts at 16:37.
    let mut sim = Sim::new(unreachable_only());
    let dev = Dev::new("laptop-1", "keraniganj").outage(thu(16, 31), at(12, 6, 8, 50));
    sim.run(thu(16, 0), at(12, 6, 9, 30), &[dev]);
    assert_eq!(sim.opened.len(), 1);
    assert!(sim.opened[0].0 >= thu(16, 37) && sim.opened[0].0 < thu(16, 37) + TICK);
    // It stays open over the weekend (no escalation outside hours), and
    // recovers on Sunday morning.
    assert_eq!(sim.sent_of(Event::Escalated).len(), 0);
    assert_eq!(sim.sent_of(Event::Recovered).len(), 1);
}

#[test]
fn holidays_are_off() {
    let holidays = parse_holidays("2026-11-30 # a made-up holiday").unwrap();
    let mut r = rule("unreachable", RuleKind::Unreachable);
    r.schedule = r.schedule.with_holidays(holidays);
    let mut sim = Sim::new(ruleset(vec![r]));
    let dev = Dev::new("laptop-1", "keraniganj").outage(sun(17, 30), at(12, 1, 9, 30));
    sim.run(sun(17, 0), at(12, 1, 9, 15), &[dev]);
    assert_eq!(sim.opened.len(), 1, "Tuesday only");
    assert!(sim.opened[0].0 >= at(12, 1, 9, 2) && sim.opened[0].0 < at(12, 1, 9, 2) + TICK);
}

#[test]
fn each_office_keeps_its_own_hours() {
    let mut offices = offices();
    offices[2].hours = Some("office:Asia/Dhaka:sun-thu:07:00-15:00".into());
    let early = |cut: i64| {
        let mut sim = Sim::with(unreachable_only(), offices.clone(), routing());
        let dev = Dev::new("laptop-1", "keraniganj").outage(cut, sun(23, 0));
        sim.run(sun(6, 0), sun(22, 0), &[dev]);
        sim.opened.iter().map(|(t, _)| *t).collect::<Vec<_>>()
    };
    // 07:00 opening: a silence from 07:30 alerts at 07:37.
    let t = early(sun(7, 31));
    assert_eq!(t.len(), 1);
    assert!(t[0] >= sun(7, 37) && t[0] < sun(7, 37) + TICK);
    // Closed at 15:00: a silence from 15:30 raises nothing.
    assert!(early(sun(15, 31)).is_empty());
    // The default hours still apply to the other offices.
    let mut sim = Sim::with(unreachable_only(), offices.clone(), routing());
    let dev = Dev::new("laptop-2", "pirganj").outage(sun(15, 31), sun(23, 0));
    sim.run(sun(15, 0), sun(18, 0), &[dev]);
    assert_eq!(sim.opened.len(), 1);
}

#[test]
fn a_clean_stop_is_not_running_never_unreachable() {
    let mut nr = rule("off-hours", RuleKind::NotRunning);
    nr.after_ms = 2 * HOUR;
    let mut sim = Sim::new(ruleset(vec![
        rule("unreachable", RuleKind::Unreachable),
        nr,
    ]));
    // Stopped at 11:00 (shutdown announced), back Monday 10:00.
    let dev = Dev::new("laptop-1", "keraniganj").stop(sun(11, 0), at(11, 30, 10, 0));
    sim.run(sun(9, 0), at(11, 30, 11, 0), &[dev]);
    assert!(
        sim.opened
            .iter()
            .all(|(_, a)| a.kind != AlertKind::Unreachable),
        "{:?}",
        sim.opened
    );
    assert_eq!(sim.opened.len(), 1);
    let (t, a) = &sim.opened[0];
    assert_eq!(a.kind, AlertKind::NotRunning);
    // Two hours of office time after the stop: 13:00.
    assert!(*t >= sun(13, 0) && *t < sun(13, 0) + TICK, "{t}");
    assert_eq!(a.since_ms, sun(11, 0));
    let rec = sim.sent_of(Event::Recovered);
    assert_eq!(rec.len(), 1);
    assert!(rec[0].at >= at(11, 30, 10, 0) && rec[0].at < at(11, 30, 10, 0) + TICK);

    // Stopped at 16:00: one hour that day, the second on Monday 09:00-10:00.
    let mut nr = rule("off-hours", RuleKind::NotRunning);
    nr.after_ms = 2 * HOUR;
    let mut sim = Sim::new(ruleset(vec![nr]));
    let dev = Dev::new("laptop-1", "keraniganj").stop(sun(16, 0), at(11, 30, 12, 0));
    sim.run(sun(15, 0), at(11, 30, 11, 0), &[dev]);
    assert_eq!(sim.opened.len(), 1);
    let t = sim.opened[0].0;
    assert!(
        t >= at(11, 30, 10, 0) && t < at(11, 30, 10, 0) + TICK,
        "{t}"
    );
}

#[test]
fn silences_and_maintenance_windows() {
    let dev = || Dev::new("laptop-1", "keraniganj").outage(sun(10, 1), sun(12, 0));
    let silence = |target: Target, start: i64, end: i64| Silence {
        id: 1,
        target,
        start_ms: start,
        end_ms: end,
        reason: "planned".into(),
    };
    let first_open = |silences: Vec<Silence>| {
        let mut sim = Sim::new(unreachable_only());
        sim.silences = silences;
        sim.run(sun(9, 0), sun(13, 0), &[dev()]);
        (
            sim.opened.first().map(|(t, a)| (*t, a.since_ms)),
            sim.sent.len(),
        )
    };
    // Without: 10:07.
    assert_eq!(first_open(vec![]).0.unwrap().0 / TICK, sun(10, 7) / TICK);
    // The device silenced until 11:00: the alert opens then, since 10:00.
    let (o, _) = first_open(vec![silence(
        Target::Device("laptop-1".into()),
        sun(9, 0),
        sun(11, 0),
    )]);
    assert_eq!(o, Some((sun(11, 0), sun(10, 0))));
    // Its office, or its district, silenced all along: nothing at all.
    for t in [
        Target::Office("keraniganj".into()),
        Target::Branch(BranchSpec::parse("district:Dhaka / Dhaka").unwrap()),
        Target::Branch(BranchSpec::parse("upazila:dhaka/dhaka/KERANIGANJ").unwrap()),
    ] {
        assert_eq!(
            first_open(vec![silence(t.clone(), sun(8, 0), sun(14, 0))]),
            (None, 0),
            "{t:?}"
        );
    }
    // Other devices, offices and branches are not silenced.
    for t in [
        Target::Device("laptop-2".into()),
        Target::Office("savar-uno".into()),
        Target::Branch(BranchSpec::parse("division:Rangpur").unwrap()),
    ] {
        assert!(
            first_open(vec![silence(t.clone(), sun(8, 0), sun(14, 0))])
                .0
                .is_some(),
            "{t:?}"
        );
    }
    // A maintenance window later in the day changes nothing now.
    let (o, _) = first_open(vec![silence(
        Target::Office("keraniganj".into()),
        sun(14, 0),
        sun(16, 0),
    )]);
    assert_eq!(o.unwrap().0 / TICK, sun(10, 7) / TICK);
}

#[test]
fn a_recovery_during_a_silence_is_still_told() {
    let mut sim = Sim::new(unreachable_only());
    let dev = Dev::new("laptop-1", "keraniganj").outage(sun(10, 1), sun(10, 20));
    sim.run(sun(9, 0), sun(10, 10), std::slice::from_ref(&dev));
    assert_eq!(sim.sent_of(Event::Opened).len(), 1);
    sim.silences.push(Silence {
        id: 9,
        target: Target::Device("laptop-1".into()),
        start_ms: sun(10, 10),
        end_ms: sun(12, 0),
        reason: "we know".into(),
    });
    sim.run(sun(10, 10), sun(11, 0), &[dev]);
    assert_eq!(sim.sent_of(Event::Recovered).len(), 1);
}

#[test]
fn a_pending_alert_that_recovers_tells_nobody() {
    let mut sim = Sim::new(unreachable_only());
    // Savar UNO office has three devices: a lone silence waits 3 min for the others.
    let devs = [
        Dev::new("a", "savar-uno").outage(sun(10, 1), sun(10, 8) + 30_000),
        Dev::new("b", "savar-uno").phase(MIN),
        Dev::new("c", "savar-uno").phase(2 * MIN),
    ];
    sim.run(sun(9, 0), sun(11, 0), &devs);
    assert_eq!(sim.opened.len(), 1, "opened at 10:07, pending");
    assert!(sim.sent.is_empty(), "{:?}", sim.sent);
    assert_eq!(sim.resolved.len(), 1);
    // Back later than the wait: told at 10:10, then recovered.
    let mut sim = Sim::new(unreachable_only());
    let mut devs = devs;
    devs[0] = Dev::new("a", "savar-uno").outage(sun(10, 1), sun(10, 30));
    sim.run(sun(9, 0), sun(11, 0), &devs);
    let told = sim.sent_of(Event::Opened);
    assert_eq!(told.len(), 1);
    assert!(
        told[0].at >= sun(10, 10) && told[0].at < sun(10, 10) + TICK,
        "{}",
        told[0].at
    );
    assert_eq!(told[0].n.levels, vec![RouteLevel::Office]);
    assert_eq!(sim.sent_of(Event::Recovered).len(), 1);
}
