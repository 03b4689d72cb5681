//! Last seen, with a simulated clock: silence, buckets, rendering.

use super::*;
use crate::collector::store::LastSeen;

const NOW: i64 = 1_780_000_000_000;
const MIN: i64 = 60_000;
const SILENCE: Silence = Silence {
    interval_ms: 5 * MIN,
    grace_ms: 2 * MIN,
};

fn dev(name: &str, upload: Option<i64>, due: Option<i64>) -> Device {
    Device {
        id: 1,
        name: name.into(),
        office: Some("dhk-savar-uno".into()),
        revoked: false,
        acked: 7,
        created_at_ms: NOW - 86_400_000,
        seen: LastSeen {
            last_upload_ms: upload,
            last_record_ms: upload.map(|u| u - 1_000),
            next_upload_due_ms: due,
        },
    }
}

#[test]
fn silent_past_the_announced_deadline_plus_grace_only() {
    // Announced deadline 10 min after its upload 11 min ago: not silent
    // until 12 min (deadline + 2 min grace) have passed.
    let d = dev("a", Some(NOW - 11 * MIN), Some(NOW - MIN));
    assert!(!d.seen.silent(NOW, SILENCE.interval_ms, SILENCE.grace_ms));
    assert!(
        !d.seen
            .silent(NOW + MIN, SILENCE.interval_ms, SILENCE.grace_ms)
    );
    assert!(
        d.seen
            .silent(NOW + MIN + 1, SILENCE.interval_ms, SILENCE.grace_ms)
    );
    // No deadline announced: last upload + interval (5 min) + grace.
    let old = dev("b", Some(NOW - 7 * MIN), None);
    assert_eq!(old.seen.due_ms(SILENCE.interval_ms), Some(NOW - 2 * MIN));
    assert!(!old.seen.silent(NOW, SILENCE.interval_ms, SILENCE.grace_ms));
    assert!(
        old.seen
            .silent(NOW + 1, SILENCE.interval_ms, SILENCE.grace_ms)
    );
    // Never heard from: never silent (nothing to expect yet).
    let never = dev("c", None, None);
    assert_eq!(never.seen.due_ms(SILENCE.interval_ms), None);
    assert!(
        !never
            .seen
            .silent(i64::MAX, SILENCE.interval_ms, SILENCE.grace_ms)
    );
}

#[test]
fn summary_counts_silent_never_and_age_buckets() {
    let mut revoked = dev("gone", Some(NOW - 30 * 86_400_000), None);
    revoked.revoked = true;
    let list = [
        dev("fresh", Some(NOW - 30_000), Some(NOW + 5 * MIN)),
        dev("five", Some(NOW - 5 * MIN), Some(NOW + 10_000)),
        dev("late", Some(NOW - 20 * MIN), Some(NOW - 15 * MIN)),
        dev("day", Some(NOW - 2 * 86_400_000), None),
        dev("never", None, None),
        revoked,
    ];
    let s = summarize(&list, NOW, SILENCE);
    assert_eq!(s.devices, 5, "revoked devices are left out");
    assert_eq!(s.never, 1);
    assert_eq!(s.silent, 2, "late and day");
    // 60 s, 5 min, 15 min, 1 h, 6 h, 1 day
    assert_eq!(s.age_le, [1, 2, 2, 3, 3, 3]);
    let gauges = {
        let mut r = Registry::default();
        let g = SeenGauges::register(&mut r);
        g.set(&s);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &r).unwrap();
        text
    };
    for line in [
        "devices_silent 2",
        "devices_never_uploaded 1",
        "devices 5",
        "devices_last_upload_age{le=\"300\"} 2",
        "devices_last_upload_age{le=\"+Inf\"} 4",
    ] {
        assert!(gauges.contains(line), "{line} in {gauges}");
    }
}

#[test]
fn list_shows_last_seen_plain_and_json() {
    let list = [
        dev("gw1", Some(NOW - 90_000), Some(NOW + 4 * MIN)),
        dev("laptop-7", Some(NOW - 3 * 3_600_000), None),
        dev("new", None, None),
    ];
    let plain = render_list(&list, NOW, SILENCE, false, &ts);
    let lines: Vec<&str> = plain.lines().collect();
    assert!(lines[0].contains("LAST UPLOAD") && lines[0].contains("LAST RECORD"));
    assert!(
        lines[1].contains("1m ago") && lines[1].ends_with("ok"),
        "{plain}"
    );
    assert!(
        lines[2].contains("3h 0m ago") && lines[2].ends_with("SILENT"),
        "{plain}"
    );
    assert!(
        lines[3].contains("never") && lines[3].ends_with("never uploaded"),
        "{plain}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&render_list(&list, NOW, SILENCE, true, &ts)).unwrap();
    assert_eq!(json[0]["name"], "gw1");
    assert_eq!(json[0]["last_upload"], ts(NOW - 90_000));
    assert_eq!(json[0]["last_record"], ts(NOW - 91_000));
    assert_eq!(json[0]["next_upload_due"], ts(NOW + 4 * MIN));
    assert_eq!(json[0]["silent"], false);
    assert_eq!(json[1]["silent"], true);
    assert_eq!(
        json[1]["next_upload_due"],
        ts(NOW - 3 * 3_600_000 + 5 * MIN),
        "no deadline announced: last upload + interval"
    );
    assert!(json[2]["last_upload"].is_null());
}

#[test]
fn ago_reads_naturally() {
    assert_eq!(ago(NOW, None), "never");
    assert_eq!(ago(NOW, Some(NOW - 12_000)), "12s ago");
    assert_eq!(ago(NOW, Some(NOW - 5 * MIN)), "5m ago");
    assert_eq!(ago(NOW, Some(NOW - 200 * MIN)), "3h 20m ago");
    assert_eq!(ago(NOW, Some(NOW - 98 * 3_600_000)), "4d 2h ago");
    assert_eq!(ago(NOW, Some(NOW + 30_000)), "in 30s");
}
