//! The dashboard's pages over loopback HTTP on SQLite and PostgreSQL
//! (`LINKWATCH_TEST_PG_URL`): fleet counts that match the data, drill-down
//! from division to a device, the device's facts and day timeline, a viewer
//! limited to a branch refused another branch's pages (404, as the API
//! does), HTML in names shown as text, odd parameters answered 400, and an
//! attacker's tries at the new endpoints.

mod common;

use common::db::{TestDb, on_both};
use common::web::{Browser, PW, default_options, load, serve};
use linkwatch::collector::access::Role;
use linkwatch::collector::devices;
use std::sync::Arc;

on_both!(
    fleet_counts_drill_down_and_device_page,
    viewers_see_only_their_branch,
    names_are_escaped_and_odd_parameters_are_400,
    attacker_tries,
);

fn now() -> i64 {
    linkwatch::shared::time::now_ms()
}

async fn signed_in(web: &common::web::Web, name: &str) -> Browser {
    let mut b = Browser::new(web);
    let p = b.sign_in(name, PW).await;
    assert_eq!(p.status, 303, "{name}: {}", p.text);
    b
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

    // The device: facts, its state now, the day's timeline, each link.
    let dev = b.get("/devices/savar-on").await;
    assert_eq!(dev.status, 200, "{}", dev.text);
    for want in [
        "0.1.0-test",
        "Debian GNU/Linux 13",
        "savar-on.local",
        "data-now=\"online\"",
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
    assert!(off.text.contains("data-state=\"offline\""));
    // Another day, in the past: a timeline without data, not an error.
    let old = b.get("/devices/savar-on?day=2026-01-01").await;
    assert_eq!(old.status, 200);
    assert!(
        old.text.contains("data-state=\"no_data\"") || !old.text.contains("data-state=\"online\"")
    );

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
