//! Tests of the uptime engine: the hand-computed office-hours day from the
//! issue (and the same day 24/7), late backlogs, clean stops, crashes, sleep,
//! clock steps, missing records and data that begins mid-run; then property
//! tests over random record streams (the states cover the window, the result
//! does not depend on arrival order or duplicates, and a late backlog changes
//! nothing before the time it covers).

use super::sessions::{coverage, is_event};
use super::*;
use crate::shared::schedule::{Schedule, parse_schedule};
use crate::wire::v1::{LifecycleEvent, LinkFact};
use proptest::prelude::*;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

/// Unix ms of a local time in Asia/Dhaka on day `d` of November 2026
/// (29 = Sunday; 30 = Monday, 28 = Saturday).
fn dhaka(d: i8, h: i8, m: i8) -> i64 {
    let tz = jiff::tz::TimeZone::get("Asia/Dhaka").unwrap();
    tz.to_timestamp(jiff::civil::date(2026, 11, d).at(h, m, 0, 0))
        .unwrap()
        .as_millisecond()
}

/// Builds one device's record stream: true time in, wall and monotonic
/// stamps out (with an optional wall-clock offset, for clock steps).
struct Dev {
    seq: u64,
    boot: String,
    /// True time at monotonic 0 of the current boot.
    boot_t0: i64,
    /// Wall clock minus true time.
    offset: i64,
    recs: Vec<Rec>,
}

impl Dev {
    fn new() -> Self {
        Dev {
            seq: 0,
            boot: String::new(),
            boot_t0: 0,
            offset: 0,
            recs: Vec::new(),
        }
    }
    /// A new boot whose kernel started 20 s before `t`.
    fn boot(&mut self, id: &str, t: i64) -> &mut Self {
        self.boot = id.into();
        self.boot_t0 = t - 20_000;
        self.offset = 0;
        self
    }
    fn rec_span(&mut self, t: i64, span: u64, body: Body) -> &mut Self {
        self.seq += 1;
        let seq = self.seq;
        self.seq += span - 1;
        self.recs.push(Rec {
            seq,
            seq_end: self.seq,
            at_ms: t + self.offset,
            mono_ms: (t - self.boot_t0) as u64,
            boot_id: self.boot.clone(),
            body,
        });
        self
    }
    fn rec(&mut self, t: i64, body: Body) -> &mut Self {
        self.rec_span(t, 1, body)
    }
    fn life(&mut self, t: i64, event: LifecycleEvent) -> &mut Self {
        self.rec(
            t,
            Body::Lifecycle {
                event,
                boot_time: None,
                detail: None,
            },
        )
    }
    fn start(&mut self, t: i64) -> &mut Self {
        self.life(t, LifecycleEvent::Start)
    }
    fn stop(&mut self, t: i64) -> &mut Self {
        self.life(t, LifecycleEvent::Stop)
    }
    fn facts(&mut self, t: i64) -> &mut Self {
        let links = [("eth0", LinkKind::Broadband), ("wlan0", LinkKind::Wifi)]
            .into_iter()
            .map(|(n, k)| LinkFact {
                name: n.into(),
                kind: k,
                metered: false,
                priority: 1,
            })
            .collect();
        self.rec(
            t,
            Body::Facts {
                hostname: "uno-office".into(),
                os: "Debian".into(),
                agent_version: "0.1.0".into(),
                links,
            },
        )
    }
    fn link(&mut self, t: i64, name: &str, from: LinkState, to: LinkState, why: &str) -> &mut Self {
        let kind = if name.starts_with("eth") {
            LinkKind::Broadband
        } else if name.starts_with("wlan") {
            LinkKind::Wifi
        } else {
            LinkKind::Mobile
        };
        self.rec(
            t,
            Body::LinkState {
                link: name.into(),
                kind,
                from,
                to,
                reason: (!why.is_empty()).then(|| why.to_string()),
            },
        )
    }
    fn hb(&mut self, t: i64, online: bool) -> &mut Self {
        self.rec(t, Body::Heartbeat { online, count: 1 })
    }
    /// Heartbeats every minute in `(from, to]`.
    fn hbs(&mut self, from: i64, to: i64, online: bool) -> &mut Self {
        let mut t = from + MIN;
        while t <= to {
            self.hb(t, online);
            t += MIN;
        }
        self
    }
    fn failover(&mut self, t: i64, from: &str, to: &str) -> &mut Self {
        self.rec(
            t,
            Body::Failover {
                from: Some(from.into()),
                to: Some(to.into()),
                cause: "current-degraded".into(),
                reason: String::new(),
            },
        )
    }
    fn minutes(&mut self, t: i64, sent: u32, lost: u32, p50: f64) -> &mut Self {
        self.rec(
            t,
            Body::LinkMinutes {
                link: "eth0".into(),
                kind: LinkKind::Broadband,
                minutes: 1,
                sent,
                lost,
                rtt_p50_ms: Some(p50),
                rtt_p95_ms: None,
                rtt_max_ms: None,
                bytes: 1000,
            },
        )
    }
}

use LinkState::{Degraded, Down, Up};

/// The issue's day: Sunday 2026-11-29, running since Saturday 23:00, all
/// links down 10:00-10:30, eth0 degraded 11:00-12:00 (failover to wlan0),
/// powered off 13:00-14:00 (heartbeats stop at 13:00, new boot at 14:00),
/// running until Monday 01:00.
fn issue_day() -> Dev {
    let mut d = Dev::new();
    let sat23 = dhaka(28, 23, 0);
    d.boot("b1", sat23).start(sat23).facts(sat23);
    d.link(sat23, "eth0", Down, Up, "")
        .link(sat23, "wlan0", Down, Up, "");
    d.hbs(sat23, dhaka(29, 8, 0), true);
    d.minutes(dhaka(29, 8, 0), 10, 10, 900.0); // outside office hours
    d.hbs(dhaka(29, 8, 0), dhaka(29, 9, 30), true);
    d.minutes(dhaka(29, 9, 30), 10, 0, 20.0);
    d.hbs(dhaka(29, 9, 30), dhaka(29, 9, 31), true);
    d.minutes(dhaka(29, 9, 31), 10, 5, 40.0);
    d.hbs(dhaka(29, 9, 31), dhaka(29, 10, 0), true);
    d.link(dhaka(29, 10, 0), "eth0", Up, Down, "carrier");
    d.link(dhaka(29, 10, 0), "wlan0", Up, Down, "probes");
    d.hbs(dhaka(29, 10, 0), dhaka(29, 10, 29), false);
    d.link(dhaka(29, 10, 30), "eth0", Down, Up, "");
    d.link(dhaka(29, 10, 30), "wlan0", Down, Up, "");
    d.hbs(dhaka(29, 10, 29), dhaka(29, 11, 0), true);
    d.link(dhaka(29, 11, 0), "eth0", Up, Degraded, "loss");
    d.failover(dhaka(29, 11, 0), "eth0", "wlan0");
    d.hbs(dhaka(29, 11, 0), dhaka(29, 12, 0), true);
    d.link(dhaka(29, 12, 0), "eth0", Degraded, Up, "");
    d.failover(dhaka(29, 12, 0), "wlan0", "eth0");
    d.hbs(dhaka(29, 12, 0), dhaka(29, 13, 0), true);
    // Power cut just after the 13:00 heartbeat; back at 14:00 with a new boot.
    let t14 = dhaka(29, 14, 0);
    d.boot("b2", t14).start(t14).facts(t14);
    d.link(t14, "eth0", Down, Up, "")
        .link(t14, "wlan0", Down, Up, "");
    d.hbs(t14, dhaka(30, 1, 0), true);
    d
}

fn iv(start: i64, end: i64, state: DeviceState, cause: Option<&str>) -> Interval<DeviceState> {
    Interval {
        start,
        end,
        state,
        cause: cause.map(str::to_string),
    }
}

/// The structural promises of a timeline.
fn check_timeline(tl: &Timeline, from: i64, to: i64) {
    if from >= to {
        assert!(tl.device.is_empty());
        return;
    }
    assert_eq!(tl.device.first().map(|i| i.start), Some(from), "{tl:#?}");
    assert_eq!(tl.device.last().map(|i| i.end), Some(to), "{tl:#?}");
    for w in tl.device.windows(2) {
        assert_eq!(w[0].end, w[1].start, "contiguous: {tl:#?}");
        assert!(
            (w[0].state, &w[0].cause) != (w[1].state, &w[1].cause),
            "merged: {tl:#?}"
        );
    }
    assert!(tl.device.iter().all(|i| i.start < i.end), "{tl:#?}");
    for (name, (_, v)) in &tl.links {
        assert!(!v.is_empty(), "{name}");
        assert!(
            v.iter()
                .all(|i| i.start < i.end && i.start >= from && i.end <= to),
            "{name}: {v:?}"
        );
        assert!(
            v.windows(2).all(|w| w[0].end <= w[1].start),
            "{name}: {v:?}"
        );
    }
}

fn p() -> Params {
    Params::default()
}

#[test]
fn the_issue_day_in_office_hours() {
    let d = issue_day();
    let (from, to) = (dhaka(29, 0, 0), dhaka(30, 0, 0));
    let tl = timeline(&d.recs, from, to, dhaka(30, 2, 0), &p());
    check_timeline(&tl, from, to);
    let mask = parse_schedule("office").unwrap().mask(from, to);
    assert_eq!(mask, vec![(dhaka(29, 9, 0), dhaka(29, 17, 0))]);
    let f = figures(&tl, &d.recs, &mask);
    assert_eq!(f.online_ms, 6 * HOUR + 30 * MIN);
    assert_eq!(f.offline_ms, 30 * MIN);
    assert_eq!(f.not_running_ms, HOUR);
    assert_eq!(f.no_data_ms, 0);
    let u = f.uptime.unwrap();
    assert!((u - 390.0 / 420.0).abs() < 1e-12, "{u}");
    assert_eq!(format!("{:.3}", u * 100.0), "92.857");
    assert_eq!(compliant(&f, 90.0), Some(true));
    assert_eq!(compliant(&f, 95.0), Some(false));
    // 09-10, 10:30-11, 12-13 on eth0; 11-12 on wlan0 (the failover's choice);
    // 14-17 on eth0 (best: broadband before Wi-Fi).
    assert_eq!(
        f.per_kind_ms,
        BTreeMap::from([
            (LinkKind::Broadband, 5 * HOUR + 30 * MIN),
            (LinkKind::Wifi, HOUR)
        ])
    );
    assert_eq!(
        f.outages,
        vec![
            Outage {
                start: dhaka(29, 10, 0),
                end: dhaka(29, 10, 30),
                cause: OutageCause::AllLinksDown
            },
            Outage {
                start: dhaka(29, 13, 0),
                end: dhaka(29, 14, 0),
                cause: OutageCause::DeviceOff
            },
        ]
    );
    assert_eq!(f.outage_count, 2);
    assert_eq!(f.mttr_ms, Some(45 * MIN));
    assert_eq!(f.longest_outage_ms, Some(HOUR));
    assert_eq!(f.failovers, 2);
    // 09:29-09:31: 20 sent, 5 lost; medians 20 ms (10 answered) and 40 ms (5).
    assert_eq!(f.loss_pct, Some(25.0));
    assert_eq!(f.rtt_p50_ms, Some(20.0));
    let json = serde_json::to_value(&f).unwrap();
    assert_eq!(json["per_kind_ms"]["broadband"], 5 * HOUR + 30 * MIN);
    assert_eq!(json["outages"][1]["cause"], "device_off");
}

#[test]
fn the_issue_day_around_the_clock() {
    let d = issue_day();
    let (from, to) = (dhaka(29, 0, 0), dhaka(30, 0, 0));
    let tl = timeline(&d.recs, from, to, dhaka(30, 2, 0), &p());
    use DeviceState::*;
    assert_eq!(
        tl.device,
        vec![
            iv(from, dhaka(29, 10, 0), Online, None),
            iv(
                dhaka(29, 10, 0),
                dhaka(29, 10, 30),
                Offline,
                Some(cause::ALL_LINKS_DOWN)
            ),
            iv(dhaka(29, 10, 30), dhaka(29, 13, 0), Online, None),
            iv(
                dhaka(29, 13, 0),
                dhaka(29, 14, 0),
                NotRunning,
                Some(cause::DEVICE_OFF)
            ),
            iv(dhaka(29, 14, 0), to, Online, None),
        ]
    );
    let eth0 = &tl.links["eth0"];
    assert_eq!(eth0.0, LinkKind::Broadband);
    let states: Vec<(i64, i64, LinkState, Option<&str>)> = eth0
        .1
        .iter()
        .map(|i| (i.start, i.end, i.state, i.cause.as_deref()))
        .collect();
    assert_eq!(
        states,
        vec![
            (from, dhaka(29, 10, 0), Up, None),
            (dhaka(29, 10, 0), dhaka(29, 10, 30), Down, Some("carrier")),
            (dhaka(29, 10, 30), dhaka(29, 11, 0), Up, None),
            (dhaka(29, 11, 0), dhaka(29, 12, 0), Degraded, Some("loss")),
            (dhaka(29, 12, 0), dhaka(29, 13, 0), Up, None),
            (dhaka(29, 14, 0), to, Up, None),
        ]
    );
    let mask = Schedule::Always.mask(from, to);
    let f = figures(&tl, &d.recs, &mask);
    assert_eq!(f.online_ms, 22 * HOUR + 30 * MIN);
    assert_eq!(f.offline_ms, 30 * MIN);
    assert_eq!(f.not_running_ms, HOUR);
    assert_eq!(f.no_data_ms, 0);
    assert!((f.uptime.unwrap() - 22.5 / 23.0).abs() < 1e-12);
    assert_eq!(f.outage_count, 2);
    // All three link_minutes count now: 30 sent, 15 lost.
    assert_eq!(f.loss_pct, Some(50.0));
}

#[test]
fn while_the_device_is_off_the_gap_is_no_data_until_the_backlog_tells() {
    let d = issue_day();
    let (from, to) = (dhaka(29, 0, 0), dhaka(30, 0, 0));
    use DeviceState::*;
    // At 13:30 the collector has everything up to 13:00 and nothing since.
    let now = dhaka(29, 13, 30);
    let before: Vec<Rec> = d.recs.iter().filter(|r| r.at_ms <= now).cloned().collect();
    let tl = timeline(&before, from, to, now, &p());
    let t13 = dhaka(29, 13, 0);
    let presumed = t13 + p().heartbeat_ms + p().grace_ms;
    assert_eq!(
        tl.device[tl.device.len() - 3..],
        [
            iv(dhaka(29, 10, 30), presumed, Online, None),
            iv(presumed, now, NoData, Some(cause::NOT_YET)),
            iv(now, to, NoData, Some(cause::FUTURE)),
        ]
    );
    let f = figures(&tl, &before, &Schedule::Always.mask(from, to));
    assert_eq!(f.not_running_ms, 0);
    assert_eq!(f.no_data_ms, to - presumed);
    // At 14:30 the new boot's start has arrived: the gap was a power cut.
    let now = dhaka(29, 14, 30);
    let later: Vec<Rec> = d.recs.iter().filter(|r| r.at_ms <= now).cloned().collect();
    let tl2 = timeline(&later, from, to, now, &p());
    assert_eq!(
        tl2.device[tl2.device.len() - 3..],
        [
            iv(t13, dhaka(29, 14, 0), NotRunning, Some(cause::DEVICE_OFF)),
            iv(dhaka(29, 14, 0), now, Online, None),
            iv(now, to, NoData, Some(cause::FUTURE)),
        ]
    );
    // Nothing before 13:00 changed.
    assert_eq!(cut_before(&tl, t13), cut_before(&tl2, t13));
    assert_eq!(cut_before(&tl, t13).device.len(), 3);
}

#[test]
fn a_window_without_data_says_no_uptime() {
    let (from, to) = (dhaka(29, 0, 0), dhaka(30, 0, 0));
    let tl = timeline(&[], from, to, dhaka(29, 12, 0), &p());
    check_timeline(&tl, from, to);
    assert_eq!(
        tl.device,
        vec![
            iv(
                from,
                dhaka(29, 12, 0),
                DeviceState::NoData,
                Some(cause::NO_RECORDS)
            ),
            iv(
                dhaka(29, 12, 0),
                to,
                DeviceState::NoData,
                Some(cause::FUTURE)
            ),
        ]
    );
    let f = figures(&tl, &[], &parse_schedule("office").unwrap().mask(from, to));
    assert_eq!(f.uptime, None);
    assert_eq!(compliant(&f, 99.0), None);
    assert_eq!(f.no_data_ms, 8 * HOUR);
    assert_eq!(
        (f.mttr_ms, f.longest_outage_ms, f.outage_count),
        (None, None, 0)
    );
    assert_eq!((f.rtt_p50_ms, f.loss_pct), (None, None));
    // Records, but only outside the window: still no uptime.
    let d = issue_day();
    let (from, to) = (dhaka(27, 0, 0), dhaka(28, 0, 0));
    let tl = timeline(&d.recs, from, to, dhaka(30, 2, 0), &p());
    let f = figures(&tl, &d.recs, &[(from, to)]);
    assert_eq!((f.uptime, f.no_data_ms), (None, to - from));
    // An empty window.
    assert!(timeline(&d.recs, to, to, to, &p()).device.is_empty());
}

#[test]
fn a_clean_stop_is_not_running_and_not_an_outage() {
    let mut d = Dev::new();
    let t = dhaka(29, 8, 0);
    d.boot("b1", t).start(t).link(t, "eth0", Down, Up, "");
    d.hbs(t, dhaka(29, 12, 0), true)
        .stop(dhaka(29, 12, 0) + 5_000);
    let back = dhaka(29, 13, 0);
    d.boot("b2", back)
        .start(back)
        .link(back + 3_000, "eth0", Down, Up, "");
    d.hbs(back, dhaka(29, 18, 0), true).stop(dhaka(29, 18, 0));
    let (from, to) = (dhaka(29, 0, 0), dhaka(30, 0, 0));
    let now = dhaka(29, 20, 0);
    let tl = timeline(&d.recs, from, to, now, &p());
    check_timeline(&tl, from, to);
    use DeviceState::*;
    assert_eq!(
        tl.device,
        vec![
            iv(from, t, NoData, Some(cause::NO_RECORDS)),
            iv(t, dhaka(29, 12, 0) + 5_000, Online, None),
            iv(
                dhaka(29, 12, 0) + 5_000,
                back,
                NotRunning,
                Some(cause::STOPPED)
            ),
            // Links start down: the 3 s before eth0 is up again are offline.
            iv(back, back + 3_000, Offline, Some(cause::ALL_LINKS_DOWN)),
            iv(back + 3_000, dhaka(29, 18, 0), Online, None),
            iv(dhaka(29, 18, 0), now, NotRunning, Some(cause::STOPPED)),
            iv(now, to, NoData, Some(cause::FUTURE)),
        ]
    );
    let f = figures(
        &tl,
        &d.recs,
        &parse_schedule("office").unwrap().mask(from, to),
    );
    assert_eq!(f.not_running_ms, HOUR - 5_000);
    assert_eq!(f.offline_ms, 3_000);
    // Only the 3 s after the start are an outage, not the stop.
    assert_eq!(f.outages.len(), 1);
    assert_eq!(f.outages[0].cause, OutageCause::AllLinksDown);
}

#[test]
fn crash_then_quick_restart_and_boot_seconds_merge_into_one_outage() {
    let mut d = Dev::new();
    let t = dhaka(29, 9, 0);
    d.boot("b1", t).start(t).link(t, "eth0", Down, Up, "");
    d.hbs(t, dhaka(29, 10, 0), true);
    // The agent crashes right after the 10:00 heartbeat and systemd restarts it
    // 20 s later (same boot); eth0 is up 4 s after that.
    let r = dhaka(29, 10, 0) + 20_000;
    d.start(r).link(r + 4_000, "eth0", Down, Up, "");
    d.hbs(r, dhaka(29, 11, 0), true);
    let (from, to) = (dhaka(29, 9, 0), dhaka(29, 11, 0));
    let tl = timeline(&d.recs, from, to, to, &p());
    use DeviceState::*;
    assert_eq!(
        tl.device[1..3],
        [
            iv(dhaka(29, 10, 0), r, NotRunning, Some(cause::DEVICE_OFF)),
            iv(r, r + 4_000, Offline, Some(cause::ALL_LINKS_DOWN)),
        ]
    );
    let f = figures(&tl, &d.recs, &[(from, to)]);
    assert_eq!(
        f.outages,
        vec![Outage {
            start: dhaka(29, 10, 0),
            end: r + 4_000,
            cause: OutageCause::DeviceOff
        }]
    );
}

#[test]
fn silence_inside_a_run_is_sleep_and_folded_heartbeats_bridge_it() {
    let mut d = Dev::new();
    let t = dhaka(29, 9, 0);
    d.boot("b1", t).start(t).link(t, "eth0", Down, Up, "");
    d.hbs(t, dhaka(29, 10, 0), true);
    // Lid closed 10:00-11:00: the same process, the same boot, silence.
    d.hbs(dhaka(29, 11, 0), dhaka(29, 12, 0), true);
    // 12:00-12:30: ten heartbeats folded into one at 12:30 (covering 12:20-12:30),
    // twenty more at 12:20 folded too (12:00-12:20).
    d.rec_span(
        dhaka(29, 12, 20),
        20,
        Body::Heartbeat {
            online: true,
            count: 20,
        },
    );
    d.rec_span(
        dhaka(29, 12, 30),
        10,
        Body::Heartbeat {
            online: true,
            count: 10,
        },
    );
    let (from, to) = (dhaka(29, 9, 0), dhaka(29, 12, 30));
    let tl = timeline(&d.recs, from, to, to, &p());
    use DeviceState::*;
    assert_eq!(
        tl.device,
        vec![
            iv(from, dhaka(29, 10, 0), Online, None),
            iv(
                dhaka(29, 10, 0),
                dhaka(29, 11, 0),
                NotRunning,
                Some(cause::ASLEEP)
            ),
            iv(dhaka(29, 11, 0), to, Online, None),
        ]
    );
    let f = figures(&tl, &d.recs, &[(from, to)]);
    assert_eq!(f.outages[0].cause, OutageCause::DeviceOff);
}

#[test]
fn missing_sequence_numbers_make_a_gap_no_data() {
    let mut d = Dev::new();
    let t = dhaka(29, 9, 0);
    d.boot("b1", t).start(t).link(t, "eth0", Down, Up, "");
    d.hbs(t, dhaka(29, 10, 0), true);
    d.hbs(dhaka(29, 10, 0), dhaka(29, 11, 0), true);
    d.hbs(dhaka(29, 11, 0), dhaka(29, 12, 0), true);
    // The store lost the batch with 10:01..10:59 (a gap in the sequence).
    let lost = |r: &Rec| r.at_ms > dhaka(29, 10, 0) && r.at_ms < dhaka(29, 11, 0);
    let recs: Vec<Rec> = d.recs.iter().filter(|r| !lost(r)).cloned().collect();
    let (from, to) = (dhaka(29, 9, 0), dhaka(29, 12, 0));
    let tl = timeline(&recs, from, to, to, &p());
    use DeviceState::*;
    assert_eq!(
        tl.device,
        vec![
            iv(from, dhaka(29, 10, 0), Online, None),
            iv(
                dhaka(29, 10, 0),
                dhaka(29, 10, 59),
                NoData,
                Some(cause::MISSING)
            ),
            iv(dhaka(29, 10, 59), to, Online, None),
        ]
    );
    // Between two boots too.
    let mut d2 = Dev::new();
    d2.boot("b1", t).start(t).link(t, "eth0", Down, Up, "");
    d2.hbs(t, dhaka(29, 10, 0), true);
    d2.seq += 5;
    let b = dhaka(29, 11, 0);
    d2.boot("b2", b).start(b).link(b, "eth0", Down, Up, "");
    d2.hbs(b, dhaka(29, 12, 0), true);
    let tl = timeline(&d2.recs, from, to, to, &p());
    assert_eq!(
        tl.device[1],
        iv(dhaka(29, 10, 0), b, NoData, Some(cause::MISSING))
    );
}

#[test]
fn a_clock_step_is_undone_with_monotonic_time() {
    let mut d = Dev::new();
    let t = dhaka(29, 9, 0);
    d.boot("b1", t).start(t).link(t, "eth0", Down, Up, "");
    d.hbs(t, dhaka(29, 12, 0), true);
    // At 12:00:30 the wall clock jumps back an hour; a link change at 12:00:40
    // is stamped 11:00:40; the agent notices at the 12:01 heartbeat.
    d.offset = -HOUR;
    d.link(dhaka(29, 12, 0) + 40_000, "eth0", Up, Down, "carrier");
    d.link(dhaka(29, 12, 0) + 50_000, "eth0", Down, Up, "");
    d.life(dhaka(29, 12, 1), LifecycleEvent::ClockStep);
    d.hbs(dhaka(29, 12, 0), dhaka(29, 13, 0), true);
    // And forward a day later on: still placed by monotonic time.
    d.offset = 24 * HOUR;
    d.life(dhaka(29, 13, 1), LifecycleEvent::ClockStep);
    d.hbs(dhaka(29, 13, 0), dhaka(29, 14, 0), true);
    assert!(d.recs.iter().any(|r| r.at_ms < dhaka(29, 11, 1)));
    let (from, to) = (dhaka(29, 9, 0), dhaka(29, 14, 0));
    let tl = timeline(&d.recs, from, to, to, &p());
    check_timeline(&tl, from, to);
    use DeviceState::*;
    let down = dhaka(29, 12, 0) + 40_000;
    assert_eq!(
        tl.device,
        vec![
            iv(from, down, Online, None),
            iv(down, down + 10_000, Offline, Some(cause::ALL_LINKS_DOWN)),
            iv(down + 10_000, to, Online, None),
        ]
    );
}

#[test]
fn a_boot_with_a_dead_clock_battery_is_placed_by_the_corrected_clock() {
    let mut d = Dev::new();
    let t = dhaka(29, 9, 0);
    // The laptop boots at 09:00 believing it is 1 January 2000 (the clock
    // battery is dead); NTP corrects the clock at 09:20:30, the agent
    // notices at the 09:21 heartbeat. The link was down 09:10-09:12.
    d.boot("b1", t);
    d.offset = 946_684_800_000 - t;
    d.start(t).link(t, "eth0", Down, Up, "");
    d.hbs(t, dhaka(29, 9, 10), true);
    d.link(dhaka(29, 9, 10), "eth0", Up, Down, "carrier");
    d.link(dhaka(29, 9, 12), "eth0", Down, Up, "");
    d.hbs(dhaka(29, 9, 12), dhaka(29, 9, 20), true);
    d.offset = 0;
    d.life(dhaka(29, 9, 21), LifecycleEvent::ClockStep);
    d.hbs(dhaka(29, 9, 20), dhaka(29, 10, 0), true);
    assert!(d.recs.iter().any(|r| r.at_ms < 1_000_000_000_000));
    let (from, to) = (dhaka(29, 9, 0), dhaka(29, 10, 0));
    let tl = timeline(&d.recs, from, to, to, &p());
    check_timeline(&tl, from, to);
    use DeviceState::*;
    assert_eq!(
        tl.device,
        vec![
            iv(from, dhaka(29, 9, 10), Online, None),
            iv(
                dhaka(29, 9, 10),
                dhaka(29, 9, 12),
                Offline,
                Some(cause::ALL_LINKS_DOWN)
            ),
            iv(dhaka(29, 9, 12), to, Online, None),
        ]
    );
}

#[test]
fn data_that_begins_mid_run_uses_heartbeats_until_links_are_known() {
    let mut d = Dev::new();
    let t = dhaka(29, 9, 0);
    // No start record: the agent has been running for days.
    d.boot("b1", t - 3 * 86_400_000);
    d.facts(t);
    d.hbs(t, dhaka(29, 9, 30), true);
    d.hbs(dhaka(29, 9, 30), dhaka(29, 9, 40), false);
    d.link(dhaka(29, 9, 45), "wwan0", Down, Up, "");
    d.hbs(dhaka(29, 9, 40), dhaka(29, 10, 0), true);
    let (from, to) = (dhaka(29, 8, 0), dhaka(29, 10, 0));
    let tl = timeline(&d.recs, from, to, to, &p());
    check_timeline(&tl, from, to);
    use DeviceState::*;
    assert_eq!(
        tl.device,
        vec![
            iv(from, t, NoData, Some(cause::NO_RECORDS)),
            iv(t, dhaka(29, 9, 30), Online, None),
            iv(
                dhaka(29, 9, 30),
                dhaka(29, 9, 40),
                Offline,
                Some(cause::ALL_LINKS_DOWN)
            ),
            iv(dhaka(29, 9, 40), to, Online, None),
        ]
    );
    // wwan0 is known from its first transition only; eth0 and wlan0 never.
    assert_eq!(tl.links.keys().collect::<Vec<_>>(), ["wwan0"]);
    assert_eq!(tl.links["wwan0"].1[0].start, dhaka(29, 9, 45));
    // Facts alone tell nothing about the links.
    let mut d = Dev::new();
    d.boot("b1", t - 86_400_000).facts(t).facts(t + MIN);
    let tl = timeline(&d.recs, from, to, t + MIN, &p());
    assert_eq!(
        tl.device[1],
        iv(t, t + MIN, NoData, Some(cause::LINKS_UNKNOWN))
    );
}

#[test]
fn time_after_the_last_record_is_presumed_then_no_data_yet() {
    let mut d = Dev::new();
    let t = dhaka(29, 9, 0);
    d.boot("b1", t).start(t).link(t, "eth0", Down, Up, "");
    d.hbs(t, dhaka(29, 10, 0), true);
    let (from, to) = (dhaka(29, 9, 0), dhaka(29, 12, 0));
    use DeviceState::*;
    // One minute after the last heartbeat: still online.
    let now = dhaka(29, 10, 1);
    let tl = timeline(&d.recs, from, to, now, &p());
    assert_eq!(
        tl.device,
        vec![
            iv(from, now, Online, None),
            iv(now, to, NoData, Some(cause::FUTURE))
        ]
    );
    // An hour later: online for heartbeat + grace, then no data yet.
    let now = dhaka(29, 11, 0);
    let tl = timeline(&d.recs, from, to, now, &p());
    let presumed = dhaka(29, 10, 3);
    assert_eq!(
        tl.device,
        vec![
            iv(from, presumed, Online, None),
            iv(presumed, now, NoData, Some(cause::NOT_YET)),
            iv(now, to, NoData, Some(cause::FUTURE))
        ]
    );
}

#[test]
fn order_and_duplicates_do_not_matter_and_rec_comes_from_records() {
    let d = issue_day();
    let (from, to) = (dhaka(29, 0, 0), dhaka(30, 0, 0));
    let a = timeline(&d.recs, from, to, to, &p());
    let mut shuffled: Vec<Rec> = d.recs.iter().rev().cloned().collect();
    shuffled.extend(d.recs.iter().step_by(7).cloned());
    assert_eq!(a, timeline(&shuffled, from, to, to, &p()));
    let r = Rec::from(Record {
        seq: 3,
        seq_end: Some(5),
        at: 1,
        mono_ms: 2,
        boot_id: "b".into(),
        body: Body::Heartbeat {
            online: true,
            count: 3,
        },
    });
    assert_eq!((r.seq, r.seq_end, r.at_ms, r.mono_ms), (3, 5, 1, 2));
    assert_eq!(
        serde_json::to_string(&DeviceState::NotRunning).unwrap(),
        "\"not_running\""
    );
}

/// Cases the property tests found: a late backlog must not change what the
/// collector said before it, given `now` = the last record received.
fn assert_prefix_stable(recs: &[Rec], k: usize, end: i64) {
    let (from, to) = (dhaka(29, 7, 0), end + HOUR);
    let params = p();
    let p_now = place(&recs[..k]).iter().map(|r| r.t).max().unwrap();
    let known = timeline(&recs[..k], from, to, p_now, &params);
    let all = timeline(recs, from, to, end, &params);
    let placed = place(recs);
    let late = (0..placed.len())
        .filter(|i| recs[k..].iter().any(|r| r.seq == placed[*i].rec.seq))
        .map(|i| influence(&placed, i, &params))
        .min()
        .unwrap();
    let cut = late.min(p_now);
    assert_eq!(
        cut_before(&known, cut),
        cut_before(&all, cut),
        "cut at {cut}"
    );
}

#[test]
fn a_clock_step_record_covers_what_its_heartbeat_covers() {
    // Heartbeats to 08:08, the laptop sleeps, and at 08:12 the first tick
    // after waking records a clock step and then the heartbeat (covering
    // 08:11-08:12): 08:08-08:11 is within heartbeat + grace, so running.
    let mut d = Dev::new();
    let t = dhaka(29, 8, 0);
    d.boot("b1", t).start(t).link(t, "eth0", Down, Up, "");
    d.hbs(t, dhaka(29, 8, 8), true);
    d.offset = 2 * MIN;
    d.life(dhaka(29, 8, 12), LifecycleEvent::ClockStep);
    d.hb(dhaka(29, 8, 12), true);
    let k = d.recs.len() - 1; // the heartbeat has not arrived yet
    let tl = timeline(&d.recs[..k], t, dhaka(29, 9, 0), dhaka(29, 8, 12), &p());
    assert_eq!(
        tl.device[0],
        iv(t, dhaka(29, 8, 12), DeviceState::Online, None)
    );
    assert_prefix_stable(&d.recs, k, dhaka(29, 8, 12));
}

#[test]
fn boots_follow_the_sequence_even_when_a_clock_ran_ahead() {
    // Boot 0 ran 07:50-08:00 with its clock 37 minutes ahead (so its records
    // say 08:27-08:37); boot 1, right after, has the right clock. Boot 1
    // still comes after boot 0 (its records are pushed to 08:37), and its
    // records arriving later change nothing known before.
    let mut d = Dev::new();
    let t = dhaka(29, 7, 50);
    d.boot("b0", t);
    d.offset = 37 * MIN;
    d.start(t)
        .link(t, "eth0", Down, Up, "")
        .hbs(t, t + 10 * MIN, true);
    let b1 = t + 10 * MIN + 1_000;
    d.boot("b1", b1).start(b1).facts(b1);
    d.link(b1, "eth0", Down, Up, "")
        .hbs(b1, b1 + 60 * MIN, true);
    assert!(d.recs[0].at_ms > b1, "boot 0 says it began after boot 1");
    for k in 1..d.recs.len() {
        assert_prefix_stable(&d.recs, k, b1 + 60 * MIN);
    }
    let (from, to) = (t - HOUR, b1 + 60 * MIN);
    let tl = timeline(&d.recs, from, to, to, &p());
    check_timeline(&tl, from, to);
    use DeviceState::*;
    let ahead = t + 37 * MIN;
    assert_eq!(
        tl.device[..2],
        [
            iv(from, ahead, NoData, Some(cause::NO_RECORDS)),
            iv(ahead, to, Online, None),
        ]
    );
}

// ---------------------------------------------------------------------------
// Property tests over random record streams

const LINKS: [(&str, LinkKind); 3] = [
    ("eth0", LinkKind::Broadband),
    ("wlan0", LinkKind::Wifi),
    ("wwan0", LinkKind::Mobile),
];

#[derive(Debug, Clone)]
enum Op {
    /// `n` minutes of heartbeats, one record each or folded into one.
    Tick(u8, bool),
    Link(usize, LinkState),
    Stop,
    /// The agent dies (or the power goes) without a record.
    Crash,
    /// The agent starts after `gap` minutes, in a new boot or the same.
    Start(bool, u16),
    /// Time passes (a running agent is silent: asleep).
    Sleep(u16),
    /// The wall clock steps by this many minutes.
    Step(i32),
    Failover(usize),
    Minutes(usize),
    /// A few seconds pass.
    Jitter(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let state = prop_oneof![
        Just(LinkState::Up),
        Just(LinkState::Degraded),
        Just(LinkState::Down),
        Just(LinkState::Absent)
    ];
    prop_oneof![
        6 => (1u8..8, any::<bool>()).prop_map(|(n, f)| Op::Tick(n, f)),
        4 => (0usize..3, state).prop_map(|(i, s)| Op::Link(i, s)),
        1 => Just(Op::Stop),
        1 => Just(Op::Crash),
        2 => (any::<bool>(), 0u16..90).prop_map(|(b, g)| Op::Start(b, g)),
        1 => (0u16..60).prop_map(Op::Sleep),
        1 => (-120i32..120).prop_map(Op::Step),
        1 => (0usize..3).prop_map(Op::Failover),
        2 => (0usize..3).prop_map(Op::Minutes),
        3 => (1u16..50).prop_map(Op::Jitter),
    ]
}

/// Run the ops on a simulated device; returns its records (in sequence
/// order) and the true time at the end.
fn simulate(running: bool, ops: &[Op]) -> (Vec<Rec>, i64) {
    let base = dhaka(29, 8, 0);
    let mut d = Dev::new();
    d.boot("boot0", base - HOUR);
    let mut t = base;
    let mut boots = 0;
    let mut running = running;
    let mut links = [Down; 3];
    let mut pending_step = false;
    let mut chosen: Option<String> = None;
    for op in ops {
        match op {
            Op::Tick(n, folded) => {
                let online = links.iter().any(|s| s.is_online());
                let n = i64::from(*n);
                if !running {
                    t += n * MIN;
                } else if *folded && n > 1 {
                    // The agent records the step just before the first
                    // heartbeat after it; the spool folds that heartbeat
                    // with the later ones (never across the step record).
                    if std::mem::take(&mut pending_step) {
                        d.life(t + MIN, LifecycleEvent::ClockStep);
                    }
                    t += n * MIN;
                    d.rec_span(
                        t,
                        n as u64,
                        Body::Heartbeat {
                            online,
                            count: n as u32,
                        },
                    );
                } else {
                    for _ in 0..n {
                        t += MIN;
                        if std::mem::take(&mut pending_step) {
                            d.life(t, LifecycleEvent::ClockStep);
                        }
                        d.hb(t, online);
                    }
                }
            }
            Op::Link(i, s) => {
                if running && links[*i] != *s {
                    d.link(t, LINKS[*i].0, links[*i], *s, "test");
                    links[*i] = *s;
                }
            }
            Op::Stop => {
                if running {
                    d.stop(t);
                    running = false;
                }
            }
            Op::Crash => running = false,
            Op::Start(new_boot, gap) => {
                t += i64::from(*gap) * MIN;
                if *new_boot {
                    boots += 1;
                    d.boot(&format!("boot{boots}"), t);
                    pending_step = false;
                }
                d.start(t).facts(t);
                links = [Down; 3];
                chosen = None;
                running = true;
            }
            Op::Sleep(m) => t += i64::from(*m) * MIN,
            Op::Step(m) => {
                if running && *m != 0 {
                    d.offset += i64::from(*m) * MIN;
                    pending_step = true;
                }
            }
            Op::Failover(i) => {
                let to = LINKS[*i].0.to_string();
                if running && chosen.as_deref() != Some(&to) {
                    d.rec(
                        t,
                        Body::Failover {
                            from: chosen.clone(),
                            to: Some(to.clone()),
                            cause: "test".into(),
                            reason: String::new(),
                        },
                    );
                    chosen = Some(to);
                }
            }
            Op::Minutes(i) => {
                if running {
                    let lost = if links[*i].is_online() { 1 } else { 10 };
                    d.rec(
                        t,
                        Body::LinkMinutes {
                            link: LINKS[*i].0.into(),
                            kind: LINKS[*i].1,
                            minutes: 1,
                            sent: 10,
                            lost,
                            rtt_p50_ms: Some(10.0 + *i as f64),
                            rtt_p95_ms: None,
                            rtt_max_ms: None,
                            bytes: 640,
                        },
                    );
                }
            }
            Op::Jitter(s) => t += i64::from(*s) * 1000,
        }
    }
    (d.recs, t)
}

/// A deterministic shuffle, duplicating every record whose shuffled position
/// is a multiple of `dup_every`.
fn shuffle_dup(recs: &[Rec], mut seed: u64, dup_every: usize) -> Vec<Rec> {
    let mut v: Vec<Rec> = recs.to_vec();
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
    let dups: Vec<Rec> = v.iter().step_by(dup_every.max(1)).cloned().collect();
    v.extend(dups);
    v
}

/// The timeline cut at `cut` (intervals ending after it are shortened).
fn cut_before(tl: &Timeline, cut: i64) -> Timeline {
    fn cut_v<S: Clone>(v: &[Interval<S>], cut: i64) -> Vec<Interval<S>> {
        v.iter()
            .filter(|i| i.start < cut)
            .map(|i| Interval {
                end: i.end.min(cut),
                ..i.clone()
            })
            .collect()
    }
    Timeline {
        device: cut_v(&tl.device, cut),
        links: tl
            .links
            .iter()
            .map(|(k, (kind, v))| (k.clone(), (*kind, cut_v(v, cut))))
            .filter(|(_, (_, v))| !v.is_empty())
            .collect(),
    }
}

/// From when a record can change the timeline: its placed time less what it
/// covers; for a clock step, from the anchor it re-places records after.
fn influence(placed: &[Placed<'_>], i: usize, p: &Params) -> i64 {
    let r = placed[i];
    if is_event(r.rec, LifecycleEvent::ClockStep) {
        let same_boot = |j: &usize| placed[*j].rec.boot_id == r.rec.boot_id;
        let hb = (0..i)
            .rev()
            .take_while(same_boot)
            .find(|j| matches!(placed[*j].rec.body, Body::Heartbeat { .. }));
        let prev = (0..i).rev().take_while(same_boot).next();
        return hb.or(prev).map_or(r.t, |j| placed[j].t);
    }
    r.t - coverage(r.rec, p)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn states_cover_the_window_and_order_and_duplicates_do_not_matter(
        running in any::<bool>(),
        ops in prop::collection::vec(op(), 0..120),
        seed in 1u64..,
        dup_every in 1usize..6,
        lead in 0i64..120,
        tail in -60i64..120,
        late in 0i64..30,
    ) {
        let (recs, end) = simulate(running, &ops);
        let from = dhaka(29, 8, 0) - lead * MIN;
        let to = (end + tail * MIN).max(from);
        let now = end + late * MIN;
        let params = p();
        let tl = timeline(&recs, from, to, now, &params);
        check_timeline(&tl, from, to);
        // (1) The four states add up to the window.
        let f = figures(&tl, &recs, &[(from, to)]);
        prop_assert_eq!(f.online_ms + f.offline_ms + f.not_running_ms + f.no_data_ms, to - from);
        prop_assert!(f.per_kind_ms.values().sum::<i64>() <= f.online_ms);
        if let Some(u) = f.uptime {
            prop_assert!((0.0..=1.0).contains(&u));
        } else {
            prop_assert_eq!(f.online_ms + f.offline_ms, 0);
        }
        let outage_ms: i64 = f.outages.iter().map(|o| o.end - o.start).sum();
        prop_assert!(outage_ms <= f.offline_ms + f.not_running_ms);
        // With a mask, only masked time counts.
        let mask = parse_schedule("office:Asia/Dhaka:sun-sat:09:00-10:30").unwrap().mask(from, to);
        let fm = figures(&tl, &recs, &mask);
        prop_assert_eq!(
            fm.online_ms + fm.offline_ms + fm.not_running_ms + fm.no_data_ms,
            mask.iter().map(|(a, b)| b - a).sum::<i64>()
        );
        // (2) Arrival order and duplicates do not matter.
        let again = shuffle_dup(&recs, seed, dup_every);
        let tl2 = timeline(&again, from, to, now, &params);
        prop_assert_eq!(&tl, &tl2);
        prop_assert_eq!(f, figures(&tl2, &again, &[(from, to)]));
    }

    #[test]
    fn a_late_backlog_changes_nothing_before_it(
        running in any::<bool>(),
        ops in prop::collection::vec(op(), 1..120),
        split in any::<prop::sample::Index>(),
        late in 0i64..30,
    ) {
        let (recs, end) = simulate(running, &ops);
        prop_assume!(!recs.is_empty());
        let k = split.index(recs.len()) + 1; // a non-empty prefix
        let params = p();
        let from = dhaka(29, 8, 0) - HOUR;
        let to = end + 2 * HOUR;
        let prefix = &recs[..k];
        // What the collector knew when the prefix's last record came in.
        let p_now = place(prefix).iter().map(|r| r.t).max().unwrap();
        let known = timeline(prefix, from, to, p_now, &params);
        let all = timeline(&recs, from, to, end + late * MIN, &params);
        check_timeline(&known, from, to);
        let placed = place(&recs);
        let prefix_seqs: std::collections::BTreeSet<u64> = prefix.iter().map(|r| r.seq).collect();
        let earliest_late = (0..placed.len())
            .filter(|i| !prefix_seqs.contains(&placed[*i].rec.seq))
            .map(|i| influence(&placed, i, &params))
            .min()
            .unwrap_or(i64::MAX);
        let cut = earliest_late.min(p_now);
        prop_assert_eq!(cut_before(&known, cut), cut_before(&all, cut), "cut at {}", cut);
    }
}

/// Any record at all, with clocks all over the place.
fn garbage() -> impl Strategy<Value = Rec> {
    let base = dhaka(29, 8, 0);
    let state = prop_oneof![
        Just(Up),
        Just(Degraded),
        Just(Down),
        Just(LinkState::Absent)
    ];
    let body = prop_oneof![
        (0usize..3, state.clone(), state).prop_map(|(i, a, b)| Body::LinkState {
            link: LINKS[i].0.into(),
            kind: LINKS[i].1,
            from: a,
            to: b,
            reason: None,
        }),
        (0usize..3, 1u32..120, 0u32..20, 0u32..20).prop_map(|(i, m, s, l)| Body::LinkMinutes {
            link: LINKS[i].0.into(),
            kind: LINKS[i].1,
            minutes: m,
            sent: s,
            lost: l,
            rtt_p50_ms: Some(f64::from(s)),
            rtt_p95_ms: None,
            rtt_max_ms: None,
            bytes: 0,
        }),
        (0usize..4, 0usize..4).prop_map(|(a, b)| Body::Failover {
            from: LINKS.get(a).map(|l| l.0.to_string()),
            to: LINKS.get(b).map(|l| l.0.to_string()),
            cause: "x".into(),
            reason: String::new(),
        }),
        prop_oneof![
            Just(LifecycleEvent::Start),
            Just(LifecycleEvent::Stop),
            Just(LifecycleEvent::ClockStep)
        ]
        .prop_map(|event| Body::Lifecycle {
            event,
            boot_time: None,
            detail: None,
        }),
        (any::<bool>(), 1u32..10_000).prop_map(|(online, count)| Body::Heartbeat { online, count }),
    ];
    (
        1u64..60,
        0u64..5,
        -10 * 86_400_000i64..10 * 86_400_000,
        0u64..(1 << 40),
        0usize..3,
        body,
    )
        .prop_map(move |(seq, span, at, mono, boot, body)| Rec {
            seq,
            seq_end: seq + span,
            at_ms: base + at,
            mono_ms: mono,
            boot_id: format!("b{boot}"),
            body,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever comes in, the timeline is well formed, adds up, and does not
    /// depend on arrival order.
    #[test]
    fn garbage_in_still_a_well_formed_timeline(
        recs in prop::collection::vec(garbage(), 0..60),
        seed in 1u64..,
        from in -12 * 86_400_000i64..12 * 86_400_000,
        len in 0i64..4 * 86_400_000,
        now in -12 * 86_400_000i64..12 * 86_400_000,
    ) {
        let base = dhaka(29, 8, 0);
        let (from, to, now) = (base + from, base + from + len, base + now);
        let tl = timeline(&recs, from, to, now, &p());
        check_timeline(&tl, from, to);
        let f = figures(&tl, &recs, &[(from, to)]);
        prop_assert_eq!(f.online_ms + f.offline_ms + f.not_running_ms + f.no_data_ms, to - from);
        prop_assert!(f.per_kind_ms.values().sum::<i64>() <= f.online_ms);
        prop_assert!(f.loss_pct.is_none_or(|l| (0.0..=100.0).contains(&l)));
        let again = shuffle_dup(&recs, seed, 3);
        prop_assert_eq!(&tl, &timeline(&again, from, to, now, &p()));
    }
}
