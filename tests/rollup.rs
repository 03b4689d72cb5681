//! Roll-ups end to end, on SQLite and PostgreSQL: a week of records of an
//! always-on gateway (outages over midnight and over two days, failovers, a
//! sleep) and of a laptop (started every morning, stopped every evening, one
//! crash) go in through `ingest`; the maintainer computes the days; reports
//! over aligned and unaligned windows read from the roll-ups must equal the
//! engine's answer on all the records (RTT medians to the histogram's
//! bucket). Late data must make the device fall back to its records at once
//! and the next round must bring the roll-ups up to date. Day timelines must
//! equal the engine's. Retention deletes old minute summaries, and a replay
//! of deleted records is not stored again.

mod common;

use common::db::{TestDb, on_both};
use common::records::Recs;
use linkwatch::collector::devices;
use linkwatch::collector::maintainer::{self, RollupSettings};
use linkwatch::collector::report::{self, RawQuery, ReportQuery, Row};
use linkwatch::collector::rollup;
use linkwatch::collector::store::{Device, Office, Store};
use linkwatch::collector::timeline;
use linkwatch::collector::uptime::{self, Params};
use linkwatch::shared::schedule::Schedule;
use linkwatch::wire::v1::{Body, Record};
use linkwatch::wire::{LinkKind, LinkState};
use std::sync::Arc;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;
const DAY: i64 = 24 * HOUR;

on_both!(
    rollups_answer_as_the_records_do,
    late_data_is_used_at_once_and_rolled_up_next_round,
    retention_deletes_old_minutes_and_replays_stay_out,
    a_new_holiday_list_is_rolled_up_afresh,
    each_office_keeps_its_own_hours,
    hour_rows_serve_windows_that_cut_days,
    the_running_collector_keeps_roll_ups_current,
);

/// 00:00 Sunday 2026-11-01, Asia/Dhaka.
fn day0() -> i64 {
    "2026-10-31T18:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

/// When the tests run: Monday 2026-11-09 10:00 Dhaka.
fn now() -> i64 {
    day0() + 8 * DAY + 10 * HOUR
}

/// Heartbeats every minute in `(a, b]` and five-minute summaries of both
/// links; `online(t)` says what the heartbeat says.
fn run(g: &mut Recs, a: i64, b: i64, online: impl Fn(i64) -> bool) {
    let mut t = a + MIN;
    while t <= b {
        g.heartbeat(t, online(t));
        if (t - a) % (5 * MIN) == 0 {
            for (i, (link, kind)) in [("eth0", LinkKind::Broadband), ("wwan0", LinkKind::Mobile)]
                .into_iter()
                .enumerate()
            {
                let up = online(t);
                let k = (t / (5 * MIN)) % 7;
                let lost = if up { (k % 3) as u32 } else { 30 };
                let rtt = up.then_some(12.0 + 9.0 * k as f64 + 40.0 * i as f64);
                g.minutes(t, link, kind, 5, 30, lost, rtt);
            }
        }
        t += MIN;
    }
}

const E: (&str, LinkKind) = ("eth0", LinkKind::Broadband);
const W: (&str, LinkKind) = ("wwan0", LinkKind::Mobile);

fn both(g: &mut Recs, t: i64, from: LinkState, to: LinkState) {
    g.link(t, E.0, E.1, from, to);
    g.link(t, W.0, W.1, from, to);
}

/// The gateway: one boot from a day before day 0 to now; all links down
/// 23:30 day 2 to 00:40 day 3 and 20:00 day 3 to 02:00 day 5; on mobile
/// 10:00-11:00 day 1; silent (asleep) 01:00-03:00 day 6.
fn gateway() -> Vec<Record> {
    use LinkState::{Down, Up};
    let d = day0();
    let mut g = Recs::new();
    let t0 = d - DAY;
    g.start(t0, "gw-boot");
    both(&mut g, t0, Down, Up);
    g.failover(t0, None, Some("eth0"));
    let outages = [
        (d + 2 * DAY + 23 * HOUR + 30 * MIN, d + 3 * DAY + 40 * MIN),
        (d + 3 * DAY + 20 * HOUR, d + 5 * DAY + 2 * HOUR),
    ];
    let sleep = (d + 6 * DAY + HOUR, d + 6 * DAY + 3 * HOUR);
    let offline = move |t: i64| outages.iter().any(|(a, b)| t > *a && t <= *b);
    // Pieces between events.
    let events = [
        d + DAY + 10 * HOUR,
        d + DAY + 11 * HOUR,
        outages[0].0,
        outages[0].1,
        outages[1].0,
        outages[1].1,
        sleep.0,
        sleep.1,
        now() - 2 * MIN,
    ];
    let mut t = t0;
    for (i, &e) in events.iter().enumerate() {
        if !(sleep.0 < e && e <= sleep.1 && t >= sleep.0) {
            run(&mut g, t, e, |x| !offline(x));
        }
        match i {
            0 => {
                g.link(e, E.0, E.1, Up, Down);
                g.failover(e, Some("eth0"), Some("wwan0"));
            }
            1 => {
                g.link(e, E.0, E.1, Down, Up);
                g.failover(e, Some("wwan0"), Some("eth0"));
            }
            2 | 4 => both(&mut g, e, Up, Down),
            3 | 5 => both(&mut g, e, Down, Up),
            _ => {}
        }
        t = e;
    }
    g.out
}

/// The laptop: on 08:30-18:00 every day (new boot, clean stop), except day
/// 4 when it crashes at 12:00; Wi-Fi down 14:00-14:20 on day 2.
fn laptop() -> Vec<Record> {
    use LinkState::{Down, Up};
    let d = day0();
    let mut g = Recs::new();
    for day in 0..8 {
        let a = d + day * DAY + 8 * HOUR + 30 * MIN;
        let b = if day == 4 {
            d + day * DAY + 12 * HOUR
        } else {
            d + day * DAY + 18 * HOUR
        };
        g.start(a, &format!("lt-boot-{day}"));
        g.link(a, "wlan0", LinkKind::Wifi, Down, Up);
        g.failover(a, None, Some("wlan0"));
        if day == 2 {
            let x = d + day * DAY + 14 * HOUR;
            let y = x + 20 * MIN;
            run(&mut g, a, x, |_| true);
            g.link(x, "wlan0", LinkKind::Wifi, Up, Down);
            run(&mut g, x, y, |_| false);
            g.link(y, "wlan0", LinkKind::Wifi, Down, Up);
            run(&mut g, y, b, |_| true);
        } else {
            run(&mut g, a, b, |_| true);
        }
        if day != 4 {
            g.stop(b);
        }
    }
    g.out
}

async fn ingest(store: &dyn Store, d: &Device, recs: &[Record]) {
    for chunk in recs.chunks(2_000) {
        store.ingest(d.id, chunk, now()).await.unwrap();
    }
}

/// An office; `hours`: its own office hours.
fn office(code: &str, hours: Option<&str>) -> Office {
    Office {
        code: code.into(),
        name: format!("Office {code}"),
        division: "Dhaka".into(),
        district: "Dhaka".into(),
        upazila: "Savar".into(),
        hours: hours.map(String::from),
    }
}

/// The laptop's office keeps its own hours (seven days, 07:00-20:00), the
/// gateway's the circular's defaults.
const LT_HOURS: &str = "office:Asia/Dhaka:sun-sat:07:00-20:00";

async fn setup(store: &dyn Store) -> Vec<Device> {
    let t = day0() - 3 * DAY;
    store
        .upsert_offices(&[
            office("gw-office", None),
            office("lt-office", Some(LT_HOURS)),
        ])
        .await
        .unwrap();
    let (gw, _) = devices::add_device(store, "gw", Some("gw-office"), t)
        .await
        .unwrap();
    let (lt, _) = devices::add_device(store, "lt", Some("lt-office"), t)
        .await
        .unwrap();
    let (idle, _) = devices::add_device(store, "idle", None, t).await.unwrap();
    ingest(store, &gw, &gateway()).await;
    ingest(store, &lt, &laptop()).await;
    vec![gw, lt, idle]
}

fn settings() -> RollupSettings {
    RollupSettings {
        raw_retention_days: None,
        ..Default::default()
    }
}

/// Rounds until nothing is due; how many device-days were computed.
async fn maintain(store: &Arc<dyn Store>, at: i64) -> u64 {
    rounds(store, at).await.days
}

/// Rounds until nothing is due; what they computed, summed.
async fn rounds(store: &Arc<dyn Store>, at: i64) -> maintainer::RoundStats {
    let mut sum = maintainer::RoundStats::default();
    for _ in 0..10 {
        let st = maintainer::run_once(store, &settings(), at).await.unwrap();
        sum.days += st.days;
        sum.hours += st.hours;
        sum.devices += st.devices;
        if st.devices == 0 {
            return sum;
        }
    }
    panic!("the maintainer never caught up");
}

fn query(from: i64, to: i64, schedule: &str) -> ReportQuery {
    let (f, t) = (report::ts(from), report::ts(to));
    ReportQuery::parse(&RawQuery {
        from: Some(&f),
        to: Some(&t),
        by: Some("device"),
        schedule: Some(schedule),
        ..Default::default()
    })
    .unwrap()
}

/// The schedule of device `d` in query `q`: `office` is each office's own hours.
async fn schedule_of(store: &dyn Store, q: &ReportQuery, d: &Device) -> Schedule {
    let offices = store.list_offices().await.unwrap();
    let hours = q.schedule.office_hours(
        offices
            .iter()
            .filter_map(|o| Some((o.code.as_str(), o.hours.as_deref()?))),
    );
    q.schedule.for_office(&hours, d.office.as_deref()).clone()
}

/// The engine's rows on every record of every device (the truth).
async fn truth(store: &dyn Store, q: &ReportQuery) -> Vec<Row> {
    let mut per = Vec::new();
    for d in store.list_devices().await.unwrap() {
        let recs = report::all_records(store, &d).await.unwrap();
        let sched = schedule_of(store, q, &d).await;
        per.push((d, report::device_figures(&recs, q, &sched, now())));
    }
    report::build_rows(q.by, q.target_pct, &per, &[])
}

fn same(got: &[Row], want: &[Row], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: rows");
    for (g, w) in got.iter().zip(want) {
        let at = format!("{what}, {}", w.group);
        assert_eq!(g.group, w.group, "{at}");
        assert_eq!(
            (g.online_ms, g.offline_ms, g.not_running_ms, g.no_data_ms),
            (w.online_ms, w.offline_ms, w.not_running_ms, w.no_data_ms),
            "{at}: online, offline, not running, no data"
        );
        assert_eq!(
            (g.outages, g.longest_outage_ms, g.mean_time_to_recover_ms),
            (w.outages, w.longest_outage_ms, w.mean_time_to_recover_ms),
            "{at}: outages, longest, MTTR"
        );
        assert_eq!(
            (g.broadband_ms, g.wifi_ms, g.mobile_ms, g.failovers),
            (w.broadband_ms, w.wifi_ms, w.mobile_ms, w.failovers),
            "{at}: kinds, failovers"
        );
        match (g.loss_pct, w.loss_pct) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-6, "{at}: loss {a} vs {b}"),
            (a, b) => assert_eq!(a, b, "{at}: loss"),
        }
        match (g.rtt_p50_ms, w.rtt_p50_ms) {
            (Some(a), Some(b)) => assert!(
                a / b < 1.42 && b / a < 1.42,
                "{at}: RTT median {a} vs {b} (more than a bucket apart)"
            ),
            (a, b) => assert_eq!(a, b, "{at}: RTT"),
        }
    }
}

async fn rollups_answer_as_the_records_do(db: Arc<TestDb>) {
    let store = db.open().await;
    let devs = setup(store.as_ref()).await;
    let days = maintain(&store, now()).await;
    assert!(days >= 16, "computed {days} device-days");
    let d = day0();
    // Day rows are there and current for the gateway and the laptop.
    let tz = rollup::day_tz();
    let sums = store.rollup_sums("always", d, d + 7 * DAY).await.unwrap();
    assert_eq!(sums.len(), 2, "{sums:?}");
    assert!(sums.iter().all(|s| s.days == 7), "{sums:?}");
    let marks = store.dirty_marks().await.unwrap();
    assert!(
        marks
            .iter()
            .all(|m| rollup::day_start(&tz, m.from_ms) == d + 8 * DAY),
        "{marks:?}"
    );
    for (from, to, what) in [
        (d, d + 7 * DAY, "aligned week"),
        (d + 5 * HOUR, d + 6 * DAY + 2 * HOUR, "unaligned"),
        (d + 2 * DAY, now(), "to now"),
        (
            d + 3 * DAY + 21 * HOUR,
            d + 4 * DAY + 3 * HOUR,
            "inside an outage",
        ),
    ] {
        for sched in ["always", "office", "office:Asia/Dhaka:sun-sat:00:00-24:00"] {
            let q = query(from, to, sched);
            let got = report::run_report(store.as_ref(), &q, None, now())
                .await
                .unwrap();
            let want = truth(store.as_ref(), &q).await;
            same(&got.rows, &want, &format!("{what}, {sched}"));
        }
    }
    // Outage lists (roll-ups hold only sums) are the engine's, in full.
    for sched in ["always", "office"] {
        let q = query(d, d + 7 * DAY, sched);
        let (got, _, _) =
            report::figures_in_scope(store.as_ref(), &q, None, now(), report::Uses::Outages)
                .await
                .unwrap();
        for (dev, f) in &got {
            let recs = report::all_records(store.as_ref(), dev).await.unwrap();
            let sched = schedule_of(store.as_ref(), &q, dev).await;
            let want = report::device_figures(&recs, &q, &sched, now());
            assert_eq!(f.outages, want.outages, "{} outages, {sched}", dev.name);
        }
        assert!(got.iter().any(|(_, f)| !f.outages.is_empty()));
    }
    // The two-day outage is one outage, the longest.
    let q = query(d, d + 7 * DAY, "always");
    let r = report::run_report(store.as_ref(), &q, None, now())
        .await
        .unwrap();
    let gw = r.rows.iter().find(|r| r.group == "gw").unwrap();
    assert_eq!(gw.longest_outage_ms, Some(DAY + 6 * HOUR), "{gw:?}");
    // Timelines from day timelines equal the engine's.
    for (from, to) in [(d, d + 7 * DAY), (d + 7 * HOUR, now())] {
        for dev in &devs {
            let got = timeline::device_timeline_of(store.as_ref(), dev, from, to, now())
                .await
                .unwrap();
            let recs = report::all_records(store.as_ref(), dev).await.unwrap();
            let want = uptime::timeline(&recs, from, to, now(), &Params::default());
            assert_eq!(got.device, want.device, "{} device timeline", dev.name);
            assert_eq!(got.links, want.links, "{} link timelines", dev.name);
        }
    }
}

async fn late_data_is_used_at_once_and_rolled_up_next_round(db: Arc<TestDb>) {
    let store = db.open().await;
    let d = day0();
    let t = d - 3 * DAY;
    let (lt, _) = devices::add_device(store.as_ref(), "lt", None, t)
        .await
        .unwrap();
    let all = laptop();
    // Only the first three days arrive; the rest later.
    let cut = all.iter().position(|r| r.at >= d + 3 * DAY).unwrap();
    ingest(store.as_ref(), &lt, &all[..cut]).await;
    maintain(&store, now()).await;
    let q = query(d, d + 7 * DAY, "office");
    let before = report::run_report(store.as_ref(), &q, None, now())
        .await
        .unwrap();
    same(&before.rows, &truth(store.as_ref(), &q).await, "before");
    // The backlog lands: the report is right at once (from the records) ...
    ingest(store.as_ref(), &lt, &all[cut..]).await;
    let want = truth(store.as_ref(), &q).await;
    assert_ne!(before.rows[0].online_ms, want[0].online_ms);
    let mid = report::run_report(store.as_ref(), &q, None, now())
        .await
        .unwrap();
    same(&mid.rows, &want, "backlog, before the round");
    // ... and after the next round, from the corrected roll-ups.
    let days = maintain(&store, now()).await;
    assert!(
        (5..=8).contains(&days),
        "recomputed {days} days, expected the ones from the backlog on"
    );
    let marks = store.dirty_marks().await.unwrap();
    assert_eq!(
        rollup::day_start(&rollup::day_tz(), marks[0].from_ms),
        d + 8 * DAY
    );
    let after = report::run_report(store.as_ref(), &q, None, now())
        .await
        .unwrap();
    same(&after.rows, &want, "backlog, after the round");
}

async fn retention_deletes_old_minutes_and_replays_stay_out(db: Arc<TestDb>) {
    let store = db.open().await;
    let d = day0();
    let (lt, _) = devices::add_device(store.as_ref(), "lt", None, d - DAY)
        .await
        .unwrap();
    let all = laptop();
    ingest(store.as_ref(), &lt, &all).await;
    // Rolled up (days and hours) while the records are young.
    maintain(&store, now()).await;
    let minutes_before = |cut: i64| {
        all.iter()
            .filter(|r| matches!(r.body, Body::LinkMinutes { .. }) && r.at < cut)
            .count() as u64
    };
    // Ten days later, with a seven-day retention, ...
    let later = now() + 10 * DAY;
    let s = RollupSettings {
        raw_retention_days: Some(7),
        hour_retention_days: Some(16),
        ..Default::default()
    };
    let mut deleted = 0;
    for _ in 0..10 {
        let st = maintainer::run_once(&store, &s, later).await.unwrap();
        deleted += st.minutes_deleted;
        if st.devices == 0 {
            break;
        }
    }
    let cut = later - 7 * DAY;
    assert_eq!(deleted, minutes_before(cut));
    let left = report::all_records(store.as_ref(), &lt).await.unwrap();
    assert!(
        left.iter()
            .all(|r| r.at_ms >= cut || !matches!(r.body, Body::LinkMinutes { .. }))
    );
    assert_eq!(left.len() as u64, all.len() as u64 - deleted);
    // Hour rows are kept 16 days, past the raw data: those of the days
    // before (the day before day 0, days 0 and 1) are gone, those of days
    // 2-7 stay though their minutes are gone; day rows are kept.
    let cut_day = rollup::day_start(&rollup::day_tz(), cut);
    let hour_cut = rollup::day_start(&rollup::day_tz(), later - 16 * DAY);
    assert_eq!(hour_cut, d + 2 * DAY);
    let rows = async |key: &str, a: i64, b: i64| {
        let sums = store.rollup_sums(key, a, b).await.unwrap();
        sums.first().map_or(0, |s| s.days)
    };
    assert_eq!(
        rows("always/hour", d - DAY, hour_cut).await,
        0,
        "hour rows before their retention"
    );
    assert_eq!(
        rows("always/hour", hour_cut, d + 8 * DAY).await,
        6 * 24,
        "hour rows of days 2-7, older than the raw data"
    );
    assert!(hour_cut < cut_day);
    assert_eq!(
        rows("always", d - DAY, cut_day).await,
        8,
        "day rows of days 0-7 (rolled up before)"
    );
    // A replay of everything stores nothing again.
    let ack = store.ingest(lt.id, &all[..500], later).await.unwrap();
    assert_eq!((ack.stored, ack.duplicates), (0, 500));
    let again = report::all_records(store.as_ref(), &lt).await.unwrap();
    assert_eq!(again.len(), left.len());
}

async fn a_new_holiday_list_is_rolled_up_afresh(db: Arc<TestDb>) {
    let store = db.open().await;
    setup(store.as_ref()).await;
    maintain(&store, now()).await;
    let d = day0();
    // Tuesday 2026-11-03 becomes a holiday.
    let holidays: std::collections::BTreeSet<jiff::civil::Date> =
        [jiff::civil::date(2026, 11, 3)].into_iter().collect();
    let office = linkwatch::shared::schedule::parse_schedule("office")
        .unwrap()
        .with_holidays(holidays.clone());
    let key = rollup::schedule_key(&office);
    assert!(!store.has_rollups(&key).await.unwrap());
    let s = RollupSettings {
        schedules: vec![office.clone()],
        raw_retention_days: None,
        ..Default::default()
    };
    // The collector starts with the new list: every device is due again.
    assert_eq!(maintainer::start(&store, &s, now()).await.unwrap(), 2);
    for _ in 0..10 {
        if maintainer::run_once(&store, &s, now())
            .await
            .unwrap()
            .devices
            == 0
        {
            break;
        }
    }
    assert!(store.has_rollups(&key).await.unwrap());
    let plain = query(d, d + 7 * DAY, "office");
    let q = ReportQuery {
        schedule: plain.schedule.clone().with_holidays(holidays),
        ..plain.clone()
    };
    let got = report::run_report(store.as_ref(), &q, None, now())
        .await
        .unwrap();
    let want = truth(store.as_ref(), &q).await;
    same(&got.rows, &want, "office with a holiday");
    // The holiday's office hours are gone: the laptop's 13 h less (its
    // office keeps 07:00-20:00; holidays apply to an office's own hours).
    let without = truth(store.as_ref(), &plain).await;
    let lt = |rows: &[Row]| {
        let r = rows.iter().find(|r| r.group == "lt").unwrap();
        r.online_ms + r.offline_ms + r.not_running_ms + r.no_data_ms
    };
    assert_eq!(lt(&without) - lt(&got.rows), 13 * HOUR);
}

async fn the_running_collector_keeps_roll_ups_current(db: Arc<TestDb>) {
    let store = db.open().await;
    setup(store.as_ref()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut cfg = linkwatch::config::collector::CollectorConfig::embedded();
    cfg.collector.database = db.url().to_string();
    cfg.collector.rollup_interval = std::time::Duration::from_secs(1);
    // The fixture's week is weeks old: past the default 14 days of raw data,
    // which the maintainer no longer rolls up.
    cfg.collector.raw_retention_days = 0;
    cfg.collector.hour_retention_days = 0;
    let server_store = store.clone();
    let task = tokio::spawn(async move {
        linkwatch::collector::server::serve_on(listener, server_store, &cfg, async {
            let _ = rx.await;
        })
        .await
    });
    // The maintainer of the serving collector (real clock: these days are
    // long settled) rolls both devices' week up, with no call from here.
    let d = day0();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let sums = store.rollup_sums("always", d, d + 7 * DAY).await.unwrap();
        if sums.len() == 2 && sums.iter().all(|s| s.days == 7) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the collector did not roll the week up within 120 s: {sums:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}

/// The `office` schedule is each office's own hours: the laptop's office
/// keeps seven days 07:00-20:00, the gateway's the circular's defaults. A
/// changed `hours` makes the office's devices due again: reports use the new
/// hours at once (from the records), and the next round rolls them up.
async fn each_office_keeps_its_own_hours(db: Arc<TestDb>) {
    let store = db.open().await;
    let devs = setup(store.as_ref()).await;
    let (gw, lt) = (&devs[0], &devs[1]);
    maintain(&store, now()).await;
    let d = day0();
    let figures = async |sched: &str, name: &str| {
        let q = query(d, d + 7 * DAY, sched);
        let r = report::run_report(store.as_ref(), &q, None, now())
            .await
            .unwrap();
        let row = r.rows.iter().find(|x| x.group == name).unwrap();
        (
            r.schedule.clone(),
            (
                row.online_ms,
                row.offline_ms,
                row.not_running_ms,
                row.no_data_ms,
            ),
        )
    };
    const DEFAULTS: &str = "office:Asia/Dhaka:sun-thu:09:00-17:00";
    let (label, lt_office) = figures("office", "lt").await;
    assert_eq!(label, "office");
    assert_eq!(lt_office, figures(LT_HOURS, "lt").await.1);
    assert_ne!(lt_office, figures(DEFAULTS, "lt").await.1);
    assert_eq!(
        figures("office", "gw").await.1,
        figures(DEFAULTS, "gw").await.1
    );
    // The whole report equals the engine on every record, each device
    // within its office's hours.
    let q = query(d, d + 7 * DAY, "office");
    let as_truth = async |what: &str| {
        let got = report::run_report(store.as_ref(), &q, None, now())
            .await
            .unwrap();
        same(&got.rows, &truth(store.as_ref(), &q).await, what);
    };
    as_truth("office, rolled up").await;

    // New hours for the laptop's office only.
    const NEW: &str = "office:Asia/Dhaka:sun-sat:10:00-12:00";
    let gw_mark = store.dirty_mark(gw.id).await.unwrap().unwrap();
    store
        .upsert_offices(&[office("lt-office", Some(NEW))])
        .await
        .unwrap();
    let lt_mark = store.dirty_mark(lt.id).await.unwrap().unwrap();
    assert!(lt_mark.from_ms < d, "{lt_mark:?}");
    assert_eq!(store.dirty_mark(gw.id).await.unwrap().unwrap(), gw_mark);
    assert_eq!(figures("office", "lt").await.1, figures(NEW, "lt").await.1);
    let days = maintain(&store, now()).await;
    // The laptop's days only (the gateway's too would be twice as many).
    assert!((7..=12).contains(&days), "recomputed {days} device-days");
    assert_eq!(figures("office", "lt").await.1, figures(NEW, "lt").await.1);
    as_truth("office, new hours rolled up").await;
}

/// Hour rows: the maintainer rolls up every hour of settled days and the
/// settled hours of today; windows that cut days (today so far, office
/// hours of one day, around midnight) read them and equal the engine on all
/// the records; the report reads them (a changed row shows); data arriving
/// late for today's rolled-up hours is used at once and rolled up next round.
async fn hour_rows_serve_windows_that_cut_days(db: Arc<TestDb>) {
    let store = db.open().await;
    let devs = setup(store.as_ref()).await;
    let gw = &devs[0];
    let st = rounds(&store, now()).await;
    let d = day0();
    let today = d + 8 * DAY;
    // At 10:00, 09:00-10:00 settles only at 10:15: today's hours until 09:00.
    assert_eq!(st.hours, 2 * 9, "{st:?}");
    let mark = store.dirty_mark(gw.id).await.unwrap().unwrap();
    assert_eq!(mark.from_ms, today + 9 * HOUR);
    let count = async |a: i64, b: i64| {
        let sums = store.rollup_sums("always/hour", a, b).await.unwrap();
        sums.iter().find(|s| s.device_id == gw.id).map(|s| s.days)
    };
    assert_eq!(count(today, today + 10 * HOUR).await, Some(9));
    assert_eq!(count(d, d + 7 * DAY).await, Some(7 * 24));

    let windows = [
        (today, now(), "today so far"),
        (today + 30 * MIN, today + 9 * HOUR, "this morning"),
        (
            d + 4 * DAY + 9 * HOUR,
            d + 4 * DAY + 17 * HOUR,
            "a day inside an outage",
        ),
        (
            d + 2 * DAY + 22 * HOUR + 10 * MIN,
            d + 3 * DAY + HOUR + 5 * MIN,
            "around an outage over midnight",
        ),
        (d + 5 * HOUR + 30 * MIN, now(), "a week and a bit"),
        (
            d + 6 * DAY + 30 * MIN,
            d + 6 * DAY + 3 * HOUR + 30 * MIN,
            "a sleep",
        ),
    ];
    for (from, to, what) in windows {
        for sched in ["always", "office", "office:Asia/Dhaka:sun-sat:00:00-24:00"] {
            let q = query(from, to, sched);
            let got = report::run_report(store.as_ref(), &q, None, now())
                .await
                .unwrap();
            same(
                &got.rows,
                &truth(store.as_ref(), &q).await,
                &format!("{what}, {sched}"),
            );
        }
    }

    // The report reads the hour rows: a row changed by 7 ms shows.
    let h = d + 3 * DAY + 10 * HOUR;
    let recs = report::all_records(store.as_ref(), gw).await.unwrap();
    let tl = uptime::timeline(&recs, h - MIN, h + HOUR, now(), &Params::default());
    let mut row = rollup::day_row(
        "always/hour",
        &Schedule::Always,
        gw.id,
        &tl,
        &recs,
        h,
        h + HOUR,
        now(),
    );
    row.online_ms += 7;
    assert!(
        store
            .put_rollups(gw.id, &[row], &[], mark.version, mark.from_ms)
            .await
            .unwrap()
    );
    let q = query(h - HOUR, h + 2 * HOUR, "always");
    let online = |rows: &[Row]| rows.iter().find(|r| r.group == "gw").unwrap().online_ms;
    let got = report::run_report(store.as_ref(), &q, None, now())
        .await
        .unwrap();
    assert_eq!(
        online(&got.rows),
        online(&truth(store.as_ref(), &q).await) + 7
    );

    // A device whose morning arrives in two parts: today's hours are first
    // rolled up without the second part.
    let (late, _) = devices::add_device(store.as_ref(), "late", None, d)
        .await
        .unwrap();
    let mut g = Recs::new();
    let a = today + 7 * HOUR;
    g.start(a, "late-boot");
    g.link(a, "wlan0", LinkKind::Wifi, LinkState::Down, LinkState::Up);
    run(&mut g, a, today + 9 * HOUR + 50 * MIN, |_| true);
    let cut = g.out.iter().position(|r| r.at > today + 8 * HOUR).unwrap();
    ingest(store.as_ref(), &late, &g.out[..cut]).await;
    rounds(&store, now()).await;
    let q = query(today, now(), "always");
    let lonely = |rows: &[Row]| rows.iter().find(|r| r.group == "late").unwrap().clone();
    let before = report::run_report(store.as_ref(), &q, None, now())
        .await
        .unwrap();
    same(
        &before.rows,
        &truth(store.as_ref(), &q).await,
        "late: first part",
    );
    // The rest lands: the report is right at once (from the records) ...
    ingest(store.as_ref(), &late, &g.out[cut..]).await;
    let want = truth(store.as_ref(), &q).await;
    assert!(lonely(&want).online_ms > lonely(&before.rows).online_ms + HOUR);
    let mid = report::run_report(store.as_ref(), &q, None, now())
        .await
        .unwrap();
    same(&mid.rows, &want, "late: second part, before the round");
    // ... and the next round rolls today's hours from the lowered mark
    // (07:00, what the first record after the cut can change) up again.
    let st = rounds(&store, now()).await;
    assert_eq!((st.devices, st.days, st.hours), (1, 0, 2), "{st:?}");
    let after = report::run_report(store.as_ref(), &q, None, now())
        .await
        .unwrap();
    same(&after.rows, &want, "late: second part, rolled up");
    let sums = store
        .rollup_sums("always/hour", today, today + 9 * HOUR)
        .await
        .unwrap();
    let rolled = sums.iter().find(|s| s.device_id == late.id).unwrap();
    assert_eq!(rolled.online_ms, 2 * HOUR);
}
