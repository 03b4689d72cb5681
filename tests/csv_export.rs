//! CSV exports against formula injection, as a spreadsheet user meets them:
//! a hierarchy file whose division, district and upazila names look like
//! formulas (`=HYPERLINK(...)`, `+1`, `@SUM(...)`, `-2+3`) and hold commas and
//! quotes, imported with the real `linkwatch device import`; devices added
//! with `linkwatch device add` (a name starting with `-`) and, straight into
//! the store, names and hierarchy values the command line refuses (a formula
//! device name, line breaks, a leading tab or carriage return: what an older
//! version or a hand-edited database may hold). Every CSV the collector
//! writes (uptime reports by each grouping and outage lists over loopback
//! HTTP, `linkwatch report --format csv`) is read back with a CSV reader and
//! compared cell by cell with the JSON of the same request: text cells are the
//! JSON's text with a leading `'` exactly when it starts with `=`, `+`, `-`,
//! `@`, a tab or a carriage return; figures are the same numbers, unchanged.
//! Runs on SQLite and on PostgreSQL (`LINKWATCH_TEST_PG_URL`).

mod common;

use common::cli::linkwatch;

use common::db::{TestDb, on_both};
use common::records::Recs;
use linkwatch::collector::access::Role;
use linkwatch::collector::http::OUTAGES_PATH;
use linkwatch::collector::http::{self as api, ApiOptions, ApiState};
use linkwatch::collector::store::{Office, Store};
use linkwatch::collector::{devices, outages, report};
use linkwatch::config::collector::CollectorConfig;
use linkwatch::wire::{LinkKind, LinkState};
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const MIN: i64 = 60_000;

on_both!(hostile_names_come_out_as_text_in_every_csv);

/// Unix ms of 00:00 Sunday 2026-11-01 in Asia/Dhaka (UTC+6).
fn d0() -> i64 {
    "2026-10-31T18:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

const WINDOW: &str =
    "from=2026-11-01T00:00:00%2B06:00&to=2026-11-01T06:00:00%2B06:00&schedule=always";

const HYPERLINK: &str = "=HYPERLINK(\"http://203.0.113.7/x\",\"open\")";

/// The hierarchy file, as an IT officer might receive it: names that start
/// like formulas, commas and quotes (quoted as CSV wants).
const OFFICES_CSV: &str = "code,name,division,district,upazila\r\n\
o-hyper,Office one,\"=HYPERLINK(\"\"http://203.0.113.7/x\"\",\"\"open\"\")\",+1,@SUM(A1:A9)\r\n\
o-minus,\"Office, two\",-2+3,\"Dhaka, \"\"North\"\"\",Savar\r\n\
o-plain,Office three,Dhaka,Dhaka,\"Savar, \"\"Old\"\"\"\r\n";

/// One device's morning: online 00:00-06:00 except all links down 02:00-02:30.
fn morning() -> Vec<linkwatch::wire::v1::Record> {
    let t0 = d0();
    let mut r = Recs::new();
    r.start(t0, "boot-a");
    r.link(
        t0,
        "eth0",
        LinkKind::Broadband,
        LinkState::Down,
        LinkState::Up,
    );
    for m in 1..=360 {
        let t = t0 + m * MIN;
        r.heartbeat(t, !(121..=150).contains(&m));
        match m {
            60 => r.minutes(t, "eth0", LinkKind::Broadband, 60, 600, 6, Some(20.0)),
            120 => r.link(
                t,
                "eth0",
                LinkKind::Broadband,
                LinkState::Up,
                LinkState::Down,
            ),
            150 => r.link(
                t,
                "eth0",
                LinkKind::Broadband,
                LinkState::Down,
                LinkState::Up,
            ),
            _ => {}
        }
    }
    r.out
}

/// The hierarchy and devices: through the command line where it accepts
/// them, straight into the store where it does not. Returns a read token.
async fn load(db: &TestDb, store: &dyn Store, cfg: &str) -> String {
    let dir = db.dir();
    let file = dir.join("offices.csv");
    std::fs::write(&file, OFFICES_CSV).unwrap();
    let (code, out, err) = linkwatch(
        &["device", "import", file.to_str().unwrap(), "--config", cfg],
        dir,
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    // What the import refuses (control characters), as a database may hold it.
    store
        .upsert_offices(&[Office {
            code: "o-raw".into(),
            name: "Office four".into(),
            division: "Line one\nLine two".into(),
            district: "\tTabbed".into(),
            upazila: "\rReturn".into(),
            hours: None,
        }])
        .await
        .unwrap();
    let imported = store.list_offices().await.unwrap();
    assert!(
        imported
            .iter()
            .any(|o| o.division == HYPERLINK && o.district == "+1"),
        "{imported:?}"
    );
    for (name, office) in [("-2-3", "o-minus"), ("plain-1", "o-plain")] {
        let (code, out, err) = linkwatch(
            &[
                "device", "add", "--office", office, "--config", cfg, "--", name,
            ],
            dir,
        )
        .await;
        assert_eq!(code, 0, "{name}: {out}{err}");
    }
    for (name, office) in [
        ("=cmd|' /C calc'!A0", Some("o-hyper")),
        ("@SUM(1+1)", Some("o-raw")),
        ("+1", None),
        ("with, comma \"and quote\"\nand line", Some("o-plain")),
    ] {
        store
            .add_device(name, office, &devices::token_hash(name), d0() - MIN)
            .await
            .unwrap();
    }
    for d in store.list_devices().await.unwrap() {
        store.ingest(d.id, &morning(), d0()).await.unwrap();
    }
    devices::add_api_token(store, "ministry", Role::Read, None, d0())
        .await
        .unwrap()
        .1
}

/// What a text cell must be: the JSON's text, with a leading `'` exactly
/// when a spreadsheet would run it.
fn expected_text(s: &str) -> String {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{s}"),
        _ => s.to_string(),
    }
}

/// Check a CSV document against the JSON rows of the same request: text
/// columns (`text`) carry the neutralised text, every other column the same
/// number (or nothing for null, `true`/`false` for booleans). Returns the
/// text cells of `key`.
fn check_csv(
    csv_text: &str,
    rows: &[Value],
    header: &str,
    text: &[&str],
    key: &str,
) -> Vec<String> {
    assert!(csv_text.starts_with(&format!("{header}\r\n")), "{csv_text}");
    let mut reader = csv::ReaderBuilder::new().from_reader(csv_text.as_bytes());
    let columns: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(records.len(), rows.len(), "{csv_text}");
    let mut keys = Vec::new();
    for (rec, row) in records.iter().zip(rows) {
        assert_eq!(rec.len(), columns.len(), "{rec:?}");
        for (cell, col) in rec.iter().zip(&columns) {
            let v = &row[col.as_str()];
            if text.contains(&col.as_str()) {
                let s = v.as_str().unwrap_or_else(|| panic!("{col}: {v}"));
                assert_eq!(cell, expected_text(s), "{col} of {row}");
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "{col}: {cell:?}"
                );
                if col == key {
                    keys.push(s.to_string());
                }
            } else {
                match v {
                    Value::Null => assert_eq!(cell, "", "{col} of {row}"),
                    Value::Bool(b) => assert_eq!(cell, b.to_string(), "{col} of {row}"),
                    Value::Number(n) => {
                        let got: f64 = cell
                            .parse()
                            .unwrap_or_else(|_| panic!("{col}: {cell:?} is no number"));
                        let want = n.as_f64().unwrap();
                        assert!((got - want).abs() < 0.051, "{col}: {got} vs {want}");
                    }
                    other => panic!("{col}: {other} in a figure column"),
                }
            }
        }
    }
    keys
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn serve(store: Arc<dyn Store>) -> (String, tokio::sync::oneshot::Sender<()>) {
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
    (format!("http://{addr}"), tx)
}

async fn get(url: &str, token: &str) -> (String, String) {
    let resp = client().get(url).bearer_auth(token).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK, "{url}");
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (ct, resp.text().await.unwrap())
}

/// The groups each grouping must show, raw (as JSON has them).
fn must_show(by: &str) -> Vec<&'static str> {
    match by {
        "device" => vec![
            "=cmd|' /C calc'!A0",
            "@SUM(1+1)",
            "+1",
            "-2-3",
            "with, comma \"and quote\"\nand line",
        ],
        "division" => vec![HYPERLINK, "-2+3", "Line one\nLine two"],
        "district" => vec![
            "=HYPERLINK(\"http://203.0.113.7/x\",\"open\") / +1",
            "-2+3 / Dhaka, \"North\"",
            "Line one\nLine two / \tTabbed",
        ],
        "upazila" => vec![
            "=HYPERLINK(\"http://203.0.113.7/x\",\"open\") / +1 / @SUM(A1:A9)",
            "Dhaka / Dhaka / Savar, \"Old\"",
            "Line one\nLine two / \tTabbed / \rReturn",
        ],
        _ => vec![],
    }
}

async fn hostile_names_come_out_as_text_in_every_csv(db: Arc<TestDb>) {
    let store = db.open().await;
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
    let token = load(&db, store.as_ref(), cfg).await;
    let (base, _stop) = serve(store.clone()).await;
    let report_text = ["group", "uptime"];

    for by in ["device", "office", "upazila", "district", "division"] {
        // The read API, over loopback.
        let q = format!("{base}{}?{WINDOW}&by={by}&target=99", report::UPTIME_PATH);
        let (_, json) = get(&q, &token).await;
        let json: Value = serde_json::from_str(&json).unwrap();
        let (ct, csv_text) = get(&format!("{q}&format=csv"), &token).await;
        assert!(ct.starts_with("text/csv"), "{ct}");
        let rows = json["rows"].as_array().unwrap();
        let groups = check_csv(&csv_text, rows, report::CSV_HEADER, &report_text, "group");
        for g in must_show(by) {
            assert!(
                groups.iter().any(|x| x == g),
                "by {by}: {g:?} not in {groups:?}"
            );
        }
        // Each device has the same morning: 30 minutes offline of 6 hours.
        assert!(
            rows.iter().all(|r| r["outages"].as_u64().unwrap() >= 1),
            "{json}"
        );

        // The outage list, over loopback.
        let q = format!("{base}{OUTAGES_PATH}?{WINDOW}&by={by}");
        let (_, json) = get(&q, &token).await;
        let json: Value = serde_json::from_str(&json).unwrap();
        let (ct, csv_text) = get(&format!("{q}&format=csv"), &token).await;
        assert!(ct.starts_with("text/csv"), "{ct}");
        let list = json["outages"].as_array().unwrap();
        assert_eq!(list.len(), 6, "{json}");
        let devices = check_csv(
            &csv_text,
            list,
            outages::CSV_HEADER,
            &["device", "group", "start", "end", "cause"],
            "device",
        );
        for d in must_show("device") {
            assert!(devices.iter().any(|x| x == d), "{d:?} not in {devices:?}");
        }

        // The command line: `linkwatch report --format csv` against `--format json`.
        let args = |format: &'static str| {
            vec![
                "report".to_string(),
                "--config".into(),
                cfg.into(),
                "--from".into(),
                "2026-11-01T00:00:00+06:00".into(),
                "--to".into(),
                "2026-11-01T06:00:00+06:00".into(),
                "--schedule".into(),
                "always".into(),
                "--target".into(),
                "99".into(),
                "--by".into(),
                by.into(),
                "--format".into(),
                format.into(),
            ]
        };
        let run = |format: &'static str| {
            let a = args(format);
            let dir = db.dir().to_path_buf();
            async move {
                let refs: Vec<&str> = a.iter().map(String::as_str).collect();
                linkwatch(&refs, &dir).await
            }
        };
        let (code, json, err) = run("json").await;
        assert_eq!(code, 0, "{err}");
        let json: Value = serde_json::from_str(&json).unwrap();
        let (code, csv_text, err) = run("csv").await;
        assert_eq!(code, 0, "{err}");
        let groups = check_csv(
            &csv_text,
            json["rows"].as_array().unwrap(),
            report::CSV_HEADER,
            &report_text,
            "group",
        );
        for g in must_show(by) {
            assert!(
                groups.iter().any(|x| x == g),
                "CLI by {by}: {g:?} not in {groups:?}"
            );
        }
    }
}
