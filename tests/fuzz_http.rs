//! Fuzzing through the real handlers, with a fixed budget (cases per
//! property below; `LINKWATCH_FUZZ_CASES` raises them): the collector's API
//! served in-process on loopback over a real SQLite store holding offices,
//! devices and a day of records. Hostile ingest requests (arbitrary bytes,
//! mutated batches, broken gzip, odd headers and tokens) and hostile read
//! requests (the report, outage, timeline and device-list endpoints with
//! structure-aware and arbitrary query strings and device names) are never
//! answered 5xx, and every refusal is the JSON error body. Then the real
//! binary: `linkwatch report` with fuzzed parameters and `linkwatch device
//! import` with fuzzed hierarchy files exit 0, or 2 with a message, never
//! with a panic.

mod common;

use common::db::TestDb;
use common::fuzz::*;
use common::records::Recs;
use flate2::Compression;
use flate2::write::GzEncoder;
use linkwatch::collector::access::{Level, Role};
use linkwatch::collector::devices;
use linkwatch::collector::http::{self as api, ApiOptions, ApiState, ErrorBody};
use linkwatch::collector::store::{Office, Store};
use linkwatch::config::collector::CollectorConfig;
use linkwatch::wire::{LinkKind, LinkState};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::Value;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");
const MIN: i64 = 60_000;

/// Unix ms of 00:00 Sunday 2026-11-01 in Asia/Dhaka (UTC+6).
fn d0() -> i64 {
    "2026-10-31T18:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond()
}

/// The collector under test and the tokens to talk to it.
struct Collector {
    base: String,
    client: reqwest::Client,
    device_token: String,
    revoked_token: String,
    admin_token: String,
    branch_token: String,
    _db: TestDb,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Collector {
    async fn start() -> Collector {
        let db = TestDb::sqlite();
        let store = db.open().await;
        store
            .upsert_offices(&[Office {
                code: "dhk-savar-uno".into(),
                name: "UNO office".into(),
                division: "Dhaka".into(),
                district: "Dhaka".into(),
                upazila: "Savar".into(),
                hours: Some("office:Asia/Dhaka:sun-thu:08:00-16:00".into()),
            }])
            .await
            .unwrap();
        let now = d0() - MIN;
        let (d, device_token) =
            devices::add_device(store.as_ref(), "gw-1", Some("dhk-savar-uno"), now)
                .await
                .unwrap();
        let mut r = Recs::new();
        r.start(d0(), "boot-a");
        r.link(
            d0(),
            "eth0",
            LinkKind::Broadband,
            LinkState::Down,
            LinkState::Up,
        );
        for m in 1..=600 {
            r.heartbeat(d0() + m * MIN, !(200..230).contains(&m));
        }
        store.ingest(d.id, &r.out, now).await.unwrap();
        let (_, revoked_token) = devices::add_device(store.as_ref(), "gw-old", None, now)
            .await
            .unwrap();
        store.revoke_device("gw-old").await.unwrap();
        let token = |name: &'static str, role, branch| {
            let store = store.clone();
            async move {
                devices::add_api_token(store.as_ref(), name, role, branch, now)
                    .await
                    .unwrap()
                    .1
            }
        };
        let admin_token = token("admin", Role::Admin, None).await;
        let branch_token = token("savar", Role::Read, Some((Level::Upazila, "Savar"))).await;
        let (base, stop) = serve(store).await;
        Collector {
            base,
            client: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            device_token,
            revoked_token,
            admin_token,
            branch_token,
            _db: db,
            _stop: stop,
        }
    }
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

/// What a refused request must answer: a 4xx with the JSON error body.
fn check_answer(status: u16, body: &[u8], what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        status < 500,
        "{what}: {status} {}",
        String::from_utf8_lossy(body)
    );
    if status >= 400 {
        let e: Result<ErrorBody, _> = serde_json::from_slice(body);
        prop_assert!(
            e.is_ok(),
            "{what}: {status} without the error body: {}",
            String::from_utf8_lossy(body)
        );
    }
    Ok(())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------
// Ingest

/// Who a request claims to be.
#[derive(Debug, Clone)]
enum Auth {
    Device,
    Revoked,
    Admin,
    None,
    Header(String),
}

fn auth() -> impl Strategy<Value = Auth> {
    prop_oneof![
        16 => Just(Auth::Device),
        1 => Just(Auth::Revoked),
        1 => Just(Auth::Admin),
        1 => Just(Auth::None),
        1 => text().prop_map(Auth::Header),
    ]
}

/// How the body is sent.
#[derive(Debug, Clone)]
enum Wrap {
    Plain,
    Gzip,
    GzipCut(usize),
    Claim(String),
}

fn wrap() -> impl Strategy<Value = Wrap> {
    prop_oneof![
        3 => Just(Wrap::Plain),
        3 => Just(Wrap::Gzip),
        1 => any::<usize>().prop_map(Wrap::GzipCut),
        1 => prop_oneof![Just("gzip".to_string()), Just("br".to_string()), Just("gzip, gzip".to_string()), text()]
            .prop_map(Wrap::Claim),
    ]
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::fast());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// A body: a mutated batch of the device (usually), or arbitrary bytes.
fn ingest_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        10 => (batch(), prop::collection::vec(mutation(), 0..3)).prop_map(|(b, muts)| {
            serde_json::to_vec(&muts.iter().fold(b, mutate)).unwrap()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..2048),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]
}

/// A batch carrying an integer storage cannot hold: `seq`, `seq_end` or
/// `mono_ms` above 2^63-1, or `seq_end` at 2^63-1. The collector must refuse
/// it like any bad input, never store it (issue 13: it was 503, retried for
/// ever, or overflowed the acknowledgement).
fn beyond_storage(body: &[u8]) -> bool {
    let Ok(doc) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let Some(recs) = doc.get("records").and_then(Value::as_array) else {
        return false;
    };
    recs.iter().any(|r| {
        ["seq", "seq_end", "mono_ms"].iter().any(|k| {
            r.get(*k)
                .and_then(Value::as_u64)
                .is_some_and(|v| v > i64::MAX as u64 || (*k != "mono_ms" && v == i64::MAX as u64))
        })
    })
}

#[test]
fn ingest_never_answers_5xx() {
    let rt = runtime();
    let c = rt.block_on(Collector::start());
    let mut runner = TestRunner::new(runner_config(300));
    let strategy = (ingest_body(), wrap(), auth(), any::<bool>());
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&strategy, |(body, wrap, auth, json_type)| {
        let mut req = c.client.post(format!("{}{}", c.base, api::INGEST_PATH));
        if json_type {
            req = req.header("content-type", "application/json");
        }
        req = match &auth {
            Auth::Device => req.bearer_auth(&c.device_token),
            Auth::Revoked => req.bearer_auth(&c.revoked_token),
            Auth::Admin => req.bearer_auth(&c.admin_token),
            Auth::None => req,
            Auth::Header(h) => match reqwest::header::HeaderValue::from_str(h) {
                Ok(v) => req.header("authorization", v),
                Err(_) => req,
            },
        };
        let sent = match &wrap {
            Wrap::Plain => body.clone(),
            Wrap::Gzip => {
                req = req.header("content-encoding", "gzip");
                gzip(&body)
            }
            Wrap::GzipCut(at) => {
                req = req.header("content-encoding", "gzip");
                let mut g = gzip(&body);
                g.truncate(at % (g.len() + 1));
                g
            }
            Wrap::Claim(enc) => {
                if let Ok(v) = reqwest::header::HeaderValue::from_str(enc) {
                    req = req.header("content-encoding", v);
                }
                body.clone()
            }
        };
        let (status, answer) = rt.block_on(async {
            let resp = req.body(sent).send().await.unwrap();
            (resp.status().as_u16(), resp.bytes().await.unwrap())
        });
        *seen.borrow_mut().entry(status).or_default() += 1;
        let what = format!("{auth:?} {wrap:?} {}", String::from_utf8_lossy(&body));
        check_answer(status, &answer, &what)?;
        if beyond_storage(&body) {
            prop_assert_ne!(status, 200, "accepted beyond storage's range: {}", what);
            if matches!(auth, Auth::Device) && matches!(wrap, Wrap::Plain | Wrap::Gzip) && json_type
            {
                prop_assert_eq!(status, 400, "{}", what);
            }
            return Ok(());
        }
        if status == 200 {
            let ack: Value = serde_json::from_slice(&answer).unwrap();
            prop_assert!(ack["acked"].is_u64(), "{ack}");
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    enough_of_each(&seen.into_inner(), &[200, 400, 401, 403, 415]);
}

/// The generators reach every answer that matters (a fuzzer that only ever
/// hits the first check proves nothing): at least 2 % of the cases each.
fn enough_of_each(seen: &std::collections::BTreeMap<u16, u32>, statuses: &[u16]) {
    let total: u32 = seen.values().sum();
    for s in statuses {
        let n = seen.get(s).copied().unwrap_or(0);
        assert!(
            n * 50 >= total,
            "only {n} of {total} answers were {s}: {seen:?}"
        );
    }
    eprintln!("answers: {seen:?}");
}

// ---------------------------------------------------------------------------
// The read API

/// `%XX` for every byte: any bytes make a valid URI.
fn encode(s: &[u8]) -> String {
    s.iter().map(|b| format!("%{b:02X}")).collect()
}

#[derive(Debug, Clone)]
enum Target {
    Uptime,
    Outages,
    Timeline(String),
    Devices,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => Just(Target::Uptime),
        3 => Just(Target::Outages),
        3 => prop_oneof![
            Just("gw-1".to_string()),
            "[a-z0-9-]{1,12}",
            Just(String::new()),
            text()
        ]
        .prop_map(Target::Timeline),
        1 => Just(Target::Devices),
    ]
}

/// A query string: the report parameters (structure-aware), some extra or
/// repeated ones, or arbitrary bytes.
/// A query: parameter pairs every endpoint accepts (kept to those of the
/// endpoint asked), or a raw query string.
#[derive(Debug, Clone)]
enum Query {
    Valid(Vec<(&'static str, String)>),
    Raw(String),
}

impl Query {
    fn for_target(&self, t: &Target) -> String {
        match self {
            Query::Raw(q) => q.clone(),
            Query::Valid(pairs) => {
                let allowed: &[&str] = match t {
                    Target::Uptime => &NAMES,
                    Target::Outages => &["from", "to", "by", "schedule", "group"],
                    Target::Timeline(_) => &["from", "to"],
                    Target::Devices => &[],
                };
                pairs
                    .iter()
                    .filter(|(k, _)| {
                        allowed.contains(k)
                            || *k == "format" && !allowed.is_empty() && allowed.len() > 2
                    })
                    .map(|(k, v)| format!("{k}={}", encode(v.as_bytes())))
                    .collect::<Vec<_>>()
                    .join("&")
            }
        }
    }
}

fn query() -> impl Strategy<Value = Query> {
    let pairs = (
        params(),
        prop::option::of(prop_oneof![
            Just("csv"),
            Just("json"),
            Just("CSV"),
            Just("")
        ]),
        prop::option::of(text()),
        prop::collection::vec((text(), text()), 0..2),
    )
        .prop_map(|(p, format, group, extra)| {
            let mut q: Vec<String> = NAMES
                .iter()
                .zip(&p)
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v.as_bytes()))))
                .collect();
            if let Some(f) = format {
                q.push(format!("format={f}"));
            }
            if let Some(g) = group {
                q.push(format!("group={}", encode(g.as_bytes())));
            }
            for (k, v) in extra {
                q.push(format!("{}={}", encode(k.as_bytes()), encode(v.as_bytes())));
            }
            q.join("&")
        });
    prop_oneof![
        6 => valid_query().prop_map(Query::Valid),
        6 => pairs.prop_map(Query::Raw),
        1 => prop::collection::vec(any::<u8>(), 0..200).prop_map(|b| Query::Raw(encode(&b))),
        1 => "[a-z=&%0-9A-F+]{0,60}".prop_map(Query::Raw),
    ]
}

/// A query every endpoint accepts (over the stored day), with at most one
/// parameter then replaced by a hostile value.
fn valid_query() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    (
        prop_oneof![
            Just(("2026-11-01", "2026-11-02")),
            Just(("2026-11-01T00:00:00+06:00", "2026-11-01T12:30:00Z")),
            Just(("2026-10-01", "2026-12-31")),
        ],
        prop_oneof![
            Just("device"),
            Just("office"),
            Just("upazila"),
            Just("district"),
            Just("division")
        ],
        prop_oneof![
            Just("always"),
            Just("office"),
            Just("office:Asia/Dhaka:sun-thu:08:00-16:00"),
            Just("office:UTC:mon,wed:00:00-24:00"),
        ],
        prop::option::of(prop_oneof![Just("csv"), Just("json")]),
        prop::option::of((0usize..6, text())),
    )
        .prop_map(|((from, to), by, sched, format, replace)| {
            let mut p = vec![
                ("from", from.to_string()),
                ("to", to.to_string()),
                ("by", by.to_string()),
                ("schedule", sched.to_string()),
            ];
            if let Some(f) = format {
                p.push(("format", f.to_string()));
            }
            if let Some((i, v)) = replace {
                let k = ["from", "to", "by", "schedule", "limit", "target"][i];
                p.retain(|(n, _)| *n != k);
                p.push((k, v));
            }
            p
        })
}

#[derive(Debug, Clone, Copy)]
enum Reader {
    Admin,
    Branch,
    Device,
}

#[test]
fn read_api_never_answers_5xx() {
    let rt = runtime();
    let c = rt.block_on(Collector::start());
    let mut runner = TestRunner::new(runner_config(300));
    let strategy = (
        target(),
        query(),
        prop_oneof![
            4 => Just(Reader::Admin),
            2 => Just(Reader::Branch),
            1 => Just(Reader::Device)
        ],
    );
    let seen = std::cell::RefCell::new(std::collections::BTreeMap::<u16, u32>::new());
    let result = runner.run(&strategy, |(target, q, reader)| {
        let path = match &target {
            Target::Uptime => "/api/v1/reports/uptime".to_string(),
            Target::Outages => "/api/v1/outages".to_string(),
            Target::Timeline(name) => {
                format!("/api/v1/devices/{}/timeline", encode(name.as_bytes()))
            }
            Target::Devices => "/api/v1/devices".to_string(),
        };
        let url = format!("{}{path}?{}", c.base, q.for_target(&target));
        let token = match reader {
            Reader::Admin => &c.admin_token,
            Reader::Branch => &c.branch_token,
            Reader::Device => &c.device_token,
        };
        let (status, ct, answer) = rt.block_on(async {
            let resp = c.client.get(&url).bearer_auth(token).send().await.unwrap();
            let ct = resp
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            (resp.status().as_u16(), ct, resp.bytes().await.unwrap())
        });
        *seen.borrow_mut().entry(status).or_default() += 1;
        check_answer(status, &answer, &url)?;
        if status == 200 {
            if ct.starts_with("text/csv") {
                let mut r = csv::Reader::from_reader(&answer[..]);
                prop_assert!(r.records().all(|x| x.is_ok()), "{url}");
            } else {
                prop_assert!(serde_json::from_slice::<Value>(&answer).is_ok(), "{url}");
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    enough_of_each(&seen.into_inner(), &[200, 400, 403, 404]);
}

// ---------------------------------------------------------------------------
// The real binary

async fn linkwatch(args: &[String], cwd: &std::path::Path) -> (Option<i32>, String) {
    let out = tokio::process::Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("LINKWATCH_COLLECTOR_CONFIG")
        .env_remove("RUST_LOG")
        .output()
        .await
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Exit 0, or 2 with a message; a panic exits 101, a signal has no code.
fn check_exit(code: Option<i32>, err: &str, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        code == Some(0)
            || (code == Some(2) && (err.contains("linkwatch: ") || err.contains("error:"))),
        "{what}: exit {code:?}\n{err}"
    );
    prop_assert!(!err.contains("panicked"), "{what}: {err}");
    Ok(())
}

#[test]
fn report_command_never_panics() {
    let rt = runtime();
    let db = TestDb::sqlite();
    let cfg = db.dir().join("collector.toml");
    std::fs::write(&cfg, format!("[collector]\ndatabase = {:?}\n", db.url())).unwrap();
    rt.block_on(db.open());
    let mut runner = TestRunner::new(runner_config(16));
    let result = runner.run(&params(), |p| {
        let mut args = vec![
            "report".to_string(),
            "--config".into(),
            cfg.display().to_string(),
        ];
        for (k, v) in NAMES.iter().zip(&p) {
            if let Some(v) = v {
                // A command line cannot carry a NUL.
                args.push(format!("--{k}={}", v.replace('\0', "")));
            }
        }
        let (code, err) = rt.block_on(linkwatch(&args, db.dir()));
        check_exit(code, &err, &format!("{args:?}"))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn device_import_never_panics() {
    let rt = runtime();
    let db = TestDb::sqlite();
    let cfg = db.dir().join("collector.toml");
    std::fs::write(&cfg, format!("[collector]\ndatabase = {:?}\n", db.url())).unwrap();
    let mut runner = TestRunner::new(runner_config(16));
    let strategy = (
        offices(),
        spelling(),
        prop::collection::vec((any::<usize>(), any::<char>()), 0..4),
        any::<bool>(),
    );
    let result = runner.run(&strategy, |(v, s, edits, toml_file)| {
        let mut text: Vec<char> = if toml_file {
            #[derive(serde::Serialize)]
            struct File<'a> {
                office: &'a [Office],
            }
            toml::to_string(&File { office: &v })
                .unwrap()
                .chars()
                .collect()
        } else {
            csv_file(&v, &s).chars().collect()
        };
        for (at, c) in edits {
            let i = at % (text.len() + 1);
            text.insert(i, c);
        }
        let file = db.dir().join(if toml_file { "o.toml" } else { "o.csv" });
        std::fs::write(&file, text.into_iter().collect::<String>()).unwrap();
        let args = vec![
            "device".to_string(),
            "import".into(),
            file.display().to_string(),
            "--config".into(),
            cfg.display().to_string(),
        ];
        let (code, err) = rt.block_on(linkwatch(&args, db.dir()));
        check_exit(code, &err, &format!("{args:?}"))
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
