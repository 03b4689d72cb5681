//! The dashboard's reports page and its CSV over loopback HTTP on SQLite and
//! PostgreSQL (`LINKWATCH_TEST_PG_URL`), on the fixture of
//! `tests/common/web.rs`: the table shows what the data says, the download is
//! the uptime API's CSV for the same parameters, a viewer sees only its
//! branch (another branch is 404), names are escaped, and odd or hostile
//! parameters are answered 400 or 404, never 500.

mod common;

use common::db::{TestDb, on_both};
use common::web::{
    Browser, Page, api_csv, assert_same_report, between, default_options, load, report_csv, serve,
    signed_in,
};
use linkwatch::collector::access::Role;
use linkwatch::collector::devices;
use linkwatch::collector::web::reports::today;
use std::sync::Arc;

on_both!(
    the_table_and_its_csv_are_the_apis_figures,
    viewers_get_only_their_branch,
    odd_and_hostile_parameters,
);

fn now() -> i64 {
    linkwatch::shared::time::now_ms()
}

/// Yesterday and today in Asia/Dhaka: the fixture's records are all within
/// the last few hours, so this window holds them all.
fn days() -> (String, String) {
    let t = today(now());
    (t.yesterday().unwrap().to_string(), t.to_string())
}

/// A row of the page's table: its cells' text, tags removed.
fn row(page: &Page, group: &str) -> Vec<String> {
    let start = format!("<tr data-group=\"{group}\">");
    let i = page
        .text
        .find(&start)
        .unwrap_or_else(|| panic!("no row {group} in {}", page.text));
    let j = page.text[i..].find("</tr>").unwrap() + i;
    page.text[i..j]
        .split("<td")
        .skip(1)
        .map(|c| {
            let c = &c[c.find('>').unwrap() + 1..];
            let mut out = String::new();
            let mut tag = false;
            for ch in c.chars() {
                match ch {
                    '<' => tag = true,
                    '>' => tag = false,
                    _ if !tag => out.push(ch),
                    _ => {}
                }
            }
            out.trim().to_string()
        })
        .collect()
}

async fn the_table_and_its_csv_are_the_apis_figures(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let web = serve(store.clone(), default_options()).await;
    let mut b = signed_in(&web, "admin").await;
    let (from, until) = days();

    // The header and the fleet page lead here; the default page is the
    // last 7 whole days by office in office hours.
    let fleet = b.get("/fleet").await;
    assert!(fleet.text.contains("href=\"/reports\""), "{}", fleet.text);
    let default = b.get("/reports").await;
    assert_eq!(default.status, 200, "{}", default.text);
    let seven = format!(
        "{} – {}",
        today(now()).checked_sub(jiff::Span::new().days(7)).unwrap(),
        today(now()).yesterday().unwrap()
    );
    assert!(default.text.contains(&seven), "{seven}: {}", default.text);

    // By device, always: one row per registered device.
    let q = format!("from={from}&until={until}&by=device&schedule=always");
    let page = b.get(&format!("/reports?{q}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    // Group, devices, uptime, offline, not running, outages, longest,
    // failovers, loss, RTT.
    let off = row(&page, "savar-off");
    assert_eq!(off[1], "1", "{off:?}");
    assert_eq!(off[5], "1", "one outage: {off:?}");
    assert_eq!(off[8], "34.2%", "615 of 1,800 probes lost: {off:?}");
    assert_eq!(off[9], "12.5", "{off:?}");
    // savar-on: its eth0 came up a minute after the start.
    let on = row(&page, "savar-on");
    assert_eq!((on[5].as_str(), on[6].as_str()), ("1", "1m"), "{on:?}");
    let stop = row(&page, "savar-stop");
    assert_ne!(stop[4], "0m", "not running since it stopped: {stop:?}");
    assert!(page.text.contains("href=\"/devices/savar-off\""));
    // The name with HTML is text.
    assert!(!page.text.contains("<img src=x"), "{}", page.text);
    assert!(page.text.contains("&lt;img src=x onerror=alert(1)&gt;"));

    // The download is the API's CSV for the same report.
    let csv = b.get(&format!("/reports/csv?{q}")).await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert!(csv.header("content-type").starts_with("text/csv"));
    assert_eq!(
        csv.header("content-disposition"),
        format!("attachment; filename=\"linkwatch-uptime-{from}-{until}-by-device.csv\"")
    );
    let (_, token) = devices::add_api_token(store.as_ref(), "reader", Role::Read, None, now())
        .await
        .unwrap();
    let to = today(now()).tomorrow().unwrap();
    let api = api_csv(
        &web,
        &token,
        &format!("from={from}&to={to}&by=device&schedule=always"),
    )
    .await;
    assert_same_report(&csv.text, &api);
    let (_, rows) = report_csv(&csv.text);
    assert_eq!(rows.len(), 7, "every registered device: {}", csv.text);
    // The table's uptime is the API's (savar-on's evidence ended minutes
    // ago, so its figures no longer move).
    let (head, api_rows) = report_csv(&api);
    let col = head.iter().position(|c| c == "uptime_pct").unwrap();
    let pct: f64 = api_rows["savar-on"][col].parse().unwrap();
    assert_eq!(on[2], format!("{pct:.1}%"));
    // The page's link to it carries the same parameters.
    assert!(page.text.contains(&format!(
        "href=\"/reports/csv?from={from}&amp;until={until}&amp;by=device&amp;schedule=always\""
    )));

    // By office, with a target: the office's name is text, linked to its
    // fleet page; the CSV is the API's again.
    let q = format!("from={from}&until={until}&by=office&schedule=always&target=99.5");
    let page = b.get(&format!("/reports?{q}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let savar = row(&page, "dhk-savar");
    assert!(savar[0].contains("UNO &lt;script&gt;"), "{savar:?}");
    assert_eq!(savar[1], "6", "{savar:?}");
    assert_eq!(savar[3], "no", "below 99.5%: {savar:?}");
    assert!(!page.text.contains("<script"));
    assert!(
        page.text
            .contains("href=\"/fleet?level=office&amp;name=dhk-savar\"")
    );
    let csv = b.get(&format!("/reports/csv?{q}")).await;
    let api = api_csv(
        &web,
        &token,
        &format!("from={from}&to={to}&by=office&schedule=always&target=99.5"),
    )
    .await;
    assert_same_report(&csv.text, &api);

    // A branch: Chattogram's district alone.
    let page = b
        .get(&format!(
            "/reports?from={from}&until={until}&by=device&schedule=always&level=district&name=Chattogram+%2F+Chattogram"
        ))
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("data-group=\"ctg-on\""));
    assert!(!page.text.contains("data-group=\"savar-on\""));

    // In Bangla: the words and the digits.
    let csrf = page.csrf();
    b.post(
        "/lang",
        &[("csrf", &csrf), ("lang", "bn"), ("back", "/fleet")],
    )
    .await;
    let bn = b
        .get(&format!(
            "/reports?from={from}&until={until}&by=device&schedule=always"
        ))
        .await;
    assert!(bn.text.contains("প্রতিবেদন"), "{}", bn.text);
    assert_eq!(row(&bn, "savar-off")[8], "৩৪.২%");

    // Made once, shown again for five minutes: paging and downloading show
    // the same figures (a device added since is not in them yet), and the
    // page says when they were made; other parameters are another report.
    let q = format!("from={from}&until={until}&by=device&schedule=always");
    let first = b.get(&format!("/reports?{q}")).await;
    devices::add_device(store.as_ref(), "late-new", Some("ctg-sadar"), now())
        .await
        .unwrap();
    let again = b.get(&format!("/reports?{q}")).await;
    let made = |p: &Page| between(&p.text, "data-made=\"", "\"").unwrap();
    assert_eq!(made(&first), made(&again));
    assert!(!again.text.contains("late-new"));
    let (_, rows) = report_csv(&b.get(&format!("/reports/csv?{q}")).await.text);
    assert!(!rows.contains_key("late-new"));
    let other = b.get(&format!("/reports?{q}&target=50")).await;
    assert!(
        other.text.contains("data-group=\"late-new\""),
        "{}",
        other.text
    );
    // Offices' names are read again when an office changes.
    let mut renamed = store.list_offices().await.unwrap();
    renamed.retain(|o| o.code == "ctg-sadar");
    renamed[0].name = "UNO Sadar (renamed)".into();
    store.upsert_offices(&renamed).await.unwrap();
    let by_office = b
        .get(&format!(
            "/reports?from={from}&until={until}&by=office&target=60"
        ))
        .await;
    assert!(
        by_office.text.contains("UNO Sadar (renamed)"),
        "{}",
        by_office.text
    );
}

async fn viewers_get_only_their_branch(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let web = serve(store.clone(), default_options()).await;
    let (from, until) = days();
    let q = format!("from={from}&until={until}&by=device&schedule=always");
    // An admin makes the same report first: it is kept, but for the whole
    // hierarchy only, never shown to a viewer of a branch.
    let mut admin = signed_in(&web, "admin").await;
    let all = admin.get(&format!("/reports?{q}")).await;
    assert!(all.text.contains("data-group=\"savar-on\""));
    let mut b = signed_in(&web, "ctg").await;
    let page = b.get(&format!("/reports?{q}")).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("data-group=\"ctg-on\""));
    assert!(!page.text.contains("savar"), "{}", page.text);
    let (_, rows) = report_csv(&b.get(&format!("/reports/csv?{q}")).await.text);
    assert_eq!(rows.keys().collect::<Vec<_>>(), ["ctg-on"]);
    // Another branch, by any name, is 404, page and CSV alike.
    for branch in [
        "level=division&name=Dhaka",
        "level=office&name=dhk-savar",
        "level=upazila&name=Dhaka+%2F+Dhaka+%2F+Savar",
        "level=division&name=Nowhere",
    ] {
        for path in ["/reports", "/reports/csv"] {
            let p = b.get(&format!("{path}?{q}&{branch}")).await;
            assert_eq!(p.status, 404, "{path} {branch}: {}", p.text);
        }
    }
}

async fn odd_and_hostile_parameters(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let web = serve(store.clone(), default_options()).await;
    // Not signed in: to the sign-in page, nothing computed.
    let mut stranger = Browser::new(&web);
    for path in ["/reports", "/reports/csv?by=device"] {
        let p = stranger.get(path).await;
        assert_eq!(p.status, 303, "{path}");
        assert_eq!(p.location.as_deref(), Some("/signin"));
    }
    let mut b = signed_in(&web, "admin").await;
    let (from, until) = days();
    for (q, names) in [
        ("from=yesterday".to_string(), "`from`"),
        (format!("from={until}&until={from}"), "before `from`"),
        ("from=2020-01-01&until=2026-01-01".into(), "400 days"),
        ("until=2026-02-30".into(), "`until`"),
        ("by=village".into(), "`by`"),
        (
            "schedule=%27%3B+DROP+TABLE+devices%3B+--".into(),
            "`schedule`",
        ),
        ("target=1e9".into(), "`target`"),
        ("target=NaN".into(), "`target`"),
        ("page=0".into(), "`page`"),
        ("page=99999999999999999999".into(), "`page`"),
        ("by=device&by=office".into(), "more than once"),
        ("format=json".into(), "unknown parameter"),
        ("level=office".into(), "both `level` and `name`"),
        ("%ZZ".into(), ""),
    ] {
        for path in ["/reports", "/reports/csv"] {
            let p = b.get(&format!("{path}?{q}")).await;
            assert_eq!(p.status, 400, "{path}?{q}: {}", p.text);
            assert!(p.text.contains(names), "{path}?{q}: {}", p.text);
        }
    }
    // Injection-shaped and oversized branch names are unknown branches.
    for name in ["%27+OR+1%3D1+--", &"x".repeat(5_000), "%3Cscript%3E"] {
        let p = b
            .get(&format!(
                "/reports?from={from}&until={until}&level=office&name={name}"
            ))
            .await;
        assert_eq!(p.status, 404, "{}", &name[..name.len().min(20)]);
        assert!(!p.text.contains("<script>"));
    }
    // A burst of downloads waits its turn and is answered in full.
    let q = format!("from={from}&until={until}&by=device&schedule=always");
    let mut all = Vec::new();
    for _ in 0..8 {
        let mut c = Browser::new(&web);
        c.cookies = b.cookies.clone();
        let path = format!("/reports/csv?{q}");
        all.push(tokio::spawn(async move { c.get(&path).await }));
    }
    for h in all {
        let p = h.await.unwrap();
        assert_eq!(p.status, 200);
        assert_eq!(report_csv(&p.text).1.len(), 7);
    }
    // The page is no script and not cached, as every page.
    let p = b.get(&format!("/reports?{q}")).await;
    assert_eq!(p.header("cache-control"), "no-store");
    assert!(
        p.header("content-security-policy")
            .contains("default-src 'none'")
    );
}
