//! The fleet-now state of a device from its last records and the clock, and
//! the counts by branch.

use super::*;
use crate::collector::model::LastSeen;
use crate::wire::v1::{Body, LifecycleEvent};
use crate::wire::{LinkKind, LinkState};

const MIN: i64 = 60_000;
const T0: i64 = 1_795_924_800_000;
const SILENCE: Silence = Silence {
    interval_ms: 5 * MIN,
    grace_ms: 5 * MIN,
};

fn rec(seq: i64, at: i64, body: Body) -> StoredRecord {
    StoredRecord {
        seq,
        seq_end: seq,
        at_ms: at,
        mono_ms: at - T0 + 3_600_000,
        boot_id: "boot-a".into(),
        kind: body.kind().into(),
        body: serde_json::to_string(&body).unwrap(),
        received_ms: at,
    }
}

fn start(seq: i64, at: i64) -> StoredRecord {
    rec(
        seq,
        at,
        Body::Lifecycle {
            event: LifecycleEvent::Start,
            boot_time: None,
            detail: None,
        },
    )
}

fn link(seq: i64, at: i64, from: LinkState, to: LinkState) -> StoredRecord {
    rec(
        seq,
        at,
        Body::LinkState {
            link: "eth0".into(),
            kind: LinkKind::Broadband,
            from,
            to,
            reason: None,
        },
    )
}

fn device(office: Option<&str>, last_upload: Option<i64>) -> Device {
    Device {
        id: 1,
        name: "d".into(),
        office: office.map(String::from),
        revoked: false,
        acked: 0,
        created_at_ms: T0,
        seen: LastSeen {
            last_upload_ms: last_upload,
            last_record_ms: last_upload,
            next_upload_due_ms: None,
        },
    }
}

#[test]
fn each_state_from_the_last_records_and_the_clock() {
    use LinkState::{Absent, Down, Up};
    let now = T0 + 60 * MIN;
    let fresh = device(None, Some(now - MIN));
    assert_eq!(
        state_now(&device(None, None), &[], now, SILENCE),
        NowState::NoData
    );
    let up = [start(1, T0), link(2, T0 + MIN, Absent, Up)];
    assert_eq!(state_now(&fresh, &up, now, SILENCE), NowState::Online);
    let down = [
        start(1, T0),
        link(2, T0 + MIN, Absent, Up),
        link(3, T0 + 30 * MIN, Up, Down),
    ];
    assert_eq!(state_now(&fresh, &down, now, SILENCE), NowState::Offline);
    // Past the deadline and the grace: silent, whatever it last said...
    let quiet = device(None, Some(now - 11 * MIN));
    assert_eq!(state_now(&quiet, &up, now, SILENCE), NowState::Silent);
    // ...unless it said it stopped cleanly.
    let mut stopped = up.to_vec();
    stopped.push(rec(
        3,
        T0 + 40 * MIN,
        Body::Lifecycle {
            event: LifecycleEvent::Stop,
            boot_time: None,
            detail: Some("shutdown".into()),
        },
    ));
    assert_eq!(
        state_now(&quiet, &stopped, now, SILENCE),
        NowState::NotRunning
    );
    assert_eq!(
        state_now(&fresh, &stopped, now, SILENCE),
        NowState::NotRunning
    );
    // Uploading, but no state-setting record at all.
    assert_eq!(state_now(&fresh, &[], now, SILENCE), NowState::NoData);
}

fn office(code: &str, div: &str, dist: &str, upa: &str) -> Office {
    Office {
        code: code.into(),
        name: format!("UNO {upa}"),
        division: div.into(),
        district: dist.into(),
        upazila: upa.into(),
        hours: None,
    }
}

#[test]
fn counts_group_by_the_level_under_the_parent() {
    let offices: BTreeMap<String, Office> = [
        office("dhk-savar", "Dhaka", "Dhaka", "Savar"),
        office("dhk-gazipur", "Dhaka", "Gazipur", "Sadar"),
        office("ctg-sadar", "Chattogram", "Chattogram", "Sadar"),
    ]
    .into_iter()
    .map(|o| (o.code.clone(), o))
    .collect();
    let ds = [
        device(Some("dhk-savar"), None),
        device(Some("dhk-savar"), None),
        device(Some("dhk-gazipur"), None),
        device(Some("ctg-sadar"), None),
        device(None, None),
        device(Some("gone"), None),
    ];
    let states = [
        NowState::Online,
        NowState::Offline,
        NowState::Silent,
        NowState::Online,
        NowState::NotRunning,
        NowState::NoData,
    ];
    let pairs: Vec<(&Device, NowState)> = ds.iter().zip(states).collect();
    let (all, rows) = group(&pairs, &offices, None, Level::Division);
    assert_eq!(all.total(), 6);
    assert_eq!(all.get(NowState::Online), 2);
    let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["Chattogram", "Dhaka", ""]);
    assert_eq!(rows[1].counts.get(NowState::Offline), 1);
    assert_eq!(rows[1].counts.total(), 3);
    assert_eq!(rows[2].key, None);
    assert_eq!(rows[2].counts.total(), 2);
    let dhaka = Branch {
        level: Level::Division,
        name: "Dhaka".into(),
    };
    let (all, rows) = group(&pairs, &offices, Some(&dhaka), Level::District);
    assert_eq!(all.total(), 3);
    let keys: Vec<_> = rows.iter().map(|r| r.key.clone().unwrap()).collect();
    assert_eq!(keys, ["Dhaka / Dhaka", "Dhaka / Gazipur"]);
    assert_eq!(child_level(Some(&dhaka)), Some(Level::District));
    assert_eq!(child_level(None), Some(Level::Division));
}

#[test]
fn saids_round_trip_through_their_codes() {
    let mut seen = std::collections::HashSet::new();
    for state in NowState::ALL {
        for stopped in [false, true] {
            let s = Said { stopped, state };
            assert!(seen.insert(s.code()), "{s:?}: a code of its own");
            assert_eq!(Said::from_code(s.code()), Some(s));
        }
    }
    for bad in [-1, -2, 10, 11, i64::MAX, i64::MIN] {
        assert_eq!(Said::from_code(bad), None, "{bad}");
    }
}
