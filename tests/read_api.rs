//! The read API and API tokens as IT staff meet them: tokens made with
//! `linkwatch token add`, every endpoint over loopback HTTP with each role,
//! each kind of branch limit and every authentication failure, the figures,
//! timeline and outages of a hand-computed fixture, and bad parameters named.
//! Every scenario runs on SQLite and on PostgreSQL (`LINKWATCH_TEST_PG_URL`).

mod common;

use common::cli::linkwatch;

use common::db::{TestDb, on_both};
use common::records::Recs;
use linkwatch::collector::access::{Level, Role};
use linkwatch::collector::devices;
use linkwatch::collector::http::{self as api, ApiOptions, ApiState, ErrorBody};
use linkwatch::collector::report;
use linkwatch::collector::store::{Office, Store};
use linkwatch::config::collector::CollectorConfig;
use linkwatch::wire::v1::Record;
use linkwatch::wire::{LinkKind, LinkState};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

on_both!(
    every_auth_failure_and_each_role,
    branch_limits_hide_what_is_outside,
    fixture_figures_timeline_and_outages,
    bad_parameters_are_400_naming_the_field,
    cli_tokens_and_report_filters,
    storage_view_for_whole_hierarchy_admins,
);

// ---------------------------------------------------------------------------
// The fixture: 2026-11-01 00:00-12:00 in Dhaka (a Sunday, in the past), read
// with schedule `always`.

/// Unix ms of 00:00 Sunday 2026-11-01 in Asia/Dhaka (UTC+6).
fn d0() -> i64 {
    "2026-10-31T18:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

const WINDOW: &str =
    "from=2026-11-01T00:00:00%2B06:00&to=2026-11-01T12:00:00%2B06:00&schedule=always";

use LinkKind::{Broadband, Mobile, Wifi};
use LinkState::{Down, Up};

/// savar-1: broadband eth0 and mobile wwan0 up from 00:00; eth0 down at
/// 06:00 (failover to wwan0), wwan0 down at 08:00 (offline), eth0 back at
/// 08:30. Probes: eth0 600 sent, 6 lost, median 20 ms; wwan0 400 sent, 40
/// lost, median 80 ms.
fn savar() -> Vec<Record> {
    let t0 = d0();
    let mut r = Recs::new();
    r.start(t0, "savar-a");
    r.link(t0, "eth0", Broadband, Down, Up);
    r.link(t0, "wwan0", Mobile, Down, Up);
    r.failover(t0, None, Some("eth0"));
    for m in 1..=720 {
        let t = t0 + m * MIN;
        r.heartbeat(t, !(481..=510).contains(&m));
        match m {
            60 => r.minutes(t, "eth0", Broadband, 60, 600, 6, Some(20.0)),
            360 => {
                r.link(t, "eth0", Broadband, Up, Down);
                r.failover(t, Some("eth0"), Some("wwan0"));
            }
            420 => r.minutes(t, "wwan0", Mobile, 60, 400, 40, Some(80.0)),
            480 => {
                r.link(t, "wwan0", Mobile, Up, Down);
                r.failover(t, Some("wwan0"), None);
            }
            510 => {
                r.link(t, "eth0", Broadband, Down, Up);
                r.failover(t, None, Some("eth0"));
            }
            _ => {}
        }
    }
    r.out
}

/// gazipur-1: broadband all day; 3000 probes, none lost, median 10 ms.
fn gazipur() -> Vec<Record> {
    let t0 = d0();
    let mut r = Recs::new();
    r.start(t0, "gaz-a");
    r.link(t0, "eth0", Broadband, Down, Up);
    for m in 1..=720 {
        r.heartbeat(t0 + m * MIN, true);
        if m == 120 {
            r.minutes(t0 + m * MIN, "eth0", Broadband, 60, 3000, 0, Some(10.0));
        }
    }
    r.out
}

/// ctg-1: Wi-Fi all day, but powered off 04:00-06:00 (heartbeats stop, new
/// boot at 06:00). 1000 probes, 100 lost, median 50 ms.
fn ctg() -> Vec<Record> {
    let t0 = d0();
    let mut r = Recs::new();
    r.start(t0, "ctg-a");
    r.link(t0, "wlan0", Wifi, Down, Up);
    for m in 1..=240 {
        r.heartbeat(t0 + m * MIN, true);
        if m == 60 {
            r.minutes(t0 + m * MIN, "wlan0", Wifi, 60, 1000, 100, Some(50.0));
        }
    }
    let b = t0 + 6 * HOUR;
    r.start(b, "ctg-b");
    r.link(b, "wlan0", Wifi, Down, Up);
    for m in 1..=360 {
        r.heartbeat(b + m * MIN, true);
    }
    r.out
}

fn office(code: &str, division: &str, district: &str, upazila: &str) -> Office {
    Office {
        code: code.into(),
        name: format!("UNO office {upazila}"),
        division: division.into(),
        district: district.into(),
        upazila: upazila.into(),
        hours: None,
    }
}

/// Tokens of the fixture, by who holds them.
struct Tokens {
    ministry: String,
    dhaka_division: String,
    savar_upazila: String,
    gazipur_district: String,
    ctg_office_admin: String,
    admin: String,
    revoked: String,
    device: String,
}

async fn load(store: &dyn Store) -> Tokens {
    store
        .upsert_offices(&[
            office("dhk-savar-uno", "Dhaka", "Dhaka", "Savar"),
            office("dhk-gazipur-uno", "Dhaka", "Gazipur", "Sadar"),
            office("ctg-sadar-uno", "Chattogram", "Chattogram", "Sadar"),
        ])
        .await
        .unwrap();
    let now = d0() - HOUR;
    let mut device = String::new();
    for (name, code, recs) in [
        ("savar-1", "dhk-savar-uno", savar()),
        ("gazipur-1", "dhk-gazipur-uno", gazipur()),
        ("ctg-1", "ctg-sadar-uno", ctg()),
    ] {
        let (d, token) = devices::add_device(store, name, Some(code), now)
            .await
            .unwrap();
        if name == "savar-1" {
            device = token;
        }
        for chunk in recs.chunks(300) {
            store.ingest(d.id, chunk, now).await.unwrap();
        }
    }
    devices::add_device(store, "spare", None, now)
        .await
        .unwrap();
    let add = |name: &'static str, role: Role, branch: Option<(Level, &'static str)>| async move {
        devices::add_api_token(store, name, role, branch, now)
            .await
            .unwrap()
            .1
    };
    let t = Tokens {
        ministry: add("ministry", Role::Read, None).await,
        dhaka_division: add(
            "dhaka-division",
            Role::Read,
            Some((Level::Division, "Dhaka")),
        )
        .await,
        savar_upazila: add("savar-upazila", Role::Read, Some((Level::Upazila, "savar"))).await,
        gazipur_district: add(
            "gazipur-district",
            Role::Admin,
            Some((Level::District, "Dhaka / Gazipur")),
        )
        .await,
        ctg_office_admin: add(
            "ctg-office",
            Role::Admin,
            Some((Level::Office, "ctg-sadar-uno")),
        )
        .await,
        admin: add("ministry-admin", Role::Admin, None).await,
        revoked: add("old", Role::Read, None).await,
        device,
    };
    assert!(store.revoke_api_token("old").await.unwrap());
    t
}

// ---------------------------------------------------------------------------
// HTTP

struct Server {
    base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(store: Arc<dyn Store>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = CollectorConfig::embedded();
    let state = ApiState::new(
        store,
        ApiOptions {
            max_body_bytes: cfg.collector.max_body_bytes,
            max_inflight: cfg.collector.max_inflight,
            holidays: Default::default(),
        },
    );
    let app = api::router(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        _stop: tx,
    }
}

struct Answer {
    status: StatusCode,
    content_type: String,
    www_authenticate: Option<String>,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
    fn error(&self) -> ErrorBody {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{e}: {}", self.text))
    }
}

/// `auth` is the whole Authorization header value, if any.
async fn call(s: &Server, method: &str, path: &str, auth: Option<&str>) -> Answer {
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let url = format!("{}{path}", s.base);
    let mut req = match method {
        "POST" => client.post(url),
        _ => client.get(url),
    };
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let resp = req.send().await.unwrap();
    let header = |k: &str| {
        resp.headers()
            .get(k)
            .map(|v| v.to_str().unwrap().to_string())
    };
    Answer {
        status: resp.status(),
        content_type: header("content-type").unwrap_or_default(),
        www_authenticate: header("www-authenticate"),
        text: resp.text().await.unwrap(),
    }
}

async fn get(s: &Server, path: &str, token: &str) -> Answer {
    call(s, "GET", path, Some(&format!("Bearer {token}"))).await
}

fn names(rows: &Value, key: &str) -> Vec<String> {
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| r[key].as_str().unwrap().to_string())
        .collect()
}

fn close(v: &Value, want: f64) {
    let got = v
        .as_f64()
        .unwrap_or_else(|| panic!("{v} is not a number (want {want})"));
    assert!((got - want).abs() < 1e-6, "got {got}, want {want}");
}

// ---------------------------------------------------------------------------
// Scenarios

async fn every_auth_failure_and_each_role(db: Arc<TestDb>) {
    let store = db.open().await;
    let t = load(store.as_ref()).await;
    let s = serve(store.clone()).await;
    let report = format!("/api/v1/reports/uptime?{WINDOW}");
    let timeline =
        format!("/api/v1/devices/savar-1/timeline?{WINDOW}").replace("&schedule=always", "");
    let outages = format!("/api/v1/outages?{WINDOW}");
    let endpoints: [(&str, &str); 5] = [
        ("GET", &report),
        ("GET", &timeline),
        ("GET", &outages),
        ("GET", "/api/v1/devices"),
        ("POST", "/api/v1/devices/gazipur-1/revoke"),
    ];
    let unknown = format!("Bearer {}", devices::new_token());
    let revoked = format!("Bearer {}", t.revoked);
    let device = format!("Bearer {}", t.device);
    for (method, path) in endpoints {
        for (auth, status, text) in [
            (None, StatusCode::UNAUTHORIZED, "missing"),
            (
                Some("Basic dXNlcjpwYXNz"),
                StatusCode::UNAUTHORIZED,
                "malformed",
            ),
            (Some("Bearer"), StatusCode::UNAUTHORIZED, "malformed"),
            (
                Some(unknown.as_str()),
                StatusCode::UNAUTHORIZED,
                "unknown token",
            ),
            (
                Some(revoked.as_str()),
                StatusCode::UNAUTHORIZED,
                "token revoked",
            ),
            (Some(device.as_str()), StatusCode::FORBIDDEN, "device"),
        ] {
            let a = call(&s, method, path, auth).await;
            assert_eq!(
                a.status, status,
                "{method} {path} with {auth:?}: {}",
                a.text
            );
            assert!(a.error().error.contains(text), "{path}: {}", a.text);
            assert_eq!(
                a.www_authenticate.is_some(),
                status == StatusCode::UNAUTHORIZED,
                "{path}"
            );
        }
    }
    // Read tokens read, and get 403 on the admin endpoints (nothing revoked).
    for path in [report.as_str(), timeline.as_str(), outages.as_str()] {
        let a = get(&s, path, &t.ministry).await;
        assert_eq!(a.status, StatusCode::OK, "{path}: {}", a.text);
        assert!(a.content_type.starts_with("application/json"), "{path}");
    }
    let a = get(&s, "/api/v1/devices", &t.dhaka_division).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(a.error().error, "this needs an admin token");
    let bearer = format!("Bearer {}", t.ministry);
    let a = call(
        &s,
        "POST",
        "/api/v1/devices/gazipur-1/revoke",
        Some(&bearer),
    )
    .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert!(
        !store
            .device_by_name("gazipur-1")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );

    // The admin token lists every device, never a token or its hash.
    let a = get(&s, "/api/v1/devices", &t.admin).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let list = a.json();
    assert_eq!(
        names(&list, "name"),
        ["ctg-1", "gazipur-1", "savar-1", "spare"]
    );
    assert_eq!(list[2]["office"], "dhk-savar-uno");
    assert_eq!(list[2]["revoked"], false);
    assert!(!a.text.contains(&t.device), "{}", a.text);
    assert!(
        !a.text.contains(&devices::token_hash(&t.device)),
        "{}",
        a.text
    );
    assert!(!a.text.to_lowercase().contains("token"), "{}", a.text);

    // ... and revokes: the device's uploads are refused from then on.
    let admin = format!("Bearer {}", t.admin);
    let a = call(&s, "POST", "/api/v1/devices/savar-1/revoke", Some(&admin)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json(), json!({"device": "savar-1", "revoked": true}));
    let ingest = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/api/v1/ingest", s.base))
        .bearer_auth(&t.device)
        .header("content-type", "application/json")
        .body(r#"{"v":1,"device":"savar-1","records":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ingest.status(), StatusCode::FORBIDDEN);
    let a = call(&s, "POST", "/api/v1/devices/nope/revoke", Some(&admin)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    // The past of a revoked device still counts in reports.
    let a = get(&s, &format!("{report}&by=device"), &t.ministry).await;
    assert!(names(&a.json()["rows"], "group").contains(&"savar-1".to_string()));
}

async fn branch_limits_hide_what_is_outside(db: Arc<TestDb>) {
    let store = db.open().await;
    let t = load(store.as_ref()).await;
    let s = serve(store.clone()).await;
    let by_device = format!("/api/v1/reports/uptime?{WINDOW}&by=device");
    let groups = |a: &Answer| {
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
        let mut g = names(&a.json()["rows"], "group");
        g.sort();
        g
    };
    // Unlimited: everything, also the device attached to no office.
    let a = get(&s, &by_device, &t.ministry).await;
    assert_eq!(groups(&a), ["ctg-1", "gazipur-1", "savar-1", "spare"]);
    // Division, upazila (given as a unique bare name), district, office.
    let a = get(&s, &by_device, &t.dhaka_division).await;
    assert_eq!(groups(&a), ["gazipur-1", "savar-1"]);
    assert_eq!(
        a.json()["token_branch"],
        json!({"level": "division", "name": "Dhaka"})
    );
    let a = get(&s, &by_device, &t.savar_upazila).await;
    assert_eq!(groups(&a), ["savar-1"]);
    let a = get(&s, &by_device, &t.gazipur_district).await;
    assert_eq!(groups(&a), ["gazipur-1"]);
    let a = get(&s, &by_device, &t.ctg_office_admin).await;
    assert_eq!(groups(&a), ["ctg-1"]);
    // Grouped by division, a limited token's row holds only its devices.
    let a = get(
        &s,
        &format!("/api/v1/reports/uptime?{WINDOW}&by=division"),
        &t.savar_upazila,
    )
    .await;
    let rows = &a.json()["rows"];
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["group"], "Dhaka");
    assert_eq!(rows[0]["devices"], 1);
    close(&rows[0]["uptime_pct"], 690.0 * 100.0 / 720.0);

    // A device outside the branch is 404, worded as one that does not exist.
    let path = |d: &str| format!("/api/v1/devices/{d}/timeline?from=2026-11-01&to=2026-11-02");
    let outside = get(&s, &path("ctg-1"), &t.dhaka_division).await;
    let missing = get(&s, &path("no-such"), &t.dhaka_division).await;
    assert_eq!(outside.status, StatusCode::NOT_FOUND, "{}", outside.text);
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(
        outside.error().error.replace("ctg-1", "X"),
        missing.error().error.replace("no-such", "X")
    );
    assert_eq!(
        get(&s, &path("ctg-1"), &t.ctg_office_admin).await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(&s, &path("spare"), &t.ctg_office_admin).await.status,
        StatusCode::NOT_FOUND
    );

    // Outages: only those inside the branch.
    let a = get(&s, &format!("/api/v1/outages?{WINDOW}"), &t.dhaka_division).await;
    assert_eq!(names(&a.json()["outages"], "device"), ["savar-1"]);
    let a = get(&s, &format!("/api/v1/outages?{WINDOW}"), &t.ministry).await;
    assert_eq!(names(&a.json()["outages"], "device"), ["ctg-1", "savar-1"]);

    // Admin limited to an office: lists and revokes only there.
    let a = get(&s, "/api/v1/devices", &t.ctg_office_admin).await;
    assert_eq!(names(&a.json(), "name"), ["ctg-1"]);
    let a = get(&s, "/api/v1/devices", &t.gazipur_district).await;
    assert_eq!(names(&a.json(), "name"), ["gazipur-1"]);
    let bearer = format!("Bearer {}", t.ctg_office_admin);
    let a = call(&s, "POST", "/api/v1/devices/savar-1/revoke", Some(&bearer)).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert!(
        !store
            .device_by_name("savar-1")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );
    let a = call(&s, "POST", "/api/v1/devices/ctg-1/revoke", Some(&bearer)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert!(
        store
            .device_by_name("ctg-1")
            .await
            .unwrap()
            .unwrap()
            .revoked
    );

    // A report filter inside the token's branch narrows it; one outside it
    // is an unknown name, as one that does not exist.
    let a = get(
        &s,
        &format!("{by_device}&district=Gazipur"),
        &t.dhaka_division,
    )
    .await;
    assert_eq!(groups(&a), ["gazipur-1"]);
    assert_eq!(
        a.json()["branch"],
        json!({"level": "district", "name": "Dhaka / Gazipur"})
    );
    let a = get(
        &s,
        &format!("{by_device}&division=Chattogram"),
        &t.dhaka_division,
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert_eq!(a.error().field.as_deref(), Some("division"));
    assert!(
        a.error().error.contains("unknown division `Chattogram`"),
        "{}",
        a.text
    );
    let a = get(&s, &format!("{by_device}&division=Chattogram"), &t.ministry).await;
    assert_eq!(groups(&a), ["ctg-1"]);
}

async fn fixture_figures_timeline_and_outages(db: Arc<TestDb>) {
    let store = db.open().await;
    let t = load(store.as_ref()).await;
    let s = serve(store.clone()).await;

    // By device, worst first; hand-computed figures.
    let a = get(
        &s,
        &format!("/api/v1/reports/uptime?{WINDOW}&by=device&target=99"),
        &t.ministry,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let v = a.json();
    let rows = &v["rows"];
    assert_eq!(
        names(rows, "group"),
        ["savar-1", "ctg-1", "gazipur-1", "spare"]
    );
    let savar = &rows[0];
    assert_eq!(savar["online_ms"], 690 * MIN);
    assert_eq!(savar["offline_ms"], 30 * MIN);
    assert_eq!(savar["uptime"], "95.8%");
    assert_eq!(savar["compliant"], false);
    assert_eq!(savar["broadband_ms"], 570 * MIN);
    assert_eq!(savar["mobile_ms"], 120 * MIN);
    assert_eq!(savar["wifi_ms"], 0);
    close(&savar["broadband_pct"], 570.0 * 100.0 / 690.0);
    close(&savar["mobile_pct"], 120.0 * 100.0 / 690.0);
    assert_eq!(savar["failovers"], 1);
    close(&savar["loss_pct"], 4.6);
    close(&savar["rtt_p50_ms"], 20.0);
    assert_eq!(savar["outages"], 1);
    assert_eq!(savar["longest_outage_ms"], 30 * MIN);
    let ctg = &rows[1];
    assert_eq!(ctg["uptime"], "100.0%");
    assert_eq!(ctg["not_running_ms"], 2 * HOUR);
    assert_eq!(ctg["outages"], 1);
    assert_eq!(ctg["wifi_ms"], 600 * MIN);
    close(&ctg["wifi_pct"], 100.0);
    close(&ctg["loss_pct"], 10.0);
    assert_eq!(rows[3]["uptime"], "no data");
    assert_eq!(rows[3]["broadband_pct"], Value::Null);
    assert_eq!(rows[3]["loss_pct"], Value::Null);

    // By division: sums of milliseconds and probes, not means of percentages.
    let a = get(
        &s,
        &format!("/api/v1/reports/uptime?{WINDOW}&by=division"),
        &t.ministry,
    )
    .await;
    let rows = &a.json()["rows"];
    let dhaka = &rows[0];
    assert_eq!(dhaka["group"], "Dhaka");
    assert_eq!(dhaka["devices"], 2);
    close(&dhaka["uptime_pct"], 1410.0 * 100.0 / 1440.0);
    assert_eq!(dhaka["broadband_ms"], 1290 * MIN);
    close(&dhaka["broadband_pct"], 1290.0 * 100.0 / 1410.0);
    close(&dhaka["loss_pct"], 46.0 * 100.0 / 4000.0);
    // Device medians 20 ms (954 answered) and 10 ms (3000 answered).
    close(&dhaka["rtt_p50_ms"], 10.0);
    assert_eq!(dhaka["failovers"], 1);

    // Worst N.
    let a = get(
        &s,
        &format!("/api/v1/reports/uptime?{WINDOW}&by=device&limit=1&format=csv"),
        &t.ministry,
    )
    .await;
    assert!(a.content_type.starts_with("text/csv"), "{}", a.content_type);
    let lines: Vec<&str> = a.text.lines().collect();
    assert_eq!(lines[0], report::CSV_HEADER);
    assert_eq!(
        lines[1],
        "savar-1,1,41400000,1800000,0,0,95.833,95.8%,,1,1800000,1800000,\
         34200000,0,7200000,82.609,0.000,17.391,1,20.0,4.600"
    );
    assert_eq!(lines.len(), 2, "{}", a.text);

    // Timeline of savar-1.
    let a = get(
        &s,
        "/api/v1/devices/savar-1/timeline?from=2026-11-01T00:00:00%2B06:00&to=2026-11-01T12:00:00%2B06:00",
        &t.ministry,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let tl = a.json();
    assert_eq!(tl["device"], "savar-1");
    assert_eq!(tl["from"], "2026-10-31T18:00:00Z");
    let spans = |v: &Value| -> Vec<(String, i64, i64)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["state"].as_str().unwrap().to_string(),
                    (i["start_ms"].as_i64().unwrap() - d0()) / MIN,
                    (i["end_ms"].as_i64().unwrap() - d0()) / MIN,
                )
            })
            .collect()
    };
    let st = |s: &str, a: i64, b: i64| (s.to_string(), a, b);
    assert_eq!(
        spans(&tl["intervals"]),
        [
            st("online", 0, 480),
            st("offline", 480, 510),
            st("online", 510, 720)
        ]
    );
    assert_eq!(tl["intervals"][1]["cause"], "all links down");
    assert_eq!(tl["intervals"][1]["start"], "2026-11-01T02:00:00Z");
    assert_eq!(tl["intervals"][1]["duration_ms"], 30 * MIN);
    assert_eq!(names(&tl["links"], "name"), ["eth0", "wwan0"]);
    assert_eq!(tl["links"][0]["kind"], "broadband");
    assert_eq!(
        spans(&tl["links"][0]["intervals"]),
        [st("up", 0, 360), st("down", 360, 510), st("up", 510, 720)]
    );
    assert_eq!(
        spans(&tl["links"][1]["intervals"]),
        [st("up", 0, 480), st("down", 480, 720)]
    );

    // Outages, JSON and CSV, one group.
    let a = get(&s, &format!("/api/v1/outages?{WINDOW}"), &t.ministry).await;
    let o = a.json();
    assert_eq!(o["outages"].as_array().unwrap().len(), 2);
    assert_eq!(
        o["outages"][0],
        json!({
            "device": "ctg-1", "group": "ctg-sadar-uno",
            "start_ms": d0() + 4 * HOUR, "end_ms": d0() + 6 * HOUR,
            "start": "2026-10-31T22:00:00Z", "end": "2026-11-01T00:00:00Z",
            "duration_ms": 2 * HOUR, "cause": "device_off"
        })
    );
    assert_eq!(o["outages"][1]["cause"], "all_links_down");
    let a = get(
        &s,
        &format!("/api/v1/outages?{WINDOW}&by=district&group=Dhaka%20/%20Dhaka&format=csv"),
        &t.ministry,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(
        a.text,
        format!(
            "device,group,start,end,start_ms,end_ms,duration_ms,cause\r\n\
             savar-1,Dhaka / Dhaka,2026-11-01T02:00:00Z,2026-11-01T02:30:00Z,{},{},1800000,all_links_down\r\n",
            d0() + 480 * MIN,
            d0() + 510 * MIN
        )
    );
    // With the default schedule (office hours, 09:00-17:00) nothing of the
    // fixture's outages falls inside: the list is empty, not an error.
    let a = get(
        &s,
        "/api/v1/outages?from=2026-11-01&to=2026-11-02",
        &t.ministry,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json()["outages"], json!([]));
    // A week with no data says so.
    let a = get(
        &s,
        "/api/v1/reports/uptime?from=2026-10-04&to=2026-10-09&by=device&schedule=always",
        &t.ministry,
    )
    .await;
    for row in a.json()["rows"].as_array().unwrap() {
        assert_eq!(row["uptime"], "no data", "{row}");
    }
}

async fn bad_parameters_are_400_naming_the_field(db: Arc<TestDb>) {
    let store = db.open().await;
    let t = load(store.as_ref()).await;
    let s = serve(store.clone()).await;
    let r = "/api/v1/reports/uptime?from=2026-11-01&to=2026-11-02";
    let o = "/api/v1/outages?from=2026-11-01&to=2026-11-02";
    let tl = "/api/v1/devices/savar-1/timeline";
    let cases: Vec<(String, &str, &str)> = vec![
        (format!("{r}&limit=0"), "limit", "`limit` = `0`"),
        (format!("{r}&limit=ten"), "limit", "whole number"),
        (
            format!("{r}&division=Atlantis"),
            "division",
            "unknown division `Atlantis`",
        ),
        (format!("{r}&upazila=Sadar"), "upazila", "ambiguous"),
        (
            format!("{r}&division=Dhaka&office=dhk-savar-uno"),
            "office",
            "both given",
        ),
        (
            format!("{r}&divison=Dhaka"),
            "query",
            "unknown parameter `divison`",
        ),
        (format!("{r}&by=ward"), "by", "ward"),
        (format!("{r}&format=xml"), "format", "xml"),
        (format!("{r}&limit=1&limit=2"), "limit", "more than once"),
        (
            format!("{o}&group=nowhere"),
            "group",
            "unknown `group` = `nowhere`",
        ),
        (
            format!("{o}&by=district&group=Gazipur"),
            "group",
            "`Dhaka / Gazipur`",
        ),
        (format!("{o}&by=ward"), "by", "ward"),
        (format!("{o}&target=90"), "query", "`target`"),
        (
            format!("{tl}?from=2026-11-02&to=2026-11-01"),
            "to",
            "`to` must be after `from`",
        ),
        (format!("{tl}?to=2026-11-01"), "from", "`from` is required"),
        (
            format!("{tl}?from=2026-11-01&to=2027-12-31"),
            "to",
            "400 days",
        ),
        (
            format!("{tl}?from=yesterday&to=2026-11-01"),
            "from",
            "yesterday",
        ),
    ];
    for (path, field, text) in cases {
        let a = get(&s, &path, &t.ministry).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.text);
        let e = a.error();
        assert_eq!(e.field.as_deref(), Some(field), "{path}: {}", a.text);
        assert!(e.error.contains(text), "{path}: {}", a.text);
    }
    // Authentication comes first: bad parameters without a token are 401.
    let a = call(&s, "GET", &format!("{r}&limit=0"), None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------
// The command line

async fn cli_tokens_and_report_filters(db: Arc<TestDb>) {
    let store = db.open().await;
    load(store.as_ref()).await;
    let cfg_path = db.dir().join("collector.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[collector]\nlisten = \"127.0.0.1:0\"\ndatabase = {:?}\n",
            db.url()
        ),
    )
    .unwrap();
    let cfg = cfg_path.to_str().unwrap();
    let dir = db.dir();
    let run = |args: Vec<&'static str>| {
        let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        a.extend(["--config".to_string(), cfg.to_string()]);
        async move {
            let refs: Vec<&str> = a.iter().map(String::as_str).collect();
            linkwatch(&refs, dir).await
        }
    };

    // Add: the token alone on stdout, the branch resolved and shown.
    let (code, out, err) = run(vec![
        "token",
        "add",
        "sylhet-it",
        "--role",
        "read",
        "--district",
        "gazipur",
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let token = out.trim().to_string();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(token.starts_with(devices::TOKEN_PREFIX), "{out}");
    assert!(err.contains("district Dhaka / Gazipur"), "{err}");
    // Stored as its hash only.
    let stored = store
        .api_token_by_hash(&devices::token_hash(&token))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "sylhet-it");
    assert_eq!(stored.role, Role::Read);

    // The token works over HTTP and sees only its district.
    let s = serve(store.clone()).await;
    let a = get(
        &s,
        &format!("/api/v1/reports/uptime?{WINDOW}&by=device"),
        &token,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(names(&a.json()["rows"], "group"), ["gazipur-1"]);

    // List: names, roles, branches; never a token.
    let (code, out, err) = run(vec!["token", "list"]).await;
    assert_eq!(code, 0, "{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("sylhet-it "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        line.contains("read") && line.contains("district Dhaka / Gazipur") && line.contains(" no "),
        "{line}"
    );
    let line = out.lines().find(|l| l.starts_with("old ")).unwrap();
    assert!(line.contains("yes"), "{line}");
    assert!(
        out.lines().any(|l| l.starts_with("ministry-admin ")
            && l.contains("admin")
            && l.contains("(all)")),
        "{out}"
    );
    assert!(
        !out.contains(&token) && !out.contains(devices::TOKEN_PREFIX),
        "{out}"
    );

    // Refusals name the flag; nothing is stored.
    for (args, want) in [
        (
            vec![
                "token",
                "add",
                "x",
                "--role",
                "read",
                "--division",
                "Atlantis",
            ],
            "--division: unknown division `Atlantis`",
        ),
        (
            vec!["token", "add", "x", "--role", "read", "--upazila", "Sadar"],
            "--upazila: upazila `Sadar` is ambiguous",
        ),
        (
            vec!["token", "add", "x", "--role", "read", "--office", "nope"],
            "--office: unknown office `nope`",
        ),
        (vec!["token", "add", "x", "--role", "write"], "--role"),
        (
            vec![
                "token",
                "add",
                "x",
                "--role",
                "read",
                "--division",
                "Dhaka",
                "--office",
                "ctg-sadar-uno",
            ],
            "--office",
        ),
        (
            vec!["token", "add", "ministry", "--role", "read"],
            "API token `ministry` already exists",
        ),
        (
            vec!["token", "add", "a b", "--role", "read"],
            "contains ' '",
        ),
        (
            vec!["token", "revoke", "nobody"],
            "no API token named `nobody`",
        ),
    ] {
        let (code, out, err) = run(args.clone()).await;
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
    }
    assert!(
        store
            .list_api_tokens()
            .await
            .unwrap()
            .iter()
            .all(|t| t.name != "x")
    );

    // Revoke: from then on 401.
    let (code, out, err) = run(vec!["token", "revoke", "sylhet-it"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked"), "{out}");
    let a = get(&s, &format!("/api/v1/reports/uptime?{WINDOW}"), &token).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);

    // Report: worst N and branch filters.
    let day = [
        "report",
        "--from",
        "2026-11-01T00:00:00+06:00",
        "--to",
        "2026-11-01T12:00:00+06:00",
        "--schedule",
        "always",
        "--by",
        "device",
    ];
    let with = |extra: &[&'static str]| {
        let mut v: Vec<&'static str> = day.to_vec();
        v.extend_from_slice(extra);
        v
    };
    let (code, out, err) = run(with(&["--limit", "2", "--format", "csv"])).await;
    assert_eq!(code, 0, "{err}");
    let groups: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(groups, ["savar-1", "ctg-1"], "{out}");
    let (code, out, err) = run(with(&["--division", "chattogram", "--format", "json"])).await;
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(names(&v["rows"], "group"), ["ctg-1"]);
    assert_eq!(v["branch"]["name"], "Chattogram");
    let (code, out, err) = run(with(&["--office", "dhk-savar-uno"])).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines().next().unwrap().contains("office dhk-savar-uno"),
        "{out}"
    );
    let header = out.lines().nth(1).unwrap();
    for col in ["BB/WIFI/MOB", "FAILOVERS", "RTT", "LOSS"] {
        assert!(header.contains(col), "{col}: {out}");
    }
    let line = out.lines().find(|l| l.starts_with("savar-1")).unwrap();
    for cell in ["95.8%", "83/0/17%", "20ms", "4.6%"] {
        assert!(line.contains(cell), "{cell}: {out}");
    }
    assert_eq!(out.lines().count(), 3, "{out}");
    for (extra, want) in [
        (&["--limit", "0"][..], "--limit: `limit` = `0`"),
        (
            &["--district", "Atlantis"][..],
            "--district: unknown district `Atlantis`",
        ),
        (
            &["--upazila", "Sadar"][..],
            "--upazila: upazila `Sadar` is ambiguous",
        ),
    ] {
        let (code, out, err) = run(with(extra)).await;
        assert_eq!(code, 2, "{extra:?}: {out}{err}");
        assert!(err.contains(want), "{extra:?}: {err}");
    }
}

/// `GET /api/v1/storage` and `linkwatch storage`: only an admin token of the
/// whole hierarchy reads the figures (they cover every branch); the API and
/// the CLI give the same rows; bad parameters and other methods are refused.
async fn storage_view_for_whole_hierarchy_admins(db: Arc<TestDb>) {
    let store = db.open().await;
    let t = load(store.as_ref()).await;
    let s = serve(store.clone()).await;
    let path = "/api/v1/storage";

    // An attacker's tries, and tokens that may not.
    assert_eq!(
        call(&s, "GET", path, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&s, path, &t.revoked).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&s, path, "lw_api_forged").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(get(&s, path, &t.device).await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        get(&s, path, &t.ministry).await.status,
        StatusCode::FORBIDDEN
    );
    let branch = get(&s, path, &t.gazipur_district).await;
    assert_eq!(branch.status, StatusCode::FORBIDDEN);
    assert!(
        branch.error().error.contains("whole hierarchy"),
        "{}",
        branch.text
    );
    let odd = get(&s, &format!("{path}?kind=records"), &t.admin).await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);
    let e = odd.error();
    assert_eq!(e.field.as_deref(), Some("query"), "{}", odd.text);
    assert!(
        e.error.contains("`kind`") && e.error.contains("no parameters"),
        "{}",
        odd.text
    );
    let post = call(&s, "POST", path, Some(&format!("Bearer {}", t.admin))).await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED);

    // The admin's view: every kind the fixture filled, with its rows.
    let ok = get(&s, path, &t.admin).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert!(ok.content_type.starts_with("application/json"));
    let v = ok.json();
    let backend = if db.url().starts_with("sqlite") {
        "sqlite"
    } else {
        "postgresql"
    };
    assert_eq!(v["backend"], backend);
    let kind = |name: &str| {
        v["kinds"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kind"] == name)
            .unwrap_or_else(|| panic!("no kind {name}: {v}"))
            .clone()
    };
    // 4 devices, 3 offices, 7 API tokens; no dashboard users or sessions.
    assert_eq!(kind("fleet")["rows"], 14, "{v}");
    let records = kind("records");
    assert!(records["rows"].as_i64().unwrap() > 0, "{v}");
    assert!(records["bytes"].as_i64().unwrap() > 0, "{v}");
    let packs = kind("minute_packs");
    assert!(packs["rows"].as_i64().unwrap() > 0, "{v}");
    // The fixture's first minute summaries are at 00:00 Dhaka.
    let oldest = v["oldest_raw_minute_ms"]
        .as_i64()
        .expect("an oldest raw minute");
    assert!((d0()..d0() + 12 * HOUR).contains(&oldest), "{v}");
    assert_eq!(v["raw_retention_days"], 14, "the default");
    assert!(v["database_bytes"].as_i64().unwrap() >= records["bytes"].as_i64().unwrap());

    // The CLI reads the same figures from the database.
    let cfg_path = db.dir().join("storage.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[collector]\nlisten = \"127.0.0.1:0\"\ndatabase = {:?}\nraw_retention_days = 14\n",
            db.url()
        ),
    )
    .unwrap();
    let cfg = cfg_path.to_str().unwrap();
    let (code, out, err) = linkwatch(&["storage", "--json", "--config", cfg], db.dir()).await;
    assert_eq!(code, 0, "{err}");
    let cli: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(cli["kinds"][0]["rows"], v["kinds"][0]["rows"], "{out}");
    assert_eq!(cli["oldest_raw_minute_ms"], v["oldest_raw_minute_ms"]);
    assert_eq!(cli["raw_retention_days"], 14);
    let (code, out, err) = linkwatch(&["--utc", "storage", "--config", cfg], db.dir()).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("records") && out.contains("minute_packs"),
        "{out}"
    );
    assert!(out.contains("oldest raw minute: 2026-10-31 "), "{out}");
    assert!(out.contains("kept 14 days"), "{out}");
}
