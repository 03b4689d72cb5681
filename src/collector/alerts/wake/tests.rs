//! The next wake with a simulated clock: each kind of due time, the sleep
//! within the interval, and over random outages and silences a round run
//! only at the wake times (or the interval) tells every alert and
//! escalation within [`MIN_GAP`] of a round run every second.

use super::*;
use crate::collector::alerts::model::{Event, Target};
use crate::collector::alerts::rules::RuleKind;
use crate::collector::alerts::tests::{Dev, MIN, Sim, rule, ruleset, sun};
use proptest::prelude::*;

const SEC: i64 = 1000;

fn rules() -> RuleSet {
    ruleset(vec![rule("unreachable", RuleKind::Unreachable)])
}

#[test]
fn the_earliest_due_time_after_now() {
    let r = rules();
    let now = sun(10, 0);
    // Uploaded at 09:58, due by 10:03: silent from 10:05 (grace 2 min).
    let mut d = Dev::new("laptop", "savar-uno").facts(now);
    d.last_upload_ms = Some(sun(9, 58));
    d.next_upload_due_ms = Some(sun(10, 3));
    assert_eq!(next_wake(&r, now, &[d.clone()], &[], &[]), Some(sun(10, 5)));
    // Without a deadline of its own: last upload plus the interval.
    d.next_upload_due_ms = None;
    assert_eq!(next_wake(&r, now, &[d.clone()], &[], &[]), Some(sun(10, 5)));
    // Past already: nothing pending from it.
    d.next_upload_due_ms = Some(sun(9, 50));
    assert_eq!(next_wake(&r, now, &[d.clone()], &[], &[]), None);
    // A silence ending sooner comes first.
    let s = Silence {
        id: 1,
        target: Target::Device("laptop".into()),
        start_ms: sun(9, 0),
        end_ms: sun(10, 1),
        reason: String::new(),
    };
    d.next_upload_due_ms = Some(sun(10, 3));
    assert_eq!(
        next_wake(&r, now, &[d.clone()], &[], std::slice::from_ref(&s)),
        Some(sun(10, 1))
    );
    // A stopped device has no deadline; never heard from, neither.
    d.stopped = Some(crate::collector::alerts::model::StopKind::Shutdown);
    assert_eq!(next_wake(&r, now, &[d.clone()], &[], &[]), None);
    let mut never = Dev::new("new", "savar-uno").facts(now);
    never.last_upload_ms = None;
    assert_eq!(next_wake(&r, now, &[never], &[], &[]), None);
}

#[test]
fn the_sleep_stays_within_the_interval() {
    let every = Duration::from_secs(4);
    let now = 1_000_000;
    assert_eq!(
        sleep_before(now, None, Duration::ZERO, Duration::ZERO, every),
        None
    );
    assert_eq!(
        sleep_before(
            now,
            Some(now + 1_500),
            Duration::ZERO,
            Duration::ZERO,
            every
        ),
        Some(Duration::from_millis(1_500))
    );
    // Not closer than the gap, whatever falls due.
    assert_eq!(
        sleep_before(now, Some(now + 10), Duration::ZERO, Duration::ZERO, every),
        Some(MIN_GAP)
    );
    // The interval's own round comes first.
    assert_eq!(
        sleep_before(
            now,
            Some(now + 3_000),
            Duration::from_millis(1_500),
            Duration::ZERO,
            every
        ),
        None
    );
    assert_eq!(
        sleep_before(
            now,
            Some(now + 60_000),
            Duration::ZERO,
            Duration::ZERO,
            every
        ),
        None
    );
    // A round that took long (a large fleet) spaces the next one as far.
    let slow = Duration::from_millis(1_800);
    assert_eq!(
        sleep_before(
            now,
            Some(now + 10),
            Duration::ZERO,
            slow,
            Duration::from_secs(60)
        ),
        Some(slow)
    );
    assert_eq!(
        sleep_before(
            now,
            Some(now + 2_500),
            Duration::ZERO,
            slow,
            Duration::from_secs(60)
        ),
        Some(Duration::from_millis(2_500))
    );
    // And gives way to the interval's round when that comes first.
    assert_eq!(
        sleep_before(
            now,
            Some(now + 10),
            Duration::from_millis(2_500),
            slow,
            every
        ),
        None
    );
}

/// (event, alert subject, time) of what a simulation told, in order.
fn told(sim: &Sim) -> Vec<(Event, String, i64)> {
    sim.sent
        .iter()
        .map(|s| (s.n.event, s.n.view.key.subject.to_string(), s.at))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Devices (two offices) fall silent at random moments for good,
    /// some behind a silence that ends at a random moment. Rounds every
    /// second tell what they tell; rounds only at the wake times (at most
    /// every 10 minutes, at least a second apart) tell the same, each at
    /// most a second later, in far fewer rounds.
    #[test]
    fn rounds_at_the_wake_times_miss_nothing(
        cuts in prop::collection::vec((0usize..2, 0i64..7200, 0i64..300), 1..6),
        silence in prop::option::of((0usize..6, 0i64..9000)),
    ) {
        let from = sun(9, 0);
        let to = sun(12, 0);
        let devs: Vec<Dev> = cuts
            .iter()
            .enumerate()
            .map(|(i, (office, cut_s, phase_s))| {
                Dev::new(&format!("pc-{i}"), ["savar-uno", "keraniganj"][*office])
                    .phase(phase_s * SEC)
                    .outage(from + cut_s * SEC, to + 86_400_000)
            })
            .collect();
        let silences: Vec<Silence> = silence
            .filter(|(i, _)| *i < devs.len())
            .map(|(i, end_s)| Silence {
                id: 1,
                target: Target::Device(devs[i].name.clone()),
                start_ms: from - MIN,
                end_ms: from + end_s * SEC,
                reason: String::new(),
            })
            .into_iter()
            .collect();
        let mut truth = Sim::new(rules());
        truth.silences = silences.clone();
        let mut now = from;
        while now < to {
            let facts: Vec<DeviceFacts> = devs.iter().map(|d| d.facts(now)).collect();
            truth.tick(now, &facts);
            now += SEC;
        }
        let mut woken = Sim::new(rules());
        woken.silences = silences.clone();
        let every = 600 * SEC;
        let mut now = from;
        let mut rounds = 0;
        while now < to {
            let facts: Vec<DeviceFacts> = devs.iter().map(|d| d.facts(now)).collect();
            woken.tick(now, &facts);
            rounds += 1;
            let next = next_wake(&woken.ctx.rules, now, &facts, &woken.open, &woken.silences);
            let wait = sleep_before(
                now,
                next,
                Duration::ZERO,
                Duration::ZERO,
                Duration::from_millis(every as u64),
            )
                .map_or(every, |d| d.as_millis() as i64);
            now += wait;
        }
        let (t, w) = (told(&truth), told(&woken));
        prop_assert_eq!(t.len(), w.len(), "truth {:#?}\nwoken {:#?}", t, w);
        for (a, b) in t.iter().zip(&w) {
            prop_assert_eq!((&a.0, &a.1), (&b.0, &b.1));
            prop_assert!(b.2 >= a.2 - SEC && b.2 <= a.2 + SEC, "{:?} vs {:?}", a, b);
        }
        prop_assert!(rounds < 200, "{} rounds instead of 10800", rounds);
    }
}
