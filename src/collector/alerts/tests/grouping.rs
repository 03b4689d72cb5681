//! Office grouping: one office-offline alert instead of one per device,
//! its recovery listing who came back.

use super::*;

/// Four laptops of the Savar UNO office, uploading a minute apart.
fn four(cut: i64, back: i64) -> Vec<Dev> {
    (0..4)
        .map(|k| {
            Dev::new(&format!("laptop-{k}"), "savar-uno")
                .phase(k * MIN)
                .outage(cut, back + k * 40_000)
        })
        .collect()
}

#[test]
fn an_office_whose_uplink_dies_raises_one_alert() {
    let mut sim = Sim::new(unreachable_only());
    sim.run(
        sun(9, 0),
        sun(12, 0),
        &four(sun(10, 2) + 30_000, sun(10, 47)),
    );
    let told = sim.sent_of(Event::Opened);
    assert_eq!(told.len(), 1, "{told:#?}");
    let v = &told[0].n.view;
    assert_eq!(v.kind, AlertKind::OfficeOffline);
    assert_eq!(v.key.subject, Subject::office("savar-uno"));
    // laptop-3 (last upload 09:58) was silent from 10:05, laptop-0 (10:00)
    // from 10:07: half the office, within the wait, so the office alert
    // opened then, since 09:58, and the others joined it.
    assert_eq!(told[0].at / TICK, sun(10, 7) / TICK);
    assert_eq!(v.since_ms, sun(9, 58));
    assert_eq!(v.members, ["laptop-3", "laptop-0"]);
    // The device alerts opened while waiting closed as merged, untold.
    assert!(
        sim.resolved
            .iter()
            .any(|r| matches!(r.reason, ResolveReason::Merged { .. }))
    );
    // One recovery, once everyone is back, listing them.
    let rec = sim.sent_of(Event::Recovered);
    assert_eq!(rec.len(), 1, "{rec:#?}");
    let mut back = rec[0].n.view.came_back.clone();
    back.sort();
    assert_eq!(back, ["laptop-0", "laptop-1", "laptop-2", "laptop-3"]);
    assert_eq!(rec[0].n.view.members.len(), 4);
    assert!(rec[0].n.view.still_silent.is_empty());
    assert!(rec[0].at >= sun(10, 47) + 3 * 40_000);
    assert!(sim.open.is_empty());
    assert_eq!(
        sim.sent.len(),
        3,
        "opened, escalated (not acknowledged in 30 min), recovered"
    );
}

#[test]
fn a_silent_gateway_takes_its_office_with_it() {
    let mut sim = Sim::new(unreachable_only());
    let mut devs = vec![
        Dev::new("gw", "savar-uno")
            .gateway()
            .outage(sun(10, 1), sun(10, 30)),
    ];
    // One of four laptops silent with it (the others on mobile data, say).
    devs.push(
        Dev::new("laptop-0", "savar-uno")
            .phase(MIN)
            .outage(sun(10, 2), sun(10, 31)),
    );
    for k in 1..4 {
        devs.push(Dev::new(&format!("laptop-{k}"), "savar-uno").phase(k * MIN));
    }
    sim.run(sun(9, 0), sun(11, 0), &devs);
    let told = sim.sent_of(Event::Opened);
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0].n.view.kind, AlertKind::OfficeOffline);
    assert_eq!(told[0].n.view.members, ["gw"]);
    // Told at once (10:07, the gateway's deadline and grace), no wait.
    assert_eq!(told[0].at / TICK, sun(10, 7) / TICK);
    let rec = sim.sent_of(Event::Recovered);
    assert_eq!(rec.len(), 1);
    let mut m = rec[0].n.view.came_back.clone();
    m.sort();
    assert_eq!(m, ["gw", "laptop-0"], "laptop-0 joined at 10:08");
}

#[test]
fn one_laptop_alone_is_its_own_alert_after_the_wait() {
    let mut sim = Sim::new(unreachable_only());
    let mut devs = four(sun(23, 0), sun(23, 30));
    devs[2] = Dev::new("laptop-2", "savar-uno")
        .phase(2 * MIN)
        .outage(sun(10, 3), sun(11, 0));
    sim.run(sun(9, 0), sun(12, 0), &devs);
    let told = sim.sent_of(Event::Opened);
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].n.view.kind, AlertKind::Unreachable);
    // Last upload 10:02, silent from 10:09, told after the 3 min wait.
    assert!(
        told[0].at >= sun(10, 12) && told[0].at < sun(10, 12) + TICK,
        "{}",
        told[0].at
    );
}

#[test]
fn members_still_silent_when_the_office_clears_get_their_own_alerts() {
    let mut sim = Sim::new(unreachable_only());
    let mut devs = four(sun(10, 2) + 30_000, sun(10, 40));
    // laptop-3 does not come back with the others.
    devs[3] = Dev::new("laptop-3", "savar-uno")
        .phase(3 * MIN)
        .outage(sun(10, 2) + 30_000, sun(12, 0));
    sim.run(sun(9, 0), sun(12, 30), &devs);
    let rec = sim.sent_of(Event::Recovered);
    assert_eq!(rec.len(), 2, "{rec:#?}");
    let office = rec
        .iter()
        .find(|s| s.n.view.kind == AlertKind::OfficeOffline)
        .unwrap();
    assert_eq!(office.n.view.still_silent, ["laptop-3"]);
    assert_eq!(office.n.view.came_back.len(), 3);
    // Cleared when half were back (10:41); resolved a window (10 min) later.
    assert!(
        office.at >= sun(10, 50) && office.at < sun(10, 52),
        "{}",
        office.at
    );
    // laptop-3's own alert is told at once, since its own silence began.
    let own: Vec<_> = sim
        .sent_of(Event::Opened)
        .into_iter()
        .filter(|s| s.n.view.kind == AlertKind::Unreachable)
        .collect();
    assert_eq!(own.len(), 1);
    assert_eq!(own[0].at, office.at);
    assert!(own[0].n.view.since_ms < sun(10, 3));
    assert_eq!(own[0].n.view.key.subject, Subject::device("laptop-3"));
}

#[test]
fn without_grouping_each_device_alerts() {
    let mut rules = unreachable_only();
    rules.grouping.enabled = false;
    let mut sim = Sim::new(rules);
    sim.run(
        sun(9, 0),
        sun(11, 0),
        &four(sun(10, 2) + 30_000, sun(10, 47)),
    );
    let told = sim.sent_of(Event::Opened);
    assert_eq!(told.len(), 4);
    assert!(told.iter().all(|s| s.n.view.kind == AlertKind::Unreachable));
}

#[test]
fn devices_falling_silent_later_join_the_office_alert() {
    let mut sim = Sim::new(unreachable_only());
    let mut devs = four(sun(10, 2) + 30_000, sun(11, 0));
    // A fifth device in the office goes silent twenty minutes later.
    devs.push(
        Dev::new("laptop-4", "savar-uno")
            .phase(4 * MIN)
            .outage(sun(10, 25), sun(11, 0)),
    );
    sim.run(sun(9, 0), sun(10, 45), &devs);
    assert_eq!(sim.sent_of(Event::Opened).len(), 1);
    let a = &sim.open_of(AlertKind::OfficeOffline)[0];
    assert_eq!(a.members.len(), 5, "{:?}", a.members);
    assert!(sim.open_of(AlertKind::Unreachable).is_empty());
}

/// The late data of an office alert's members is asked for only once they
/// are back: members still silent, though heard from after the office's
/// start, are not (every round read their records again before).
#[test]
fn only_members_back_are_asked_for_their_late_data() {
    let mut sim = Sim::new(unreachable_only());
    let devs = four(sun(10, 2) + 30_000, sun(10, 47));
    sim.run(sun(9, 0), sun(10, 30), &devs);
    assert_eq!(sim.open_of(AlertKind::OfficeOffline)[0].members.len(), 4);
    let ask = |sim: &Sim, now: i64| {
        let facts: Vec<DeviceFacts> = devs.iter().map(|d| d.facts(now)).collect();
        let input = Input {
            now_ms: now,
            devices: &facts,
            open: &sim.open,
            silences: &[],
            annotations: &BTreeMap::new(),
        };
        annotation_requests(&sim.ctx, &input)
            .into_iter()
            .map(|r| r.device)
            .collect::<Vec<_>>()
    };
    // laptop-1 and laptop-2 uploaded after 09:58 (the office alert's
    // start) but are silent: nobody is asked about.
    assert_eq!(ask(&sim, sun(10, 30)), Vec::<String>::new());
    // laptop-0 is back at 10:47, the others 40 s apart.
    assert_eq!(ask(&sim, sun(10, 47) + 30_000), ["laptop-0"]);
    let mut all = ask(&sim, sun(10, 52));
    all.sort();
    assert_eq!(all, ["laptop-0", "laptop-1", "laptop-2", "laptop-3"]);
}
