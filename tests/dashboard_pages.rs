//! The dashboard's pages over loopback HTTP on SQLite and PostgreSQL
//! (`LINKWATCH_TEST_PG_URL`): fleet counts that match the data, drill-down
//! from division to a device, the device's facts and day timeline, a viewer
//! limited to a branch refused another branch's pages (404, as the API
//! does), HTML in names shown as text, odd parameters answered 400, and an
//! attacker's tries at the new endpoints.

mod common;

use common::db::{TestDb, on_both};
use common::records::Recs;
use common::web::{Browser, PW, Page, between, default_options, load, serve, signed_in};
use linkwatch::collector::access::Role;
use linkwatch::collector::alerts::branch::RouteLevel;
use linkwatch::collector::alerts::model::{AlertKey, AlertKind, Decisions, NewAlert, Subject};
use linkwatch::collector::devices;
use linkwatch::collector::store::Store;
use linkwatch::wire::v1::{Body, Record};
use linkwatch::wire::{LinkKind, LinkState};
use std::sync::Arc;
use std::time::Duration;

on_both!(
    fleet_counts_drill_down_and_device_page,
    viewers_see_only_their_branch,
    names_are_escaped_and_odd_parameters_are_400,
    attacker_tries,
    week_worst_offices_and_open_alerts,
    states_follow_new_records,
    a_new_process_starts_from_the_states_judged_before,
    search_within_the_branch_escaped_bounded_and_paginated,
    admins_manage_users_and_nobody_else_can,
);

fn now() -> i64 {
    linkwatch::shared::time::now_ms()
}

async fn fleet_counts_drill_down_and_device_page(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let web = serve(store.clone(), default_options()).await;
    let mut b = signed_in(&web, "admin").await;

    let fleet = b.get("/fleet").await;
    assert_eq!(fleet.status, 200, "{}", fleet.text);
    let counts: Vec<String> = [
        "online",
        "offline",
        "not_running",
        "silent",
        "no_data",
        "total",
    ]
    .iter()
    .map(|s| fleet.count(s))
    .collect();
    assert_eq!(counts, ["2", "1", "1", "1", "2", "7"], "{}", fleet.text);
    assert!(
        fleet
            .text
            .contains("href=\"/fleet?level=division&amp;name=Dhaka\"")
    );

    // Division → district → upazila → office → devices.
    let path = [
        "/fleet?level=division&name=Dhaka",
        "/fleet?level=district&name=Dhaka+%2F+Dhaka",
        "/fleet?level=upazila&name=Dhaka+%2F+Dhaka+%2F+Savar",
        "/fleet?level=office&name=dhk-savar",
    ];
    for p in path {
        let page = b.get(p).await;
        assert_eq!(page.status, 200, "{p}: {}", page.text);
        assert_eq!(page.count("online"), "1", "{p}");
        assert_eq!(page.count("total"), "6", "{p}");
    }
    let office = b.get(path[3]).await;
    assert!(
        office.text.contains("href=\"/devices/savar-off\""),
        "{}",
        office.text
    );
    assert!(!office.text.contains("ctg-on"));

    // The device: facts, its state now, the last 24 hours' timeline (at
    // any hour: just after midnight in Dhaka too), each link.
    let dev = b.get("/devices/savar-on").await;
    assert_eq!(dev.status, 200, "{}", dev.text);
    for want in [
        "0.1.0-test",
        "Debian GNU/Linux 13",
        "savar-on.local",
        "data-now=\"online\"",
        // What its agent still had to send at its last upload.
        "<dd data-backlog=\"1234\">1234 records, oldest ",
        "<svg",
        "data-state=\"online\"",
    ] {
        assert!(dev.text.contains(want), "{want}: {}", dev.text);
    }
    assert!(
        dev.text
            .contains("data-link=\"eth0\"><td>eth0</td><td data-state=\"up\""),
        "{}",
        dev.text
    );
    assert!(
        dev.text
            .contains("data-link=\"wwan0\"><td>wwan0</td><td data-state=\"down\"")
    );
    let off = b.get("/devices/savar-off").await;
    assert!(off.text.contains("data-now=\"offline\""));
    assert!(off.text.contains("<dd data-backlog=\"0\">nothing</dd>"));
    assert!(off.text.contains("data-state=\"offline\""));
    // Its probes, its outage with the cause, and the failover away from
    // the link that went down; the same numbers the records say.
    for want in [
        "data-loss=\"34.2\"",
        "data-rtt=\"12.5\"",
        "data-outages=\"1\"",
        "data-cause=\"all_links_down\"",
        "every link down",
        "data-failovers=\"1\"",
        // eth0 to no link: a change of the link in use, not a failover the
        // reports count (one link to another), and the page says so.
        "<em>no link</em>",
        "data-counted=\"0\"",
    ] {
        assert!(off.text.contains(want), "{want}: {}", off.text);
    }
    // ctg-on started a minute before its link came up (an outage of a
    // minute, as the reports count it) and never failed over.
    let quiet = b.get("/devices/ctg-on").await;
    // Its agent reported no backlog (an older agent): unknown.
    assert!(
        quiet.text.contains("<dd data-backlog=\"\">unknown</dd>"),
        "{}",
        quiet.text
    );
    assert!(quiet.text.contains("data-outages=\"1\""), "{}", quiet.text);
    assert!(
        quiet.text.contains("data-failovers=\"0\""),
        "{}",
        quiet.text
    );
    // Without a day, the window ends now: "Last 24 hours", paging back to
    // yesterday's whole day, and a day's page links back to now.
    let today = jiff::Timestamp::from_millisecond(now())
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Dhaka").unwrap())
        .date();
    let yesterday = today.yesterday().unwrap();
    assert!(dev.text.contains("Timeline: Last 24 hours"), "{}", dev.text);
    assert!(
        dev.text
            .contains(&format!("href=\"/devices/savar-on?day={yesterday}\"")),
        "{}",
        dev.text
    );
    assert!(!dev.text.contains("rel=\"next\""));
    assert!(dev.text.contains("href=\"/devices/savar-on?span=week\""));
    let week = b.get("/devices/savar-on?span=week").await;
    assert!(week.text.contains("Timeline: Last 7 days"), "{}", week.text);
    assert!(week.text.contains("data-state=\"up\""), "{}", week.text);
    let on_day = b.get(&format!("/devices/savar-on?day={today}")).await;
    assert!(
        on_day
            .text
            .contains("href=\"/devices/savar-on\" data-rolling"),
        "{}",
        on_day.text
    );
    // Another day, in the past: a timeline without data, not an error.
    let old = b.get("/devices/savar-on?day=2026-01-01").await;
    assert_eq!(old.status, 200);
    assert!(
        old.text.contains("data-state=\"no_data\"") || !old.text.contains("data-state=\"online\"")
    );

    // A week and 30 days up to a day: the same device timeline over the
    // longer window, a mark a day, paging by the span.
    for (span, days) in [("week", 7i64), ("month", 30)] {
        let p = b
            .get(&format!("/devices/savar-on?day={today}&span={span}"))
            .await;
        assert_eq!(p.status, 200, "{span}: {}", p.text);
        let first = today.checked_sub(jiff::Span::new().days(days - 1)).unwrap();
        assert!(
            p.text.contains(&format!("{first} – {today}")),
            "{span}: {}",
            p.text
        );
        // Its few minutes of records are under a pixel here: the band shows
        // the window without data, then where the records start.
        for state in ["no_data", "offline", "up"] {
            assert!(
                p.text.contains(&format!("data-state=\"{state}\"")),
                "{span} {state}: {}",
                p.text
            );
        }
        assert_eq!(p.text.matches("<line").count(), days as usize + 1, "{span}");
        let before = today.checked_sub(jiff::Span::new().days(days)).unwrap();
        assert!(
            p.text.contains(&format!(
                "href=\"/devices/savar-on?day={before}&amp;span={span}\""
            )),
            "{span}: {}",
            p.text
        );
        assert!(!p.text.contains("rel=\"next\""), "no page after today");
        assert!(
            p.text
                .contains("Probe quality and failovers are shown on a day"),
            "{span}: {}",
            p.text
        );
    }
    assert_eq!(b.get("/devices/savar-on?span=year").await.status, 400);

    // In Bangla, the same numbers in Bangla digits.
    let csrf = fleet.csrf();
    b.post(
        "/lang",
        &[("csrf", &csrf), ("lang", "bn"), ("back", "/fleet")],
    )
    .await;
    let bn = b.get("/fleet").await;
    assert_eq!(bn.count("total"), "৭");
    assert_eq!(bn.count("online"), "২");
}

async fn viewers_see_only_their_branch(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let web = serve(store.clone(), default_options()).await;
    let mut ctg = signed_in(&web, "ctg").await;
    let fleet = ctg.get("/fleet").await;
    assert_eq!(fleet.count("total"), "1");
    assert_eq!(fleet.count("online"), "1");
    assert!(!fleet.text.contains("name=Dhaka"), "{}", fleet.text);
    assert_eq!(ctg.get("/devices/ctg-on").await.status, 200);
    // Another branch's device is as missing as a device that does not exist.
    let theirs = ctg.get("/devices/savar-on").await;
    let none = ctg.get("/devices/no-such-device").await;
    assert_eq!(theirs.status, 404);
    assert_eq!(none.status, 404);
    assert_eq!(theirs.text, none.text);
    for p in [
        "/fleet?level=division&name=Dhaka",
        "/fleet?level=office&name=dhk-savar",
        "/fleet?level=district&name=Nowhere",
    ] {
        assert_eq!(ctg.get(p).await.status, 404, "{p}");
    }
    // An upazila viewer: only Savar's devices, the rest 404.
    let mut savar = signed_in(&web, "savar").await;
    let f = savar.get("/fleet").await;
    assert_eq!(f.count("total"), "6");
    assert_eq!(savar.get("/devices/savar-off").await.status, 200);
    assert_eq!(savar.get("/devices/ctg-on").await.status, 404);
    assert_eq!(
        savar
            .get("/fleet?level=division&name=Chattogram")
            .await
            .status,
        404
    );
}

async fn names_are_escaped_and_odd_parameters_are_400(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let web = serve(store.clone(), default_options()).await;
    let mut b = signed_in(&web, "admin").await;
    let office = b
        .get("/fleet?level=upazila&name=Dhaka+%2F+Dhaka+%2F+Savar")
        .await;
    assert!(!office.text.contains("<script>"), "{}", office.text);
    assert!(
        office
            .text
            .contains("&lt;script&gt;alert('office')&lt;/script&gt;")
    );
    let list = b.get("/fleet?level=office&name=dhk-savar").await;
    assert!(!list.text.contains("<img"), "{}", list.text);
    assert!(list.text.contains("&lt;img src=x onerror=alert(1)&gt;"));
    let evil = b
        .get("/devices/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
        .await;
    assert_eq!(evil.status, 200, "{}", evil.text);
    assert!(!evil.text.contains("<img"));
    assert!(evil.text.contains("&lt;img src=x onerror=alert(1)&gt;"));

    for p in [
        "/fleet?page=0",
        "/fleet?page=abc",
        "/fleet?page=99999999999999999999",
        "/fleet?page=1&page=2",
        "/fleet?divison=Dhaka",
        "/fleet?level=planet&name=x",
        "/fleet?level=division",
        "/fleet?name=Dhaka",
        "/fleet?page=%ZZ",
        "/devices/savar-on?day=yesterday",
        "/devices/savar-on?span=year",
        "/devices/savar-on?span=week&span=day",
        "/devices/savar-on?day=2026-02-30",
        "/devices/savar-on?day=9999-01-01",
        "/devices/savar-on?from=1",
        "/signin?lang=fr",
    ] {
        let page = b.get(p).await;
        assert_eq!(page.status, 400, "{p}: {}", page.text);
        assert!(page.header("content-type").starts_with("text/html"), "{p}");
    }
    // A page past the end is an empty page, not an error.
    assert_eq!(b.get("/fleet?page=500").await.status, 200);
}

async fn attacker_tries(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let web = serve(store.clone(), default_options()).await;
    let mut b = signed_in(&web, "admin").await;
    let page = b.get("/fleet").await;
    // Every page forbids scripts and framing and is not cached.
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), "DENY");
    assert_eq!(page.header("cache-control"), "no-store");
    assert!(!page.text.contains("<script"));
    // The stylesheet is served from the binary.
    let css = b.get("/static/app.css").await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").starts_with("text/css"));
    // No open redirect through the language switch.
    let csrf = page.csrf();
    for back in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "/api/v1/devices",
    ] {
        let p = b
            .post("/lang", &[("csrf", &csrf), ("lang", "en"), ("back", back)])
            .await;
        assert_eq!(p.location.as_deref(), Some("/fleet"), "{back}");
    }
    // Oversized and malformed form bodies: refused (bad form 400, no valid
    // token 403), never a 500, and nothing changed.
    let big = format!("csrf={csrf}&lang=en&back={}", "a".repeat(20_000));
    assert_eq!(b.post_raw("/lang", big).await.status, 413);
    for body in ["%", "csrf=%ZZ", "\u{0}\u{1}", "csrf=a&csrf=b"] {
        let s = b.post_raw("/lang", body.to_string()).await.status;
        assert!(s == 400 || s == 403, "{body:?}: {s}");
    }
    assert!(b.get("/fleet").await.text.contains("lang=\"en\""));
    // Wrong methods, traversal, odd paths.
    assert_eq!(b.get("/signout").await.status, 405);
    assert_eq!(b.get("/devices/..%2F..%2Fetc%2Fpasswd").await.status, 404);
    assert_eq!(
        b.get(&format!("/devices/{}", "x".repeat(5000)))
            .await
            .status,
        404
    );
    // Injection-shaped names sign in as nobody.
    let mut a = Browser::new(&web);
    for name in ["' OR 1=1 --", "admin' --", &"a".repeat(2_000)] {
        let s = a.sign_in(name, PW).await.status;
        assert!(s == 401 || s == 429, "{}: {s}", &name[..name.len().min(20)]);
    }
    // Made-up, oversized and API-token cookies are no session.
    let (_, api_token) = devices::add_api_token(store.as_ref(), "t", Role::Admin, None, now())
        .await
        .unwrap();
    for v in ["lw1_madeup", &"x".repeat(4000), api_token.as_str()] {
        let mut c = Browser::new(&web);
        c.cookies.insert("lw_session".into(), v.to_string());
        let p = c.get("/fleet").await;
        assert_eq!(p.status, 303, "{v}");
    }
    // A session cookie is no API token.
    let p = b.get("/api/v1/devices").await;
    assert_eq!(p.status, 401);
}

/// An hour of office time (10:00 to 11:00 in Dhaka, Sunday to Thursday)
/// among the last 7 whole days: its start.
fn office_hour_last_week() -> i64 {
    let tz = jiff::tz::TimeZone::get("Asia/Dhaka").unwrap();
    let today = jiff::Timestamp::from_millisecond(now())
        .unwrap()
        .to_zoned_datetime(tz.clone())
        .date();
    let day = (1..=7)
        .map(|k| today.checked_sub(jiff::Span::new().days(k)).unwrap())
        .find(|d| {
            !matches!(
                d.weekday(),
                jiff::civil::Weekday::Friday | jiff::civil::Weekday::Saturday
            )
        })
        .unwrap();
    tz.to_timestamp(day.at(10, 0, 0, 0))
        .unwrap()
        .as_millisecond()
}

/// A device in `office` running from `t0` for an hour (then stopped
/// cleanly), online the first `online_min` minutes and offline (its one link
/// down) after.
async fn week_device(
    store: &dyn linkwatch::collector::store::Store,
    name: &str,
    office: &str,
    t0: i64,
    online_min: i64,
) {
    const MIN: i64 = 60_000;
    let mut r = Recs::new();
    r.start(t0, &format!("boot-{name}"));
    r.link(
        t0,
        "eth0",
        LinkKind::Broadband,
        LinkState::Absent,
        LinkState::Up,
    );
    for m in 1..60 {
        if m == online_min {
            r.link(
                t0 + m * MIN,
                "eth0",
                LinkKind::Broadband,
                LinkState::Up,
                LinkState::Down,
            );
        }
        r.heartbeat(t0 + m * MIN, m < online_min);
    }
    r.stop(t0 + 60 * MIN);
    let (d, _) = devices::add_device(store, name, Some(office), t0 - 60 * MIN)
        .await
        .unwrap();
    store.ingest(d.id, &r.out, now()).await.unwrap();
}

/// The fleet page once the week's figures are shown (they are made in a
/// task of their own; reload until they are, within a deadline).
async fn fleet_with_week(b: &mut Browser) -> Page {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let page = b.get("/fleet").await;
        assert_eq!(page.status, 200, "{}", page.text);
        if !page.text.contains("data-week=\"making\"") {
            return page;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the week's figures never came"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The offices of the week's table, worst first, with their uptime.
fn worst(page: &Page) -> Vec<(String, String)> {
    let Some(table) = between(&page.text, "data-week=\"worst\"", "</table>") else {
        return Vec::new();
    };
    table
        .split("data-office=\"")
        .skip(1)
        .map(|row| {
            let code = row.split('"').next().unwrap().to_string();
            let pct = between(row, "data-uptime=\"", "\"").unwrap();
            (code, pct)
        })
        .collect()
}

async fn week_worst_offices_and_open_alerts(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let t0 = office_hour_last_week();
    // Savar half the hour online, Chattogram all of it.
    week_device(store.as_ref(), "savar-week", "dhk-savar", t0, 30).await;
    week_device(store.as_ref(), "ctg-week", "ctg-sadar", t0, 61).await;
    let web = serve(store.clone(), default_options()).await;
    let mut admin = signed_in(&web, "admin").await;

    let page = fleet_with_week(&mut admin).await;
    let week = worst(&page);
    assert_eq!(
        week,
        [
            ("dhk-savar".to_string(), "50.0".to_string()),
            ("ctg-sadar".to_string(), "100.0".to_string())
        ],
        "{}",
        page.text
    );
    // The office's name is a script: shown as text.
    assert!(
        page.text
            .contains("&lt;script&gt;alert('office')&lt;/script&gt; (dhk-savar)")
    );
    // The same figures as the report API gives for those days by office.
    let (_, token) = devices::add_api_token(store.as_ref(), "reader", Role::Read, None, now())
        .await
        .unwrap();
    let tz = jiff::tz::TimeZone::get("Asia/Dhaka").unwrap();
    let today = jiff::Timestamp::from_millisecond(now())
        .unwrap()
        .to_zoned_datetime(tz)
        .date();
    let from = today.checked_sub(jiff::Span::new().days(7)).unwrap();
    let api = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!(
            "{}/api/v1/reports/uptime?from={from}&to={today}&by=office",
            web.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let api: serde_json::Value = serde_json::from_str(&api).unwrap();
    let from_api: Vec<(String, String)> = api["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| {
            Some((
                r["group"].as_str()?.to_string(),
                format!("{:.1}", r["uptime_pct"].as_f64()?),
            ))
        })
        .collect();
    assert_eq!(from_api, week, "{api}");
    // No open alert: no alerts section.
    assert!(!page.text.contains("data-open-alerts"), "{}", page.text);

    // A viewer of Chattogram sees only its office; one of Savar only Savar.
    let mut ctg = signed_in(&web, "ctg").await;
    let p = fleet_with_week(&mut ctg).await;
    assert_eq!(worst(&p), [("ctg-sadar".to_string(), "100.0".to_string())]);
    let mut savar = signed_in(&web, "savar").await;
    let p = fleet_with_week(&mut savar).await;
    assert_eq!(worst(&p), [("dhk-savar".to_string(), "50.0".to_string())]);

    // Open alerts: how many the viewer may see, the newest first.
    let t = now();
    let alert = |subject: Subject, kind: AlertKind, office: &str, ago_min: i64| NewAlert {
        key: AlertKey {
            rule: "r".into(),
            subject,
        },
        kind,
        office: Some(office.into()),
        since_ms: t - (ago_min + 5) * 60_000,
        opened_ms: t - ago_min * 60_000,
        notified_ms: None,
        level: RouteLevel::Office,
        members: vec![],
        links: vec![],
    };
    let d = Decisions {
        open: vec![
            alert(
                Subject::device("savar-silent"),
                AlertKind::Unreachable,
                "dhk-savar",
                30,
            ),
            alert(
                Subject::office("ctg-sadar"),
                AlertKind::OfficeOffline,
                "ctg-sadar",
                20,
            ),
            alert(
                Subject::Link {
                    device: "savar-on".into(),
                    link: "<b>wwan0</b>".into(),
                },
                AlertKind::LinkDown,
                "dhk-savar",
                10,
            ),
        ],
        ..Decisions::default()
    };
    store.apply_alerts(&d, &|_, _| Vec::new()).await.unwrap();
    let p = admin.get("/fleet").await;
    assert!(p.text.contains("data-open-alerts=\"3\""), "{}", p.text);
    let rows: Vec<&str> = p.text.split("data-alert=\"").skip(1).collect();
    assert_eq!(rows.len(), 3);
    assert!(
        rows[0].contains("Link down") && rows[0].contains("&lt;b&gt;wwan0&lt;/b&gt;"),
        "{}",
        rows[0]
    );
    assert!(!p.text.contains("<b>wwan0"));
    assert!(
        rows[1].contains("Office offline")
            && rows[1].contains("href=\"/fleet?level=office&amp;name=ctg-sadar\"")
    );
    assert!(rows[2].contains("Unreachable") && rows[2].contains("href=\"/devices/savar-silent\""));
    let p = ctg.get("/fleet").await;
    assert!(p.text.contains("data-open-alerts=\"1\""), "{}", p.text);
    assert!(!p.text.contains("savar-silent"));
    let p = savar.get("/fleet").await;
    assert!(p.text.contains("data-open-alerts=\"2\""), "{}", p.text);
    assert!(!p.text.contains("ctg-sadar"));
    // In Bangla: the count in Bangla digits.
    let csrf = p.csrf();
    savar
        .post(
            "/lang",
            &[("csrf", &csrf), ("lang", "bn"), ("back", "/fleet")],
        )
        .await;
    let bn = savar.get("/fleet").await;
    assert!(bn.text.contains("চলমান সতর্কতা: ২"), "{}", bn.text);
    // A division's or district's page: the week's worst offices within it,
    // no alerts; an office's page: neither.
    let p = admin.get("/fleet?level=division&name=Dhaka").await;
    assert!(!p.text.contains("data-open-alerts"));
    assert_eq!(worst(&p), [("dhk-savar".to_string(), "50.0".to_string())]);
    let p = admin
        .get("/fleet?level=district&name=Chattogram+%2F+Chattogram")
        .await;
    assert_eq!(worst(&p), [("ctg-sadar".to_string(), "100.0".to_string())]);
    let p = admin.get("/fleet?level=office&name=dhk-savar").await;
    assert!(!p.text.contains("data-open-alerts") && !p.text.contains("data-week"));
    // The week's link opens the whole report for those days and that
    // branch, with the same figure.
    let p = admin.get("/fleet?level=division&name=Dhaka").await;
    let section = between(&p.text, "<section class=\"week\">", "</table>").unwrap();
    let link = between(&section, "href=\"", "\"")
        .unwrap()
        .replace("&amp;", "&");
    assert_eq!(
        link,
        format!(
            "/reports?from={from}&until={}&by=office&schedule=office&level=division&name=Dhaka",
            today.yesterday().unwrap()
        )
    );
    let report = admin.get(&link).await;
    assert_eq!(report.status, 200, "{}", report.text);
    let row = between(&report.text, "<tr data-group=\"dhk-savar\">", "</tr>").unwrap();
    assert!(row.contains("data-uptime=\"50.000\""), "{row}");
    assert!(!report.text.contains("data-group=\"ctg-sadar\""));
}

/// The fleet page keeps what each device's last records said between views:
/// a new state-setting record shows on the next view.
async fn states_follow_new_records(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let web = serve(store.clone(), default_options()).await;
    let mut b = signed_in(&web, "admin").await;
    let f = b.get("/fleet").await;
    assert_eq!(
        (f.count("online"), f.count("offline")),
        ("2".into(), "1".into())
    );
    // savar-on's only working link goes down.
    let d = store.device_by_name("savar-on").await.unwrap().unwrap();
    append(
        store.as_ref(),
        d.id,
        Body::LinkState {
            link: "eth0".into(),
            kind: LinkKind::Broadband,
            from: LinkState::Up,
            to: LinkState::Down,
            reason: None,
        },
    )
    .await;
    let f = b.get("/fleet").await;
    assert_eq!(
        (f.count("online"), f.count("offline")),
        ("1".into(), "2".into()),
        "{}",
        f.text
    );
    let office = b.get("/fleet?level=office&name=dhk-savar").await;
    let row = between(&office.text, "href=\"/devices/savar-on\"", "</tr>").unwrap();
    assert!(row.contains("state-offline"), "{row}");

    // A device added after a view shows on the next, and goes once revoked
    // (the catalog changed: the page's copy of the fleet is read again).
    let total: i64 = b.get("/fleet").await.count("total").parse().unwrap();
    devices::add_device(
        store.as_ref(),
        "savar-added-later",
        Some("dhk-savar"),
        now(),
    )
    .await
    .unwrap();
    assert_eq!(
        b.get("/fleet").await.count("total"),
        (total + 1).to_string()
    );
    assert!(store.revoke_device("savar-added-later").await.unwrap());
    assert_eq!(b.get("/fleet").await.count("total"), total.to_string());
}

/// Store `body` as the device's next record, now, in its last boot.
async fn append(store: &dyn Store, device_id: i64, body: Body) {
    let last = store
        .records(device_id, 1, 1_000)
        .await
        .unwrap()
        .pop()
        .unwrap();
    let at = now();
    let next = Record {
        seq: last.seq as u64 + 1,
        seq_end: None,
        at,
        mono_ms: (last.mono_ms + (at - last.at_ms)) as u64,
        boot_id: last.boot_id.clone(),
        body,
    };
    store.ingest(device_id, &[next], at).await.unwrap();
}

/// What the dashboard judged from each device's records is kept in the
/// database with their mark: a collector starting on it (a restart, or
/// another replica) takes those judgements and reads again only devices
/// whose mark has moved.
async fn a_new_process_starts_from_the_states_judged_before(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let first = serve(store.clone(), default_options()).await;
    let f = signed_in(&first, "admin").await.get("/fleet").await;
    assert_eq!(
        (f.count("online"), f.count("offline")),
        ("2".into(), "1".into())
    );
    // Kept in the background after the view: wait for every device that
    // has state-setting records.
    let marked: Vec<(i64, i64)> = store
        .devices_marked()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(d, m)| Some((d.id, m?)).filter(|(_, m)| *m > 0))
        .collect();
    assert!(marked.len() >= 5, "{marked:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let kept = loop {
        let kept = store.saids().await.unwrap();
        if marked
            .iter()
            .all(|(id, m)| kept.iter().any(|k| k.0 == *id && k.1 == *m))
        {
            break kept;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not kept: {kept:?} of {marked:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Say savar-on was judged offline at its current mark: a new process
    // must show that (it read no records), not what the records say.
    let on = store.device_by_name("savar-on").await.unwrap().unwrap();
    let (_, mark, online) = *kept.iter().find(|k| k.0 == on.id).unwrap();
    let off = store.device_by_name("savar-off").await.unwrap().unwrap();
    let offline = kept.iter().find(|k| k.0 == off.id).unwrap().2;
    assert_ne!(online, offline);
    store.put_saids(&[(on.id, mark, offline)]).await.unwrap();
    let second = serve(db.open().await, default_options()).await;
    let mut b = signed_in(&second, "admin").await;
    let f = b.get("/fleet").await;
    assert_eq!(
        (f.count("online"), f.count("offline")),
        ("1".into(), "2".into()),
        "the judgement kept, not the records: {}",
        f.text
    );
    // A new state-setting record moves its mark: read again, and right.
    append(
        store.as_ref(),
        on.id,
        Body::LinkState {
            link: "wwan0".into(),
            kind: LinkKind::Mobile,
            from: LinkState::Down,
            to: LinkState::Down,
            reason: Some("still no signal".into()),
        },
    )
    .await;
    let f = b.get("/fleet").await;
    assert_eq!(
        (f.count("online"), f.count("offline")),
        ("2".into(), "1".into()),
        "{}",
        f.text
    );
}

/// Search: places, offices and devices within the viewer's branch, every
/// name shown as text, odd or oversized queries 400, 50 a page.
async fn search_within_the_branch_escaped_bounded_and_paginated(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let web = serve(store.clone(), default_options()).await;
    let mut anon = Browser::new(&web);
    assert_eq!(anon.get("/search?q=savar").await.status, 303);
    let mut b = signed_in(&web, "admin").await;
    // Every page's header has the search box.
    assert!(b.get("/fleet").await.text.contains("action=\"/search\""));
    let empty = b.get("/search").await;
    assert_eq!(empty.status, 200);
    assert!(!empty.text.contains("<table"), "{}", empty.text);
    // The upazila, the office (by code) and the five Savar devices.
    let p = b.get("/search?q=+SAVAR+").await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert!(p.text.contains("7 found"), "{}", p.text);
    for link in [
        "/fleet?level=upazila&amp;name=Dhaka+%2F+Dhaka+%2F+Savar",
        "/fleet?level=office&amp;name=dhk-savar",
        "/devices/savar-on",
        "/devices/savar-silent",
    ] {
        assert!(p.text.contains(link), "{link}: {}", p.text);
    }
    assert!(p.text.contains("state-offline"), "{}", p.text);
    // Markup in names and in the query is text.
    let p = b.get("/search?q=%3Cscript%3E").await;
    assert!(p.text.contains("1 found"), "{}", p.text);
    assert!(!p.text.contains("<script"), "{}", p.text);
    assert!(p.text.contains("value=\"&lt;script&gt;\""), "{}", p.text);
    let p = b.get("/search?q=onerror").await;
    assert!(!p.text.contains("<img"), "{}", p.text);
    assert!(p.text.contains("&lt;img src=x onerror=alert(1)&gt;"));
    // A viewer finds only inside their branch.
    let mut ctg = signed_in(&web, "ctg").await;
    let p = ctg.get("/search?q=savar").await;
    assert!(p.text.contains("0 found"), "{}", p.text);
    assert!(!p.text.contains("/devices/savar"), "{}", p.text);
    let p = ctg.get("/search?q=sadar").await;
    assert!(
        p.text.contains("/fleet?level=office&amp;name=ctg-sadar"),
        "{}",
        p.text
    );
    // Odd and oversized queries.
    for q in [
        format!("/search?q={}", "a".repeat(101)),
        "/search?q=a&page=0".into(),
        "/search?q=a&page=x".into(),
        "/search?q=a&q=b".into(),
        "/search?query=a".into(),
    ] {
        let p = b.get(&q).await;
        assert_eq!(p.status, 400, "{q}: {}", p.text);
    }
    // 60 matches: two pages of 50, in name order.
    for i in 0..60 {
        devices::add_device(
            store.as_ref(),
            &format!("pg-{i:02}"),
            Some("ctg-sadar"),
            now(),
        )
        .await
        .unwrap();
    }
    let first = b.get("/search?q=pg-").await;
    assert!(first.text.contains("60 found"), "{}", first.text);
    assert!(first.text.contains("/devices/pg-49\""), "{}", first.text);
    assert!(!first.text.contains("/devices/pg-50\""), "{}", first.text);
    assert!(
        first.text.contains("href=\"/search?q=pg-&amp;page=2\""),
        "{}",
        first.text
    );
    let second = b.get("/search?q=pg-&page=2").await;
    assert!(second.text.contains("/devices/pg-59\""), "{}", second.text);
    assert!(!second.text.contains("/devices/pg-05\""), "{}", second.text);
    assert_eq!(b.get("/search?q=pg-&page=9").await.status, 200);
}

/// The users' admin page: an admin lists, adds (with the CLI's checks) and
/// removes users; a viewer cannot see or post to it; forged forms are 403.
async fn admins_manage_users_and_nobody_else_can(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let web = serve(store.clone(), default_options()).await;
    let users = |s: Arc<dyn Store>| async move {
        let mut n: Vec<String> = s
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        n.sort();
        n
    };
    let mut a = signed_in(&web, "admin").await;
    let fleet = a.get("/fleet").await;
    assert!(
        fleet.text.contains("href=\"/users\""),
        "admins get the link"
    );
    let page = a.get("/users").await;
    assert_eq!(page.status, 200, "{}", page.text);
    for u in ["admin", "ctg", "savar"] {
        assert!(page.text.contains(&format!("data-user=\"{u}\"")), "{u}");
    }
    let csrf = page.csrf();
    let add = |name: &'static str,
               pw: &'static str,
               role: &'static str,
               level: &'static str,
               branch: &'static str| {
        vec![
            ("name", name),
            ("password", pw),
            ("role", role),
            ("level", level),
            ("branch", branch),
        ]
    };

    // A viewer of Savar's upazila, added here, signs in and sees only it.
    let mut form = add("savar.it", PW, "read", "upazila", "Savar");
    form.push(("csrf", &csrf));
    let p = a.post("/users/add", &form).await;
    assert_eq!(p.status, 303, "{}", p.text);
    let mut it = signed_in(&web, "savar.it").await;
    assert_eq!(it.get("/fleet").await.count("total"), "6");
    assert!(!it.get("/fleet").await.text.contains("href=\"/users\""));

    // Refusals: 400 with the reason, nobody added.
    let before = users(store.clone()).await;
    for (form, reason) in [
        (add("short", "too short", "read", "", ""), "12"),
        (add("a b", PW, "read", "", ""), "name"),
        (add("ctg", PW, "read", "", ""), "already exists"),
        (add("x1", PW, "root", "", ""), "`role`"),
        (add("x2", PW, "read", "upazila", "Nowhere"), "Nowhere"),
        (add("x3", PW, "read", "planet", "Earth"), "`level`"),
        (add("x4", PW, "read", "", "Savar"), "level"),
        (add("x5", PW, "read", "district", ""), "name the branch"),
    ] {
        let mut f = form.clone();
        f.push(("csrf", &csrf));
        let p = a.post("/users/add", &f).await;
        assert_eq!(p.status, 400, "{form:?}: {}", p.text);
        assert!(
            p.text.contains(reason),
            "{form:?}: {reason} not in {}",
            p.text
        );
    }
    assert_eq!(users(store.clone()).await, before);
    // Forged or missing form tokens: 403, nothing done.
    for token in ["", "forged", &csrf[..csrf.len() - 1]] {
        let mut f = add("x6", PW, "admin", "", "");
        f.push(("csrf", token));
        assert_eq!(a.post("/users/add", &f).await.status, 403, "{token:?}");
        assert_eq!(
            a.post("/users/remove", &[("csrf", token), ("name", "ctg")])
                .await
                .status,
            403
        );
    }
    // Without a session: sent to sign in; an oversized form: 413.
    let mut anon = Browser::new(&web);
    let mut f = add("x7", PW, "admin", "", "");
    f.push(("csrf", &csrf));
    assert_eq!(anon.post("/users/add", &f).await.status, 303);
    assert_eq!(anon.get("/users").await.status, 303);
    let big = format!("csrf={csrf}&name=x8&password={}", "p".repeat(20_000));
    assert_eq!(a.post_raw("/users/add", big).await.status, 413);
    assert_eq!(users(store.clone()).await, before);

    // A viewer: the page and its forms do not exist, even with its own token.
    let mine = it.get("/fleet").await.csrf();
    assert_eq!(it.get("/users").await.status, 404);
    let mut f = add("sneaky", PW, "admin", "", "");
    f.push(("csrf", &mine));
    assert_eq!(it.post("/users/add", &f).await.status, 404);
    assert_eq!(
        it.post("/users/remove", &[("csrf", &mine), ("name", "admin")])
            .await
            .status,
        404
    );
    assert_eq!(users(store.clone()).await, before);

    // Removing: its sessions end at once; not oneself; an unknown name is 404.
    let p = a
        .post("/users/remove", &[("csrf", &csrf), ("name", "savar.it")])
        .await;
    assert_eq!(p.status, 303, "{}", p.text);
    assert_eq!(it.get("/fleet").await.status, 303, "its session ended");
    let p = a
        .post("/users/remove", &[("csrf", &csrf), ("name", "admin")])
        .await;
    assert_eq!(p.status, 400);
    assert!(p.text.contains("cannot remove yourself"), "{}", p.text);
    assert_eq!(
        a.post("/users/remove", &[("csrf", &csrf), ("name", "nobody")])
            .await
            .status,
        404
    );
    assert_eq!(users(store.clone()).await, ["admin", "ctg", "savar"]);

    // A new password: checked; the user's sessions end; the old password
    // no longer signs in, the new one does.
    let mut ctg = signed_in(&web, "ctg").await;
    let p = a
        .post(
            "/users/password",
            &[("csrf", &csrf), ("name", "ctg"), ("password", "short")],
        )
        .await;
    assert_eq!(p.status, 400);
    assert!(p.text.contains("12"), "{}", p.text);
    assert_eq!(
        ctg.get("/fleet").await.status,
        200,
        "a refused change ends nothing"
    );
    let new_pw = "another long passphrase";
    for (who, status) in [("ctg", 303), ("nobody", 404)] {
        let p = a
            .post(
                "/users/password",
                &[("csrf", &csrf), ("name", who), ("password", new_pw)],
            )
            .await;
        assert_eq!(p.status, status, "{who}: {}", p.text);
    }
    assert_eq!(
        a.post(
            "/users/password",
            &[("csrf", "forged"), ("name", "ctg"), ("password", PW)]
        )
        .await
        .status,
        403
    );
    assert_eq!(ctg.get("/fleet").await.status, 303, "its session ended");
    let mut again = Browser::new(&web);
    assert_eq!(again.sign_in("ctg", PW).await.status, 401);
    assert_eq!(again.sign_in("ctg", new_pw).await.status, 303);
    let mine = it.get("/fleet").await;
    assert_eq!(mine.status, 303, "the removed viewer is still signed out");
}
