//! A gateway's links folded from its records: examples, and properties over
//! random record sequences (the state and chosen link are those of the last
//! records; `since` is when the link last crossed between online and not).

use super::*;
use crate::wire::LinkKind;
use proptest::prelude::*;

const MIN: i64 = 60_000;

fn facts(links: &[(&str, LinkKind, bool, u32)]) -> Body {
    Body::Facts {
        hostname: "gw".into(),
        os: "Debian".into(),
        agent_version: "0.1.0".into(),
        links: links
            .iter()
            .map(|(name, kind, metered, priority)| LinkFact {
                name: (*name).into(),
                kind: *kind,
                metered: *metered,
                priority: *priority,
            })
            .collect(),
    }
}

fn two_links() -> Body {
    facts(&[
        ("eth0", LinkKind::Broadband, false, 1),
        ("wwan0", LinkKind::Mobile, true, 10),
    ])
}

fn state(link: &str, from: LinkState, to: LinkState) -> Body {
    Body::LinkState {
        link: link.into(),
        kind: LinkKind::Broadband,
        from,
        to,
        reason: None,
    }
}

fn failover(from: Option<&str>, to: Option<&str>) -> Body {
    Body::Failover {
        from: from.map(Into::into),
        to: to.map(Into::into),
        cause: "failover".into(),
        reason: String::new(),
    }
}

fn start() -> Body {
    Body::Lifecycle {
        event: LifecycleEvent::Start,
        boot_time: None,
        detail: None,
    }
}

fn fold(recs: &[(i64, Body)]) -> Option<GatewayLinks> {
    gateway_links(recs.iter().map(|(at, b)| (*at, b)))
}

fn link<'a>(g: &'a GatewayLinks, name: &str) -> &'a LinkStatus {
    g.links.iter().find(|l| l.name == name).unwrap()
}

#[test]
fn without_facts_there_are_no_links() {
    assert_eq!(fold(&[]), None);
    assert_eq!(
        fold(&[
            (0, state("eth0", LinkState::Absent, LinkState::Up)),
            (1, failover(None, Some("eth0"))),
        ]),
        None
    );
    assert_eq!(fold(&[(0, facts(&[]))]), None);
}

#[test]
fn the_broadband_fails_and_the_mobile_carries_the_traffic() {
    let recs = vec![
        (0, start()),
        (1, two_links()),
        (2, state("eth0", LinkState::Absent, LinkState::Up)),
        (3, state("wwan0", LinkState::Absent, LinkState::Up)),
        (4, failover(None, Some("eth0"))),
        (10 * MIN, state("eth0", LinkState::Up, LinkState::Down)),
        (10 * MIN + 5, failover(Some("eth0"), Some("wwan0"))),
        // Unplugged meanwhile: off since it went down, still.
        (20 * MIN, state("eth0", LinkState::Down, LinkState::Absent)),
        // The mobile degrades: on since it came up, still.
        (25 * MIN, state("wwan0", LinkState::Up, LinkState::Degraded)),
    ];
    let g = fold(&recs).unwrap();
    assert_eq!(g.chosen.as_deref(), Some("wwan0"));
    assert_eq!(g.chosen_since_ms, 10 * MIN + 5);
    let eth = link(&g, "eth0");
    assert_eq!((eth.state, eth.since_ms), (LinkState::Absent, 10 * MIN));
    assert!(!eth.metered);
    let wwan = link(&g, "wwan0");
    assert_eq!((wwan.state, wwan.since_ms), (LinkState::Degraded, 3));
    assert!(wwan.metered);
    assert_eq!((wwan.kind, wwan.priority), (LinkKind::Mobile, 10));
}

#[test]
fn a_link_never_reported_is_absent_and_a_restart_begins_afresh() {
    let recs = vec![
        (0, two_links()),
        (1, state("eth0", LinkState::Absent, LinkState::Up)),
        (2, failover(None, Some("eth0"))),
        (5 * MIN, start()),
    ];
    let g = fold(&recs).unwrap();
    assert_eq!(g.chosen, None);
    assert_eq!(g.chosen_since_ms, 5 * MIN);
    for l in &g.links {
        assert_eq!((l.state, l.since_ms), (LinkState::Absent, 5 * MIN), "{l:?}");
    }
    // Facts alone: every link absent since them.
    let g = fold(&[(7, two_links())]).unwrap();
    assert!(
        g.links
            .iter()
            .all(|l| l.state == LinkState::Absent && l.since_ms == 7)
    );
    // The last facts name the links; the states go on across them.
    let recs = vec![
        (0, two_links()),
        (1, state("eth0", LinkState::Absent, LinkState::Up)),
        (2, facts(&[("eth0", LinkKind::Broadband, true, 3)])),
    ];
    let g = fold(&recs).unwrap();
    assert_eq!(g.links.len(), 1);
    assert_eq!(
        (g.links[0].state, g.links[0].since_ms, g.links[0].metered),
        (LinkState::Up, 1, true)
    );
}

#[test]
fn stored_records_are_read_and_odd_bodies_skipped() {
    let stored = |at: i64, body: &str| StoredRecord {
        seq: at,
        seq_end: at,
        at_ms: at,
        mono_ms: at,
        boot_id: "b".into(),
        kind: "x".into(),
        body: body.into(),
        received_ms: at,
    };
    let recs = vec![
        stored(1, &serde_json::to_string(&two_links()).unwrap()),
        stored(2, r#"{"type":"from_the_future","x":1}"#),
        stored(
            3,
            &serde_json::to_string(&failover(None, Some("wwan0"))).unwrap(),
        ),
    ];
    let g = from_stored(&recs).unwrap();
    assert_eq!((g.chosen.as_deref(), g.chosen_since_ms), (Some("wwan0"), 3));
}

const NAMES: [&str; 3] = ["eth0", "wlan0", "wwan0"];
const STATES: [LinkState; 4] = [
    LinkState::Up,
    LinkState::Degraded,
    LinkState::Down,
    LinkState::Absent,
];

/// A record: 0 facts, 1 link state, 2 failover, 3 start; with a link and
/// a state (or none chosen).
fn event() -> impl Strategy<Value = (u8, usize, usize, bool)> {
    (0u8..4, 0usize..3, 0usize..4, prop::bool::weighted(0.8))
        .prop_map(|(k, l, s, some)| (k.min(if some { 3 } else { 2 }), l, s, some))
}

fn body(e: (u8, usize, usize, bool)) -> Body {
    let (k, l, s, some) = e;
    match k {
        0 => facts(&[
            ("eth0", LinkKind::Broadband, false, 1),
            ("wlan0", LinkKind::Wifi, false, 2),
            ("wwan0", LinkKind::Mobile, true, 3),
        ]),
        1 => state(NAMES[l], LinkState::Absent, STATES[s]),
        2 => failover(None, some.then_some(NAMES[l])),
        _ => start(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn the_fold_agrees_with_the_last_records(
        events in prop::collection::vec((event(), 1i64..600_000), 0..40),
    ) {
        let mut t = 0;
        let recs: Vec<(i64, Body)> = events
            .iter()
            .map(|(e, dt)| {
                t += dt;
                (t, body(*e))
            })
            .collect();
        let got = fold(&recs);
        let Some(facts_at) = recs
            .iter()
            .rev()
            .find(|(_, b)| matches!(b, Body::Facts { .. }))
            .map(|(at, _)| *at)
        else {
            prop_assert_eq!(got, None);
            return Ok(());
        };
        let g = got.unwrap();
        prop_assert_eq!(g.links.len(), 3);
        // What follows the last start counts.
        let from = recs
            .iter()
            .rposition(|(_, b)| matches!(b, Body::Lifecycle { .. }))
            .map_or(0, |i| i);
        let after = &recs[from..];
        let start_at = recs.get(from).filter(|(_, b)| matches!(b, Body::Lifecycle { .. })).map(|(at, _)| *at);
        let fresh = facts_at.max(start_at.unwrap_or(i64::MIN));
        // The chosen link: the last failover's.
        match after.iter().rev().find(|(_, b)| matches!(b, Body::Failover { .. })) {
            Some((at, Body::Failover { to, .. })) => {
                prop_assert_eq!(&g.chosen, to);
                prop_assert_eq!(g.chosen_since_ms, if to.is_some() { *at } else { fresh });
            }
            _ => {
                prop_assert_eq!(&g.chosen, &None);
                prop_assert_eq!(g.chosen_since_ms, fresh);
            }
        }
        for l in &g.links {
            let mine: Vec<(i64, LinkState)> = after
                .iter()
                .filter_map(|(at, b)| match b {
                    Body::LinkState { link, to, .. } if *link == l.name => Some((*at, *to)),
                    _ => None,
                })
                .collect();
            match mine.last() {
                None => prop_assert_eq!((l.state, l.since_ms), (LinkState::Absent, fresh)),
                Some((_, last)) => {
                    prop_assert_eq!(l.state, *last);
                    // Every report from `since` on is on the same side of
                    // online, and the one before it (if any) on the other.
                    let i = mine.iter().position(|(at, _)| *at == l.since_ms);
                    prop_assert!(i.is_some(), "since {} is a report of {}", l.since_ms, l.name);
                    let i = i.unwrap();
                    prop_assert!(mine[i..].iter().all(|(_, s)| s.is_online() == last.is_online()));
                    if i > 0 {
                        prop_assert_ne!(mine[i - 1].1.is_online(), last.is_online());
                    }
                }
            }
        }
    }
}

#[test]
fn link_minutes_and_heartbeats_change_nothing() {
    let base = vec![
        (0, two_links()),
        (1, state("eth0", LinkState::Absent, LinkState::Up)),
        (2, failover(None, Some("eth0"))),
    ];
    let mut more = base.clone();
    more.push((
        3 * MIN,
        Body::Heartbeat {
            online: false,
            count: 1,
        },
    ));
    more.push((
        4 * MIN,
        Body::LinkMinutes {
            link: "eth0".into(),
            kind: LinkKind::Broadband,
            minutes: 1,
            sent: 10,
            lost: 10,
            rtt_p50_ms: None,
            rtt_p95_ms: None,
            rtt_max_ms: None,
            bytes: 640,
        },
    ));
    assert_eq!(fold(&base), fold(&more));
}
