//! Property tests of silences over random days: while a silence covers a
//! subject nothing new is told about it (no opening, no escalation), and a
//! device still silent when its silence ends is told at once then (office
//! hours, alone in its office, so no grouping wait).

use super::*;
use proptest::prelude::*;

fn windows(max: usize) -> impl Strategy<Value = Vec<(i64, i64)>> {
    prop::collection::vec((0i64..480, 5i64..200), 0..max).prop_map(|v| {
        v.into_iter()
            .map(|(s, l)| (sun(8, 0) + s * MIN, sun(8, 0) + (s + l) * MIN))
            .collect()
    })
}

fn targets() -> Vec<Target> {
    vec![
        Target::Device("d0".into()),
        Target::Device("d1".into()),
        Target::Office("keraniganj".into()),
        Target::Office("savar-uno".into()),
        Target::Branch(BranchSpec::parse("district:Dhaka / Dhaka").unwrap()),
        Target::Branch(BranchSpec::parse("division:Rangpur").unwrap()),
    ]
}

/// Does an active silence cover the subject of a notice (as the engine
/// decides it: by device name, office code or branch)?
fn covered(silences: &[Silence], view: &AlertView, now: i64) -> bool {
    let office = offices()
        .into_iter()
        .find(|o| Some(&o.code) == view.office.as_ref());
    silences
        .iter()
        .filter(|s| s.active(now))
        .any(|s| match &s.target {
            Target::Device(n) => view.key.subject.device_name() == Some(n.as_str()),
            Target::Office(c) => view.office.as_deref() == Some(c.as_str()),
            Target::Branch(b) => b.contains(office.as_ref()),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_silence_tells_nothing_new_and_its_end_tells_what_is_still_down(
        outages in prop::collection::vec(windows(3), 4),
        silences in prop::collection::vec((0usize..6, 0i64..480, 5i64..240), 0..4),
    ) {
        let silences: Vec<Silence> = silences
            .into_iter()
            .enumerate()
            .map(|(i, (t, s, l))| Silence {
                id: i as i64 + 1,
                target: targets()[t].clone(),
                start_ms: sun(8, 0) + s * MIN,
                end_ms: sun(8, 0) + (s + l) * MIN,
                reason: String::new(),
            })
            .collect();
        let devs: Vec<Dev> = outages
            .into_iter()
            .enumerate()
            .map(|(k, o)| {
                let mut d = Dev::new(&format!("d{k}"), if k == 0 { "keraniganj" } else { "savar-uno" });
                d.outages = o;
                d
            })
            .collect();
        let mut sim = Sim::new(unreachable_only());
        sim.silences = silences.clone();
        let mut now = sun(8, 0);
        while now < sun(18, 0) {
            let facts: Vec<DeviceFacts> = devs.iter().map(|d| d.facts(now)).collect();
            let d = sim.tick(now, &facts);
            for n in &d.notify {
                if n.event != Event::Recovered {
                    prop_assert!(
                        !covered(&silences, &n.view, now),
                        "{:?} of {} told at {now} under a silence", n.event, n.view.key
                    );
                }
            }
            // d0 is alone in Keraniganj: still silent when the last silence
            // over it ends in office hours, it is told right then.
            let over_d0 = |s: &Silence| match &s.target {
                Target::Device(n) => n == "d0",
                Target::Office(c) => c == "keraniganj",
                Target::Branch(b) => b.level == RouteLevel::District,
            };
            let ends_now = silences.iter().any(|s| over_d0(s) && s.end_ms == now);
            let still = silences.iter().any(|s| over_d0(s) && s.active(now));
            let silent = now >= facts[0].next_upload_due_ms.unwrap() + 2 * MIN;
            if ends_now && !still && silent && now >= sun(9, 0) && now < sun(16, 30) {
                prop_assert!(
                    sim.open.iter().any(|a| a.key.subject.device_name() == Some("d0")
                        && a.notified_ms.is_some()),
                    "d0 silent at the end of its silence at {now}, yet not told: {:#?}", sim.open
                );
            }
            now += MIN;
        }
    }
}
