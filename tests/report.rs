//! Uptime reports end to end: the hand-computed fixture stored through
//! the store's `ingest`, read back through the `linkwatch report` command line
//! and the `GET /api/v1/reports/uptime` endpoint over loopback HTTP. Every
//! scenario runs on SQLite (a file in a temporary directory) and on PostgreSQL
//! (a fresh schema in the database `LINKWATCH_TEST_PG_URL` names; skipped with
//! a message when unset).

mod common;

use common::cli::linkwatch;

use common::db::{TestDb, on_both};
use linkwatch::collector::devices;
use linkwatch::collector::http::{self as api, ApiOptions, ApiState, ErrorBody};
use linkwatch::collector::report;
use linkwatch::collector::server;
use linkwatch::collector::store::{Device, Office, Store};
use linkwatch::config::collector::CollectorConfig;
use linkwatch::wire::v1::{Body, LifecycleEvent, Record};
use linkwatch::wire::{LinkKind, LinkState};
use reqwest::StatusCode;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

// ---------------------------------------------------------------------------
// Databases (as in tests/store.rs)

on_both!(
    fixture_by_office_through_the_cli,
    fixture_by_office_through_the_api,
    bad_parameters_are_named,
);

// ---------------------------------------------------------------------------
// The fixture

/// Unix ms of 00:00 Sunday 2026-11-29 in Asia/Dhaka (UTC+6).
fn day0() -> i64 {
    "2026-11-28T18:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

fn rec(seq: &mut u64, t: i64, boot: &str, boot_start: i64, body: Body) -> Record {
    *seq += 1;
    Record {
        seq: *seq,
        seq_end: None,
        at: t,
        // The boot began an hour before it was first seen.
        mono_ms: (t - boot_start + HOUR) as u64,
        boot_id: boot.to_string(),
        body,
    }
}

fn links(
    seq: &mut u64,
    t: i64,
    boot: &str,
    start: i64,
    from: LinkState,
    to: LinkState,
) -> Vec<Record> {
    [("eth0", LinkKind::Broadband), ("wwan0", LinkKind::Mobile)]
        .into_iter()
        .map(|(link, kind)| {
            rec(
                seq,
                t,
                boot,
                start,
                Body::LinkState {
                    link: link.into(),
                    kind,
                    from,
                    to,
                    reason: (to == LinkState::Down && from != LinkState::Down)
                        .then(|| "no reply".into()),
                },
            )
        })
        .collect()
}

fn start_rec(seq: &mut u64, t: i64, boot: &str) -> Record {
    rec(
        seq,
        t,
        boot,
        t,
        Body::Lifecycle {
            event: LifecycleEvent::Start,
            boot_time: None,
            detail: None,
        },
    )
}

fn heartbeat(seq: &mut u64, t: i64, boot: &str, start: i64, online: bool) -> Record {
    rec(seq, t, boot, start, Body::Heartbeat { online, count: 1 })
}

/// The day: Sunday 2026-11-29, Dhaka. The agent runs from midnight
/// with one-minute heartbeats and two links up; all links are down
/// 10:00-10:30; the device is powered off at 13:00 (heartbeats stop) and
/// boots again at 14:00 (new boot id, lifecycle start), then runs to midnight.
fn fixture() -> Vec<Record> {
    let d0 = day0();
    let mut seq = 0;
    let mut out = vec![start_rec(&mut seq, d0, "boot-a")];
    out.extend(links(
        &mut seq,
        d0,
        "boot-a",
        d0,
        LinkState::Down,
        LinkState::Up,
    ));
    for m in 1..=780 {
        let t = d0 + m * MIN;
        out.push(heartbeat(
            &mut seq,
            t,
            "boot-a",
            d0,
            !(601..=630).contains(&m),
        ));
        if m == 600 {
            out.extend(links(
                &mut seq,
                t,
                "boot-a",
                d0,
                LinkState::Up,
                LinkState::Down,
            ));
        }
        if m == 630 {
            out.extend(links(
                &mut seq,
                t,
                "boot-a",
                d0,
                LinkState::Down,
                LinkState::Up,
            ));
        }
    }
    let b0 = d0 + 14 * HOUR;
    out.push(start_rec(&mut seq, b0, "boot-b"));
    out.extend(links(
        &mut seq,
        b0,
        "boot-b",
        b0,
        LinkState::Down,
        LinkState::Up,
    ));
    for m in 1..=600 {
        out.push(heartbeat(&mut seq, b0 + m * MIN, "boot-b", b0, true));
    }
    out
}

/// One office, the fixture's device in it (`uno-savar`), and a device
/// without office or records (`spare`).
async fn load_fixture(store: &dyn Store) -> Device {
    store
        .upsert_offices(&[Office {
            code: "dhk-savar-uno".into(),
            name: "UNO Office, Savar".into(),
            division: "Dhaka".into(),
            district: "Dhaka".into(),
            upazila: "Savar".into(),
            hours: None,
        }])
        .await
        .unwrap();
    let now = day0() - HOUR;
    let (device, _token) = devices::add_device(store, "uno-savar", Some("dhk-savar-uno"), now)
        .await
        .unwrap();
    devices::add_device(store, "spare", None, now)
        .await
        .unwrap();
    let recs = fixture();
    for chunk in recs.chunks(400) {
        store.ingest(device.id, chunk, now).await.unwrap();
    }
    assert_eq!(
        store.records(device.id, 0, 100_000).await.unwrap().len(),
        recs.len()
    );
    device
}

/// The expected row of the office: 6 h 30 min online, 30 min offline, 1 h
/// not running, 390/420 = 92.9 %.
fn check_office_row(row: &serde_json::Value) {
    assert_eq!(row["group"], "dhk-savar-uno", "{row}");
    assert_eq!(row["devices"], 1, "{row}");
    assert_eq!(row["online_ms"], 6 * HOUR + 30 * MIN, "{row}");
    assert_eq!(row["offline_ms"], 30 * MIN, "{row}");
    assert_eq!(row["not_running_ms"], HOUR, "{row}");
    assert_eq!(row["no_data_ms"], 0, "{row}");
    let pct = row["uptime_pct"].as_f64().unwrap();
    assert!((pct - 390.0 * 100.0 / 420.0).abs() < 1e-9, "{row}");
    assert_eq!(row["uptime"], "92.9%", "{row}");
    assert_eq!(row["outages"], 2, "{row}");
    assert_eq!(row["longest_outage_ms"], HOUR, "{row}");
    assert_eq!(row["mean_time_to_recover_ms"], 45 * MIN, "{row}");
}

/// The device without records: "no data", never 100 % or 0 %.
fn check_no_office_row(row: &serde_json::Value) {
    assert_eq!(row["group"], report::NO_OFFICE, "{row}");
    assert_eq!(row["uptime_pct"], serde_json::Value::Null, "{row}");
    assert_eq!(row["uptime"], "no data", "{row}");
    assert_eq!(row["compliant"], serde_json::Value::Null, "{row}");
    assert_eq!(row["online_ms"], 0, "{row}");
    assert_eq!(row["no_data_ms"], 8 * HOUR, "{row}");
}

// ---------------------------------------------------------------------------
// The command line

/// A collector config file for `db` in its scratch directory.
fn config_file(db: &TestDb) -> String {
    let path = db.dir().join("collector.toml");
    std::fs::write(
        &path,
        format!(
            "[collector]\nlisten = \"127.0.0.1:0\"\ndatabase = {:?}\nlog_format = \"text\"\n",
            db.url()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

async fn report_cli(db: &TestDb, extra: &[&str]) -> (i32, String, String) {
    let cfg = config_file(db);
    let mut args = vec!["report", "--config", &cfg];
    args.extend_from_slice(extra);
    linkwatch(&args, db.dir()).await
}

async fn fixture_by_office_through_the_cli(db: Arc<TestDb>) {
    let store = db.open().await;
    load_fixture(store.as_ref()).await;
    let day = ["--from", "2026-11-29", "--to", "2026-11-30"];

    // JSON.
    let mut args = day.to_vec();
    args.extend(["--by", "office", "--target", "99", "--format", "json"]);
    let (code, out, err) = report_cli(&db, &args).await;
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["by"], "office");
    // Each office's own hours; this office has none: the circular's.
    assert_eq!(v["schedule"], "office");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{out}");
    check_office_row(&rows[0]);
    assert_eq!(rows[0]["compliant"], false);
    check_no_office_row(&rows[1]);

    // CSV (the default schedule is office hours in Dhaka).
    let mut args = day.to_vec();
    args.extend(["--format", "csv"]);
    let (code, out, err) = report_cli(&db, &args).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], report::CSV_HEADER);
    assert_eq!(
        lines[1],
        "dhk-savar-uno,1,23400000,1800000,3600000,0,92.857,92.9%,,2,3600000,2700000,\
         23400000,0,0,100.000,0.000,0.000,0,,"
    );
    assert_eq!(
        lines[2],
        "(no office),1,0,0,0,28800000,,no data,,0,,,0,0,0,,,,0,,"
    );
    assert_eq!(lines.len(), 3);

    // Table, by device.
    let mut args = day.to_vec();
    args.extend(["--by", "device"]);
    let (code, out, err) = report_cli(&db, &args).await;
    assert_eq!(code, 0, "{err}");
    let line = out.lines().find(|l| l.starts_with("uno-savar")).unwrap();
    for cell in ["92.9%", "6h 30m", "30m", "1h", "45m"] {
        assert!(line.contains(cell), "{cell}: {out}");
    }
    let line = out.lines().find(|l| l.starts_with("spare")).unwrap();
    assert!(line.contains("no data"), "{out}");

    // With the day a holiday in the collector's configuration: no office
    // hours, so nothing to judge.
    let holidays = db.dir().join("holidays.txt");
    std::fs::write(&holidays, "2026-11-29 # a holiday\n").unwrap();
    let with_holidays = db.dir().join("collector-holidays.toml");
    std::fs::write(
        &with_holidays,
        format!(
            "[collector]\ndatabase = {:?}\nholidays_file = {:?}\n",
            db.url(),
            holidays.display().to_string()
        ),
    )
    .unwrap();
    let cfg = with_holidays.to_str().unwrap();
    let mut args = vec!["report", "--config", cfg];
    args.extend(day);
    args.extend(["--format", "csv"]);
    let (code, out, err) = linkwatch(&args, db.dir()).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("dhk-savar-uno,1,0,0,0,0,,no data,")),
        "{out}"
    );

    // A period with no data at all (the week before): "no data".
    let (code, out, err) = report_cli(
        &db,
        &[
            "--from",
            "2026-11-22",
            "--to",
            "2026-11-27",
            "--format",
            "csv",
        ],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    for line in out.lines().skip(1) {
        assert!(line.contains(",,no data,"), "{out}");
    }
    assert!(!out.contains("100.0%") && !out.contains("0.0%"), "{out}");

    // The office gets its own hours, 10:00-16:00, imported through the
    // command line: within them 4 h 30 min online, 30 min offline, 1 h not
    // running, 270/300 = 90.0 %. A spelled-out schedule still applies alike.
    let offices = db.dir().join("offices.csv");
    std::fs::write(
        &offices,
        "code,name,division,district,upazila,hours\n\
         dhk-savar-uno,\"UNO Office, Savar\",Dhaka,Dhaka,Savar,office:Asia/Dhaka:sun-thu:10:00-16:00\n",
    )
    .unwrap();
    let cfg = config_file(&db);
    let (code, _, err) = linkwatch(
        &[
            "device",
            "import",
            offices.to_str().unwrap(),
            "--config",
            &cfg,
        ],
        db.dir(),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let mut args = day.to_vec();
    args.extend(["--format", "csv"]);
    let (code, out, err) = report_cli(&db, &args).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("dhk-savar-uno,1,16200000,1800000,3600000,0,90.000,90.0%,")),
        "{out}"
    );
    args.extend(["--schedule", "office:Asia/Dhaka:sun-thu:09:00-17:00"]);
    let (code, out, err) = report_cli(&db, &args).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("dhk-savar-uno,1,23400000,1800000,3600000,0,92.857,")),
        "{out}"
    );
}

async fn bad_parameters_are_named(db: Arc<TestDb>) {
    let store = db.open().await;
    load_fixture(store.as_ref()).await;
    let cases: [(&[&str], &str, &str); 4] = [
        (
            &["--from", "2026-11-30", "--to", "2026-11-29"],
            "--to",
            "`to` must be after `from`",
        ),
        (
            &["--from", "2026-11-29", "--to", "2026-11-30", "--by", "ward"],
            "--by",
            "device, office, upazila, district, division",
        ),
        (
            &[
                "--from",
                "2026-11-29",
                "--to",
                "2026-11-30",
                "--schedule",
                "office:Asia/Dhakka",
            ],
            "--schedule",
            "Asia/Dhakka",
        ),
        (
            &["--from", "29/11/2026", "--to", "2026-11-30"],
            "--from",
            "29/11/2026",
        ),
    ];
    for (args, flag, text) in cases {
        let (code, out, err) = report_cli(&db, args).await;
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains(flag) && err.contains(text), "{args:?}: {err}");
        assert!(out.is_empty(), "{out}");
    }
}

// ---------------------------------------------------------------------------
// The API

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The API router served on 127.0.0.1:0; stops when the returned sender is
/// dropped.
async fn serve_api(store: Arc<dyn Store>) -> (String, tokio::sync::oneshot::Sender<()>) {
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
    let app = api::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (format!("http://{addr}{}", report::UPTIME_PATH), tx)
}

async fn get(url: &str, token: &str) -> (StatusCode, String, String) {
    let resp = client().get(url).bearer_auth(token).send().await.unwrap();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status(), ct, resp.text().await.unwrap())
}

async fn fixture_by_office_through_the_api(db: Arc<TestDb>) {
    let store = db.open().await;
    load_fixture(store.as_ref()).await;
    let (_, token) = devices::add_api_token(
        store.as_ref(),
        "ministry-it",
        linkwatch::collector::access::Role::Read,
        None,
        day0(),
    )
    .await
    .unwrap();
    let t = token.as_str();
    let (base, _stop) = serve_api(store.clone()).await;

    let (status, ct, text) = get(
        &format!("{base}?from=2026-11-29&to=2026-11-30&by=office&schedule=office&target=90"),
        t,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(ct.starts_with("application/json"), "{ct}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = v["rows"].as_array().unwrap();
    check_office_row(&rows[0]);
    assert_eq!(rows[0]["compliant"], true);
    check_no_office_row(&rows[1]);

    // RFC 3339 bounds, CSV.
    let (status, ct, text) = get(
        &format!("{base}?from=2026-11-29T00:00:00%2B06:00&to=2026-11-29T18:00:00Z&format=csv"),
        t,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert!(
        text.contains("\r\ndhk-savar-uno,1,23400000,1800000,3600000,0,92.857,92.9%,"),
        "{text}"
    );

    // Bad parameters: 400 naming the field.
    for (query, field) in [
        ("from=2026-11-30&to=2026-11-29", "to"),
        ("from=2026-11-29&to=2026-11-30&by=ward", "by"),
        (
            "from=2026-11-29&to=2026-11-30&schedule=office:Mars/Olympus",
            "schedule",
        ),
        ("to=2026-11-30", "from"),
        ("from=2026-11-29&to=2026-11-30&format=xml", "format"),
    ] {
        let (status, _, text) = get(&format!("{base}?{query}"), t).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {text}");
        let e: ErrorBody = serde_json::from_str(&text).unwrap();
        assert_eq!(e.field.as_deref(), Some(field), "{query}: {text}");
    }
    let (_, _, text) = get(&format!("{base}?from=2026-11-30&to=2026-11-29"), t).await;
    assert!(text.contains("`to` must be after `from`"), "{text}");

    // The collector as `serve_on` runs it serves the report to the token.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let mut cfg = CollectorConfig::embedded();
    cfg.collector.database = db.url().to_string();
    let task = tokio::spawn(async move {
        server::serve_on(listener, store, &cfg, async {
            let _ = rx.await;
        })
        .await
    });
    let (status, _, text) = get(
        &format!(
            "http://{addr}{}?from=2026-11-29&to=2026-11-30",
            report::UPTIME_PATH
        ),
        t,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(text.contains("92.9"), "{text}");
    let _ = tx.send(());
    task.await.unwrap().unwrap();
}
