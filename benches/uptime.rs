//! Benchmarks of uptime reports and timelines on the collector's roll-ups
//! (issue #5). Prints figures against the targets, never pass/fail:
//!
//! - `report`: the month report by district (64 districts of 1,600 offices,
//!   10,000 devices × 30 days, schedules `office` and `always`) from day
//!   roll-ups written straight into the store with `put_rollups`, and the
//!   same over the month and 14 hours of the next day and over those 14
//!   hours alone (hour rows); each device also gets one record after the
//!   window so that its dirty mark says its roll-ups are current. Target
//!   ≤ 1000 ms.
//! - `timeline`: one device with 31 days of raw records (a heartbeat and a
//!   summary per link every minute, link transitions, failovers), rolled up
//!   by the maintainer (timed: ms per device-day with its hours; then the
//!   last day as it comes, records every five minutes and a round after
//!   each hour: the share of one core that 100,000 devices would take), then its 30-day timeline from the
//!   stored day timelines (target ≤ 50 ms) against the same timeline
//!   computed from the raw records.
//!
//! Both on SQLite (a file in a temporary directory) and, when
//! `LINKWATCH_TEST_PG_URL` is set, on PostgreSQL (a fresh schema each,
//! dropped after). `LINKWATCH_BENCH_DEVICES` sets the device count of the
//! report (default 10,000).
//!
//! `cargo bench --bench uptime -- [report] [timeline]` (none = both).
//! Without `--bench` (as under `cargo test --all-targets`) it prints one line
//! and returns.

mod common;

use common::db::Db;
use common::{ms, thousands};
use futures::StreamExt;
use linkwatch::collector::maintainer::{self, RollupSettings};
use linkwatch::collector::report::{self, RawQuery, ReportQuery};
use linkwatch::collector::rollup::{self, DayRow, Period, RTT_BUCKETS};
use linkwatch::collector::store::{self, Office};
use linkwatch::collector::timeline;
use linkwatch::collector::uptime::{self, Params};
use linkwatch::shared::schedule;
use linkwatch::wire::v1::{Body, LifecycleEvent, Record};
use linkwatch::wire::{LinkKind, LinkState};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
/// Hours of the day after the month that the cut-day reports cover.
const CUT_HOURS: i64 = 14;
/// Office hours of the `office` schedule on an open day (09:00-17:00).
const OFFICE_DAY_MS: i64 = 8 * 3_600_000;
const DIVISIONS: usize = 8;
const DISTRICTS_PER_DIVISION: usize = 8;
const UPAZILAS_PER_DISTRICT: usize = 5;
const OFFICES_PER_UPAZILA: usize = 5;
const DISTRICTS: usize = DIVISIONS * DISTRICTS_PER_DIVISION;
const OFFICES_PER_DISTRICT: usize = UPAZILAS_PER_DISTRICT * OFFICES_PER_UPAZILA;
/// Report window: 30 days (dates are Asia/Dhaka midnight).
const FROM: &str = "2026-10-01";
const TO: &str = "2026-10-31";
const REPORT_RUNS: usize = 5;
const REPORT_TARGET_MS: f64 = 1000.0;
const TIMELINE_RUNS: usize = 10;
const TIMELINE_TARGET_MS: f64 = 50.0;
/// Concurrent store calls while loading.
const LOAD_TASKS: usize = 8;
/// Records per ingest call (the protocol's batch limit).
const BATCH: usize = 5_000;
/// Devices whose per-day work the maintainer figure is extrapolated to.
const FLEET: f64 = 100_000.0;
const BOOT_ID: &str = "0b6a55f2-4c1e-4f7e-9d3a-2e8c1f0a9b77";

// ---------------------------------------------------------------------------
// Small helpers

fn instant(text: &str) -> i64 {
    report::parse_instant("bench", text).expect("bench time")
}

/// (min, median) of durations, in ms.
fn min_median(v: &mut [Duration]) -> (f64, f64) {
    v.sort();
    (ms(v[0]), ms(v[v.len() / 2]))
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn bench_devices() -> usize {
    match std::env::var("LINKWATCH_BENCH_DEVICES") {
        Ok(v) => v
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| panic!("LINKWATCH_BENCH_DEVICES = `{v}` is not a device count")),
        Err(_) => 10_000,
    }
}

// ---------------------------------------------------------------------------
// Month report by district from roll-ups

/// 8 divisions × 8 districts × 5 upazilas × 5 offices, in that order.
fn offices() -> Vec<Office> {
    let mut v = Vec::with_capacity(DISTRICTS * OFFICES_PER_DISTRICT);
    for d in 0..DIVISIONS {
        for k in 0..DISTRICTS_PER_DIVISION {
            for u in 0..UPAZILAS_PER_DISTRICT {
                for o in 0..OFFICES_PER_UPAZILA {
                    v.push(Office {
                        code: format!("div{d}-dist{k}-upz{u}-off{o}"),
                        name: format!("Office {o} of upazila {u}"),
                        division: format!("Division {d}"),
                        district: format!("District {d}.{k}"),
                        upazila: format!("Upazila {d}.{k}.{u}"),
                        hours: None,
                    });
                }
            }
        }
    }
    v
}

/// The office of device `i`: districts in turn, then offices within them,
/// so any number of devices spreads over every district.
fn office_of(offices: &[Office], i: usize) -> &str {
    let district = i % DISTRICTS;
    let slot = (i / DISTRICTS) % OFFICES_PER_DISTRICT;
    &offices[district * OFFICES_PER_DISTRICT + slot].code
}

/// Is the local day starting at `day` an office day (Sunday to Thursday)?
fn office_open(tz: &jiff::tz::TimeZone, day: i64) -> bool {
    use jiff::civil::Weekday;
    let date = jiff::Timestamp::from_millisecond(day)
        .expect("day")
        .to_zoned_datetime(tz.clone())
        .date();
    !matches!(date.weekday(), Weekday::Friday | Weekday::Saturday)
}

/// Plausible day rows of one device and schedule over `days`, `span(day)`
/// the schedule's open time that day; `cont_ok` when the schedule is open on
/// both sides of midnight.
fn day_rows(
    rng: &mut StdRng,
    key: &str,
    device_id: i64,
    days: &[i64],
    span: impl Fn(i64) -> i64,
    cont_ok: bool,
    computed_ms: i64,
) -> Vec<DayRow> {
    let mut rows = Vec::with_capacity(days.len());
    let mut prev_tail = 0;
    for &day in days {
        let total = span(day);
        let mut r = DayRow {
            schedule: key.to_string(),
            device_id,
            day_ms: day,
            computed_ms,
            ..Default::default()
        };
        if total == 0 {
            rows.push(r);
            prev_tail = 0;
            continue;
        }
        // Mostly online; some offline, now and then not running or no data.
        let frac = |rng: &mut StdRng, max: f64| (total as f64 * rng.random_range(0.0..max)) as i64;
        let offline = if rng.random_bool(0.4) {
            frac(rng, 0.15)
        } else {
            0
        };
        let not_running = if rng.random_bool(0.1) {
            frac(rng, 0.1)
        } else {
            0
        };
        let no_data = if rng.random_bool(0.03) {
            frac(rng, 0.5).min(total - offline - not_running)
        } else {
            0
        };
        r.offline_ms = offline;
        r.not_running_ms = not_running;
        r.no_data_ms = no_data;
        r.online_ms = total - offline - not_running - no_data;
        let mobile = (r.online_ms as f64 * rng.random_range(0.0..0.3)) as i64;
        let wifi = if rng.random_bool(0.2) {
            (r.online_ms as f64 * rng.random_range(0.0..0.2)) as i64
        } else {
            0
        };
        r.mobile_ms = mobile;
        r.wifi_ms = wifi;
        r.broadband_ms = r.online_ms - mobile - wifi;
        let down = offline + not_running;
        if down > 0 {
            r.outages = rng.random_range(1..=4);
            r.outage_ms = down;
            r.longest_ms = down / r.outages + rng.random_range(0..=down / (2 * r.outages) + 1);
            r.longest_ms = r.longest_ms.min(down);
        }
        // About 20 % of days have an outage at one end or both.
        if prev_tail > 0 && cont_ok && rng.random_bool(0.5) {
            r.cont = true;
            r.head_ms = rng.random_range(MINUTE_MS..=3_600_000);
        } else if rng.random_bool(0.1) {
            r.head_ms = rng.random_range(MINUTE_MS..=3_600_000);
        }
        if rng.random_bool(0.1) {
            r.tail_ms = rng.random_range(MINUTE_MS..=3_600_000);
        }
        if r.head_ms > 0 && rng.random_bool(0.02) {
            r.whole = true;
            r.head_ms = total;
            r.tail_ms = total;
        }
        // (Hour rows: an outage at an end is no longer than the hour.)
        r.head_ms = r.head_ms.min(total);
        r.tail_ms = r.tail_ms.min(total);
        prev_tail = r.tail_ms;
        r.failovers = rng.random_range(0..=3);
        // Two links probed 20 times a minute while open.
        let sent = (total / MINUTE_MS * 2 * 20) as f64;
        r.sent = sent;
        r.lost = (sent * rng.random_range(0.0..0.03)).round();
        let answered = r.sent - r.lost;
        let mut rtt = [0.0; RTT_BUCKETS];
        let weights: Vec<f64> = (0..4).map(|_| rng.random_range(0.1..1.0)).collect();
        let sum: f64 = weights.iter().sum();
        for (i, w) in weights.iter().enumerate() {
            let b = rollup::rtt_bucket(rng.random_range(8.0..40.0) * (1.0 + i as f64));
            rtt[b] += answered * w / sum;
        }
        r.rtt = rtt;
        rows.push(r);
    }
    rows
}

/// Run `n` tasks `f(i)` with [`LOAD_TASKS`] at a time.
async fn for_each_concurrent<F, Fut>(n: usize, f: F)
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    futures::stream::iter(0..n)
        .map(f)
        .buffer_unordered(LOAD_TASKS)
        .collect::<Vec<()>>()
        .await;
}

async fn bench_report(url: String, backend: &'static str) {
    let n = bench_devices();
    println!(
        "report [{backend}]: month report by district, {} devices × 30 days",
        thousands(n as u64)
    );
    let store = store::open(&url).await.expect("open store");
    let tz = rollup::day_tz();
    let from = instant(FROM);
    let to = instant(TO);
    let now = instant("2026-11-20");
    let after = instant("2026-11-15T12:00:00+06:00");
    let days = rollup::days_between(&tz, rollup::day_start(&tz, from), to);
    assert_eq!(days.len(), 30, "30 local days from {FROM} to {TO}");
    let office_key =
        rollup::schedule_key(&schedule::parse_schedule("office").expect("office schedule"));

    let t = Instant::now();
    let offices = offices();
    store.upsert_offices(&offices).await.expect("offices");
    let offices = Arc::new(offices);
    let created = from - DAY_MS;
    let ids: Arc<std::sync::Mutex<Vec<(usize, i64)>>> = Default::default();
    for_each_concurrent(n, |i| {
        let (store, offices, ids) = (store.clone(), offices.clone(), ids.clone());
        async move {
            let d = store
                .add_device(
                    &format!("bench-{i:06}"),
                    Some(office_of(&offices, i)),
                    &format!("{i:064x}"),
                    created,
                )
                .await
                .expect("add device");
            ids.lock().expect("ids").push((i, d.id));
        }
    })
    .await;
    let mut ids = std::mem::take(&mut *ids.lock().expect("ids"));
    ids.sort_unstable();
    let registered = t.elapsed();

    // Day rows, then one record after the window (the dirty mark that says
    // the roll-ups up to it are current). Sums of online time per schedule,
    // to check the report took them.
    let t = Instant::now();
    // Online time of the rows: [always, office] × [days, hours].
    let sums: Arc<std::sync::Mutex<[[i64; 2]; 2]>> = Default::default();
    let ids = Arc::new(ids);
    let hours: Vec<i64> = (0..CUT_HOURS).map(|h| to + h * HOUR_MS).collect::<Vec<_>>();
    for_each_concurrent(ids.len(), |k| {
        let (store, ids, sums, tz, days, office_key, hours) = (
            store.clone(),
            ids.clone(),
            sums.clone(),
            tz.clone(),
            days.clone(),
            office_key.clone(),
            hours.clone(),
        );
        async move {
            let (i, id) = ids[k];
            let mut rng = StdRng::seed_from_u64(i as u64);
            let mut rows = Vec::new();
            for (period, starts, span) in [
                (Period::Day, &days, DAY_MS),
                (Period::Hour, &hours, HOUR_MS),
            ] {
                let p = usize::from(period == Period::Hour);
                let always = day_rows(
                    &mut rng,
                    &period.key("always"),
                    id,
                    starts,
                    |_| span,
                    true,
                    now,
                );
                let office = day_rows(
                    &mut rng,
                    &period.key(&office_key),
                    id,
                    starts,
                    |d| match period {
                        Period::Day if office_open(&tz, d) => OFFICE_DAY_MS,
                        Period::Hour if office_open(&tz, rollup::day_start(&tz, d)) => {
                            let h = (d - rollup::day_start(&tz, d)) / HOUR_MS;
                            if (9..17).contains(&h) { HOUR_MS } else { 0 }
                        }
                        _ => 0,
                    },
                    false,
                    now,
                );
                let mut s = sums.lock().expect("sums");
                s[0][p] += always.iter().map(|r| r.online_ms).sum::<i64>();
                s[1][p] += office.iter().map(|r| r.online_ms).sum::<i64>();
                drop(s);
                rows.extend(always);
                rows.extend(office);
            }
            // No mark yet (and never version -1): the rows are written, the
            // mark not moved.
            store
                .put_rollups(id, &rows, &[], -1, 0)
                .await
                .expect("put roll-ups");
            let rec = Record {
                seq: 1,
                seq_end: None,
                at: after,
                mono_ms: 1000,
                boot_id: BOOT_ID.into(),
                body: Body::Heartbeat {
                    online: true,
                    count: 1,
                },
            };
            store.ingest(id, &[rec], after).await.expect("ingest");
        }
    })
    .await;
    let loaded = t.elapsed();
    let sums = *sums.lock().expect("sums");
    println!(
        "report [{backend}]: loaded {} offices, {} devices in {:.1} s, {} day rows, {} hour rows + marks in {:.1} s",
        thousands(offices.len() as u64),
        thousands(n as u64),
        registered.as_secs_f64(),
        thousands((n * days.len() * 2) as u64),
        thousands((n * hours.len() * 2) as u64),
        loaded.as_secs_f64()
    );

    let marks = store.dirty_marks().await.expect("marks");
    let late = marks
        .iter()
        .filter(|m| rollup::day_start(&tz, m.from_ms) >= to)
        .count();
    if late != n {
        println!(
            "report [{backend}]: WARNING: {late} of {n} dirty marks are at or after the window end"
        );
    }

    let expect_rows = n.min(DISTRICTS);
    let cut = report::ts(to + CUT_HOURS * HOUR_MS);
    let windows = [
        ("the month", FROM, TO, [true, false]),
        ("the month and 14 h", FROM, cut.as_str(), [true, true]),
        ("14 h of a day", TO, cut.as_str(), [false, true]),
    ];
    for (what, wfrom, wto, parts) in windows {
        for (sched, sum) in [("office", sums[1]), ("always", sums[0])] {
            let online_sum: i64 = (0..2).filter(|&p| parts[p]).map(|p| sum[p]).sum();
            let q = ReportQuery::parse(&RawQuery {
                from: Some(wfrom),
                to: Some(wto),
                by: Some("district"),
                schedule: Some(sched),
                ..Default::default()
            })
            .expect("query");
            let mut times = Vec::with_capacity(REPORT_RUNS);
            let mut last = None;
            for _ in 0..REPORT_RUNS {
                let t = Instant::now();
                let r = report::run_report(store.as_ref(), &q, None, now)
                    .await
                    .expect("report");
                times.push(t.elapsed());
                last = Some(r);
            }
            let r = last.expect("a run");
            let (min, median) = min_median(&mut times);
            let devices: u64 = r.rows.iter().map(|x| u64::from(x.devices)).sum();
            let online: i64 = r.rows.iter().map(|x| x.online_ms).sum();
            let ok = r.rows.len() == expect_rows && devices == n as u64;
            println!(
                "report [{backend}] {what}, schedule={sched}: min {min:.1} ms, median {median:.1} ms over {REPORT_RUNS} runs \
             (target ≤ {REPORT_TARGET_MS:.0} ms: {})",
                met(median <= REPORT_TARGET_MS)
            );
            println!(
                "report [{backend}] {what}, schedule={sched}: {} rows (expected {expect_rows}), devices sum {} (expected {}): {}; \
             online time equals the roll-up rows': {}",
                r.rows.len(),
                thousands(devices),
                thousands(n as u64),
                if ok { "ok" } else { "WRONG" },
                if online == online_sum {
                    "yes (roll-ups used)".to_string()
                } else {
                    format!("NO ({online} ms, rows say {online_sum} ms)")
                }
            );
            if what == "the month" {
                report_parts(store.as_ref(), backend, sched, &q, now).await;
            }
        }
    }
}

/// The best of three of `f`, in ms.
async fn best_of_3<T, F, Fut>(mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let mut best = f64::INFINITY;
    for _ in 0..3 {
        let t = Instant::now();
        std::hint::black_box(f().await);
        best = best.min(ms(t.elapsed()));
    }
    best
}

/// Where a report's time goes: the store calls `figures_in_scope` makes,
/// each alone (best of three).
async fn report_parts(
    store: &dyn store::Store,
    backend: &str,
    sched: &str,
    q: &ReportQuery,
    now: i64,
) {
    let tz = rollup::day_tz();
    let (r0, r1) = rollup::whole_days(&tz, q.from_ms, q.to_ms);
    let r1 = r1.min(rollup::day_start(&tz, now)).max(r0);
    let key = rollup::schedule_key(&q.schedule);
    let offices = best_of_3(|| async { store.list_offices().await.expect("offices") }).await;
    let devices = best_of_3(|| async { store.list_devices().await.expect("devices") }).await;
    let sums = best_of_3(|| async { store.rollup_sums(&key, r0, r1).await.expect("sums") }).await;
    let marks = best_of_3(|| async { store.dirty_marks().await.expect("marks") }).await;
    let ends = best_of_3(|| async { store.rollup_ends(&key, r0, r1).await.expect("ends") }).await;
    let n_ends = store.rollup_ends(&key, r0, r1).await.expect("ends").len();
    println!(
        "report [{backend}] schedule={sched}: parts (best of 3): rollup_sums {sums:.1} ms, \
         rollup_ends {ends:.1} ms ({} rows), list_devices {devices:.1} ms, dirty_marks {marks:.1} ms, \
         list_offices {offices:.1} ms",
        thousands(n_ends as u64)
    );
}

// ---------------------------------------------------------------------------
// One device's 30-day timeline

/// The records of one device from `t0` for `days` days: a start, two links
/// coming up, each minute a heartbeat and a summary per link, a few link
/// outages a day (now and then both links at once), failovers, and once a
/// week ten minutes without records (the agent not running).
fn device_records(t0: i64, days: i64, rng: &mut StdRng) -> Vec<Record> {
    const LINKS: [(&str, LinkKind); 2] =
        [("eth0", LinkKind::Broadband), ("wwan0", LinkKind::Mobile)];
    let minutes = (days * DAY_MS / MINUTE_MS) as usize;
    // Per minute: link up?, agent running?
    let mut up = [vec![true; minutes], vec![true; minutes]];
    let mut running = vec![true; minutes];
    for day in 0..days as usize {
        let base = day * 1440;
        for _ in 0..rng.random_range(2..=4) {
            let start = base + rng.random_range(0..1400);
            let len = rng.random_range(3..40);
            let both = rng.random_bool(0.3);
            let end = (start + len).min(minutes);
            up[0][start..end].fill(false);
            if both {
                up[1][start..end].fill(false);
            }
        }
        if rng.random_bool(0.3) {
            let start = base + rng.random_range(0..1400);
            let end = (start + rng.random_range(5..30)).min(minutes);
            up[1][start..end].fill(false);
        }
        if day % 7 == 3 {
            let start = base + rng.random_range(60..1300);
            running[start..start + 10].fill(false);
        }
    }
    let boot_s = t0 / 1000 - 100;
    let mono = |at: i64| (at - t0 + 100_000) as u64;
    let mut out: Vec<(i64, Body)> = Vec::new();
    let start = |out: &mut Vec<(i64, Body)>, at: i64| {
        out.push((
            at,
            Body::Lifecycle {
                event: LifecycleEvent::Start,
                boot_time: Some(boot_s),
                detail: None,
            },
        ));
    };
    start(&mut out, t0);
    for (l, (name, kind)) in LINKS.iter().enumerate() {
        out.push((
            t0 + 1000 + l as i64,
            Body::LinkState {
                link: name.to_string(),
                kind: *kind,
                from: LinkState::Absent,
                to: LinkState::Up,
                reason: Some("carrier".into()),
            },
        ));
    }
    for m in 0..minutes {
        let at_start = t0 + m as i64 * MINUTE_MS;
        if !running[m] {
            continue;
        }
        if m > 0 && !running[m - 1] {
            start(&mut out, at_start + 500);
        }
        if m > 0 {
            for (l, (name, kind)) in LINKS.iter().enumerate() {
                if up[l][m] != up[l][m - 1] {
                    let (from, to) = if up[l][m] {
                        (LinkState::Down, LinkState::Up)
                    } else {
                        (LinkState::Up, LinkState::Down)
                    };
                    out.push((
                        at_start + 5_000 + l as i64,
                        Body::LinkState {
                            link: name.to_string(),
                            kind: *kind,
                            from,
                            to,
                            reason: Some(if up[l][m] { "probes ok" } else { "probes lost" }.into()),
                        },
                    ));
                }
            }
            // The default route follows eth0.
            if up[0][m] != up[0][m - 1] && up[1][m] {
                let (from, to) = if up[0][m] {
                    ("wwan0", "eth0")
                } else {
                    ("eth0", "wwan0")
                };
                out.push((
                    at_start + 6_000,
                    Body::Failover {
                        from: Some(from.into()),
                        to: Some(to.into()),
                        cause: "link_down".into(),
                        reason: String::new(),
                    },
                ));
            }
        }
        let at_end = at_start + MINUTE_MS;
        for (l, (name, kind)) in LINKS.iter().enumerate() {
            let base = if l == 0 { 18.0 } else { 70.0 };
            let (lost, rtt) = if up[l][m] {
                (
                    u32::from(rng.random_bool(0.1)),
                    Some(base * rng.random_range(0.8..1.6)),
                )
            } else {
                (20, None)
            };
            out.push((
                at_end - 2 + l as i64,
                Body::LinkMinutes {
                    link: name.to_string(),
                    kind: *kind,
                    minutes: 1,
                    sent: 20,
                    lost,
                    rtt_p50_ms: rtt,
                    rtt_p95_ms: rtt.map(|r| r * 1.5),
                    rtt_max_ms: rtt.map(|r| r * 2.5),
                    bytes: 20 * 84,
                },
            ));
        }
        out.push((
            at_end,
            Body::Heartbeat {
                online: up[0][m] || up[1][m],
                count: 1,
            },
        ));
    }
    out.sort_by_key(|(at, _)| *at);
    out.into_iter()
        .enumerate()
        .map(|(i, (at, body))| Record {
            seq: i as u64 + 1,
            seq_end: None,
            at,
            mono_ms: mono(at),
            boot_id: BOOT_ID.into(),
            body,
        })
        .collect()
}

async fn bench_timeline(url: String, backend: &'static str) {
    let store = store::open(&url).await.expect("open store");
    let t0 = instant("2026-10-01");
    let data_end = instant("2026-11-01");
    let (from, to) = (instant(FROM), instant(TO));
    let now = instant("2026-11-20");
    let d = store
        .add_device(
            "timeline-device",
            None,
            &format!("{:064x}", 1u64 << 40),
            t0 - DAY_MS,
        )
        .await
        .expect("add device");
    let mut rng = StdRng::seed_from_u64(7);
    let recs = device_records(t0, (data_end - t0) / DAY_MS, &mut rng);
    // Everything before the last day's first quarter of an hour first (when
    // the maintainer rolls the 30 days up); then the last day as it comes.
    let last_day = data_end - DAY_MS;
    let split = recs.partition_point(|r| r.at < last_day + 15 * MINUTE_MS);
    let t = Instant::now();
    let mut acked = 0;
    for chunk in recs[..split].chunks(BATCH) {
        let ack = store
            .ingest(d.id, chunk, chunk[chunk.len() - 1].at)
            .await
            .expect("ingest");
        acked = ack.acked;
    }
    println!(
        "timeline [{backend}]: ingested {} records (30 days and 15 min, one device) in {:.1} s, acked {}",
        thousands(split as u64),
        t.elapsed().as_secs_f64(),
        thousands(acked)
    );

    let settings = RollupSettings {
        raw_retention_days: None,
        ..Default::default()
    };
    // The maintainer runs a quarter of an hour after the 30th day ended.
    let t = Instant::now();
    let (mut devices, mut days, mut rounds) = (0, 0, 0);
    loop {
        let st = maintainer::run_once(&store, &settings, last_day + 15 * MINUTE_MS)
            .await
            .expect("maintainer round");
        rounds += 1;
        if st.devices == 0 {
            break;
        }
        devices += st.devices;
        days += st.days;
        assert!(rounds < 100, "maintainer does not settle");
    }
    let took = ms(t.elapsed());
    let per_day = took / days.max(1) as f64;
    println!(
        "timeline [{backend}]: maintainer, back-fill: {days} device-days with their hours ({devices} device rounds, \
         {rounds} rounds, 2 schedules) in {took:.0} ms = {per_day:.2} ms per device-day (wall time)"
    );

    // The last day as it happens: records arrive every five minutes, and a
    // quarter of an hour after each hour ends the maintainer rolls it up (at
    // the 24th, the whole day: its day row, hours and timeline again).
    let mut hourly = Vec::with_capacity(24);
    let mut at = split;
    let mut upload = |upto_ms: i64| {
        let upto = recs.partition_point(|r| r.at < upto_ms);
        let batch = &recs[at..upto];
        at = upto;
        batch
    };
    for h in 1..=24 {
        let end = last_day + h * HOUR_MS;
        let mut slot = end - 45 * MINUTE_MS;
        while slot <= end + 15 * MINUTE_MS {
            let batch = upload(slot);
            if !batch.is_empty() {
                store.ingest(d.id, batch, slot).await.expect("ingest");
            }
            slot += 5 * MINUTE_MS;
        }
        let t = Instant::now();
        let st = maintainer::run_once(&store, &settings, end + 15 * MINUTE_MS)
            .await
            .expect("maintainer round");
        hourly.push(t.elapsed());
        assert_eq!(st.devices, 1, "hour {h}: the device is due once");
        assert_eq!(
            (st.days, st.hours),
            if h == 24 { (1, 0) } else { (0, 1) },
            "hour {h}: what the round computed"
        );
    }
    let day_total: f64 = hourly.iter().map(|x| ms(*x)).sum();
    let (hmin, hmed) = min_median(&mut hourly[..23].to_vec());
    println!(
        "timeline [{backend}]: maintainer, live: one hour rolled up in min {hmin:.1} ms, median {hmed:.1} ms; \
         a whole day of hourly rounds (23 hours + the day) {day_total:.0} ms per device"
    );
    println!(
        "timeline [{backend}]: maintainer at {} devices: {:.1} % of one core (hourly rounds, each device every hour)",
        thousands(FLEET as u64),
        day_total * FLEET / DAY_MS as f64 * 100.0
    );

    let dev = store
        .device_by_name("timeline-device")
        .await
        .expect("device")
        .expect("registered");
    let mut stored_times = Vec::with_capacity(TIMELINE_RUNS);
    let mut stored = None;
    for _ in 0..TIMELINE_RUNS {
        let t = Instant::now();
        let tl = timeline::device_timeline_of(store.as_ref(), &dev, from, to, now)
            .await
            .expect("timeline");
        stored_times.push(t.elapsed());
        stored = Some(tl);
    }
    let mut raw_times = Vec::with_capacity(TIMELINE_RUNS);
    let mut raw = None;
    for _ in 0..TIMELINE_RUNS {
        let t = Instant::now();
        let recs = report::records_around(store.as_ref(), &dev, from, to)
            .await
            .expect("records");
        let tl = uptime::timeline(&recs, from, to, now, &Params::default());
        raw_times.push(t.elapsed());
        raw = Some(tl);
    }
    let (smin, smed) = min_median(&mut stored_times);
    let (rmin, rmed) = min_median(&mut raw_times);
    let (stored, raw) = (stored.expect("a run"), raw.expect("a run"));
    println!(
        "timeline [{backend}]: 30-day timeline from roll-ups: min {smin:.1} ms, median {smed:.1} ms over {TIMELINE_RUNS} runs \
         (target ≤ {TIMELINE_TARGET_MS:.0} ms: {})",
        met(smed <= TIMELINE_TARGET_MS)
    );
    println!(
        "timeline [{backend}]: 30-day timeline from raw records: min {rmin:.1} ms, median {rmed:.1} ms; \
         raw / roll-ups = {:.1}× (median)",
        rmed / smed
    );
    // Windows that cut a day (or end now) compute the cut days from the
    // records: what that costs per device.
    for (what, a, b) in [
        (
            "part of a day (00:00-14:00 of the last day)",
            instant("2026-10-31"),
            instant("2026-10-31T14:00:00+06:00"),
        ),
        (
            "30 days and 14 h (rolled-up days + a cut day)",
            instant("2026-10-01"),
            instant("2026-10-31T14:00:00+06:00"),
        ),
    ] {
        let (fa, fb) = (report::ts(a), report::ts(b));
        let q = ReportQuery::parse(&RawQuery {
            from: Some(&fa),
            to: Some(&fb),
            by: Some("device"),
            schedule: Some("always"),
            ..Default::default()
        })
        .expect("query");
        let mut times = Vec::with_capacity(TIMELINE_RUNS);
        for _ in 0..TIMELINE_RUNS {
            let t = Instant::now();
            report::run_report(store.as_ref(), &q, None, now)
                .await
                .expect("report");
            times.push(t.elapsed());
        }
        let (min, median) = min_median(&mut times);
        println!(
            "timeline [{backend}]: report over {what}, one device: min {min:.1} ms, median {median:.1} ms \
             (× 10,000 devices, one after another: {:.0} s)",
            median * 10_000.0 / 1000.0
        );
    }

    let links: usize = stored.links.values().map(|(_, v)| v.len()).sum();
    println!(
        "timeline [{backend}]: {} device intervals, {links} link intervals; same as from raw: {}",
        stored.device.len(),
        if stored == raw { "yes" } else { "NO" }
    );
    if stored != raw {
        let first = stored
            .device
            .iter()
            .zip(&raw.device)
            .position(|(a, b)| a != b);
        println!(
            "timeline [{backend}]: raw has {} device intervals; first difference at device interval {first:?}",
            raw.device.len()
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs benchmarks as tests: do nothing then.
        println!("uptime benchmarks run only under `cargo bench --bench uptime`");
        return;
    }
    let known = ["report", "timeline"];
    let mut selected = Vec::new();
    for a in args.iter().filter(|a| !a.starts_with('-')) {
        if known.contains(&a.as_str()) {
            selected.push(a.as_str());
        } else {
            eprintln!("unknown benchmark `{a}`: choose from report, timeline (none = both)");
            std::process::exit(2);
        }
    }
    let want = |s: &str| selected.is_empty() || selected.contains(&s);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        if want("report") {
            Db::sqlite().run(bench_report).await;
            match Db::postgres_from_env().await {
                Some(db) => db.run(bench_report).await,
                None => println!("report [PostgreSQL]: skipped (LINKWATCH_TEST_PG_URL not set)"),
            }
        }
        if want("timeline") {
            Db::sqlite().run(bench_timeline).await;
            match Db::postgres_from_env().await {
                Some(db) => db.run(bench_timeline).await,
                None => {
                    println!("timeline [PostgreSQL]: skipped (LINKWATCH_TEST_PG_URL not set)")
                }
            }
        }
    });
}
