//! The collector's ingest API over real HTTP on loopback (127.0.0.1 only): a
//! collector started in-process on port 0 (`server::serve_on`), reqwest as the
//! client. Every scenario that touches storage runs on SQLite (a file in a
//! temporary directory) and on PostgreSQL (a fresh schema in the database
//! `LINKWATCH_TEST_PG_URL` names; skipped with a message when unset). Also:
//! TLS with a self-signed certificate, a failing store (503), and the
//! `linkwatch collector` / `linkwatch device ...` command line.

mod common;

use common::cli::linkwatch;

use common::db::{TestDb, on_both};
use linkwatch::collector::access::{Branch, Role};
use linkwatch::collector::devices;
use linkwatch::collector::http::ErrorBody;
use linkwatch::collector::rollup::{DayEnds, DayRow, DeviceSums};
use linkwatch::collector::server::{self, CollectorError};
use linkwatch::collector::store::{
    ApiToken, Device, Dirty, Office, Store, StoreError, StoredRecord,
};
use linkwatch::config::collector::CollectorConfig;
use linkwatch::wire::v1::{Ack, Backlog, Record};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

// ---------------------------------------------------------------------------
// Databases (as in tests/store.rs)

on_both!(
    good_batch_is_acked_and_replay_counts_duplicates,
    gzip_bodies_are_accepted_and_capped,
    invalid_batches_are_400_naming_the_field,
    oversized_body_is_413,
    missing_and_bad_tokens_are_401,
    revoked_token_is_403,
    a_new_token_replaces_the_old_at_once,
    token_of_another_device_is_403_and_stores_nothing,
    overload_is_429_with_retry_after,
    health_and_metrics,
    cli_device_add_list_revoke_against_a_running_collector,
    cli_import_names_the_bad_line,
    announced_deadline_and_last_seen,
    reported_backlog,
);

// ---------------------------------------------------------------------------
// A collector in-process

struct Running {
    addr: SocketAddr,
    base: String,
    store: Arc<dyn Store>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), CollectorError>>,
}

impl Running {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Graceful shutdown; the server must return Ok.
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .expect("collector stops within 30 s")
            .unwrap()
            .unwrap();
    }
}

/// Serve `store` on 127.0.0.1:0 with `cfg` (its listen/database unused).
async fn start_with(store: Arc<dyn Store>, cfg: CollectorConfig) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let scheme = if cfg.tls().is_some() { "https" } else { "http" };
    let task = tokio::spawn({
        let store = store.clone();
        async move {
            server::serve_on(listener, store, &cfg, async {
                let _ = rx.await;
            })
            .await
        }
    });
    Running {
        addr,
        base: format!("{scheme}://127.0.0.1:{}", addr.port()),
        store,
        stop: Some(tx),
        task,
    }
}

/// A collector on `db` with the embedded default config changed by `tweak`.
async fn start(db: &TestDb, tweak: impl FnOnce(&mut CollectorConfig)) -> Running {
    let mut cfg = CollectorConfig::embedded();
    cfg.collector.database = db.url().to_string();
    tweak(&mut cfg);
    start_with(db.open().await, cfg).await
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A batch of heartbeats `seqs` for `device`, as JSON text.
fn batch(device: &str, seqs: impl IntoIterator<Item = u64>) -> String {
    let t = now_ms() - 3_600_000;
    let records: Vec<String> = seqs
        .into_iter()
        .map(|s| {
            format!(
                r#"{{"seq":{s},"at":{},"mono_ms":{},"boot_id":"b0f1","body":{{"type":"heartbeat","online":true}}}}"#,
                t + s as i64 * 60_000,
                s * 60_000
            )
        })
        .collect();
    format!(
        r#"{{"v":1,"device":"{device}","records":[{}]}}"#,
        records.join(",")
    )
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Answer {
    fn ack(&self) -> Ack {
        assert_eq!(self.status, StatusCode::OK, "{}", self.text);
        serde_json::from_str(&self.text).unwrap()
    }
    fn error(&self) -> ErrorBody {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not an error body ({e}): {}", self.text))
    }
}

async fn post_raw(
    c: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    body: Vec<u8>,
    gzip: bool,
) -> Answer {
    let mut req = c
        .post(url)
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if gzip {
        req = req.header("content-encoding", "gzip");
    }
    let resp = req.send().await.unwrap();
    Answer {
        status: resp.status(),
        headers: resp.headers().clone(),
        text: resp.text().await.unwrap(),
    }
}

async fn ingest(r: &Running, token: Option<&str>, body: &str) -> Answer {
    post_raw(
        &client(),
        &r.url("/api/v1/ingest"),
        token,
        body.as_bytes().to_vec(),
        false,
    )
    .await
}

async fn add(store: &dyn Store, name: &str) -> (Device, String) {
    devices::add_device(store, name, None, now_ms())
        .await
        .unwrap()
}

async fn stored(store: &dyn Store, d: &Device) -> Vec<StoredRecord> {
    store.records(d.id, 0, 10_000).await.unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

// ---------------------------------------------------------------------------
// Scenarios

async fn good_batch_is_acked_and_replay_counts_duplicates(db: Arc<TestDb>) {
    let r = start(&db, |_| {}).await;
    let (dev, token) = add(r.store.as_ref(), "dhaka-gw1").await;
    let body = batch("dhaka-gw1", 1..=3);
    let a = ingest(&r, Some(&token), &body).await;
    assert!(
        a.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    assert_eq!(
        a.ack(),
        Ack {
            acked: 3,
            stored: 3,
            duplicates: 0
        }
    );
    let again = ingest(&r, Some(&token), &body).await;
    assert_eq!(
        again.ack(),
        Ack {
            acked: 3,
            stored: 0,
            duplicates: 3
        }
    );
    // A gap: 5 is stored but the ack stays at 3 until 4 arrives.
    assert_eq!(
        ingest(&r, Some(&token), &batch("dhaka-gw1", [5]))
            .await
            .ack(),
        Ack {
            acked: 3,
            stored: 1,
            duplicates: 0
        }
    );
    assert_eq!(
        ingest(&r, Some(&token), &batch("dhaka-gw1", [4]))
            .await
            .ack(),
        Ack {
            acked: 5,
            stored: 1,
            duplicates: 0
        }
    );
    // An empty batch just tells the agent where it stands.
    assert_eq!(
        ingest(&r, Some(&token), &batch("dhaka-gw1", []))
            .await
            .ack(),
        Ack {
            acked: 5,
            stored: 0,
            duplicates: 0
        }
    );
    let recs = stored(r.store.as_ref(), &dev).await;
    assert_eq!(
        recs.iter().map(|x| x.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(recs[0].kind, "heartbeat");
    r.stop().await;
}

async fn gzip_bodies_are_accepted_and_capped(db: Arc<TestDb>) {
    let r = start(&db, |_| {}).await;
    let (dev, token) = add(r.store.as_ref(), "gw-gz").await;
    let c = client();
    let url = r.url("/api/v1/ingest");
    let a = post_raw(
        &c,
        &url,
        Some(&token),
        gzip(batch("gw-gz", 1..=50).as_bytes()),
        true,
    )
    .await;
    assert_eq!(
        a.ack(),
        Ack {
            acked: 50,
            stored: 50,
            duplicates: 0
        }
    );
    // Not gzip at all.
    let a = post_raw(&c, &url, Some(&token), b"{\"v\":1}".to_vec(), true).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(a.error().error.contains("gzip"), "{}", a.text);
    // A gzip bomb: 33 MiB of spaces is ~33 KiB compressed, over the 32 MiB cap.
    let bomb = gzip(&vec![b' '; 33 * 1024 * 1024]);
    assert!(bomb.len() < 200_000);
    let a = post_raw(&c, &url, Some(&token), bomb, true).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.text);
    assert!(a.error().error.contains("decompressed"), "{}", a.text);
    // An encoding the collector does not speak.
    let mut req = c
        .post(&url)
        .header("authorization", format!("Bearer {token}"))
        .header("content-encoding", "br")
        .body(batch("gw-gz", [51]));
    req = req.header("content-type", "application/json");
    assert_eq!(
        req.send().await.unwrap().status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(stored(r.store.as_ref(), &dev).await.len(), 50);
    r.stop().await;
}

async fn invalid_batches_are_400_naming_the_field(db: Arc<TestDb>) {
    let r = start(&db, |_| {}).await;
    let (dev, token) = add(r.store.as_ref(), "gw-bad").await;
    let good = batch("gw-bad", 1..=4);
    // A 15-digit time: after the year 9999 (readings up to then are taken:
    // a wrong clock is placed by its monotonic time, not refused).
    let future_at = good.replacen("\"at\":", "\"at\":99", 1);
    let cases: Vec<(String, Option<&str>)> = vec![
        // Malformed JSON.
        ("{not json".into(), Some("body")),
        ("{\"v\":1,".into(), Some("body")),
        // Wrong type.
        (good.replacen("\"seq\":1,", "\"seq\":\"one\",", 1), Some("records[0].seq")),
        // Unknown field.
        (good.replacen("\"mono_ms\"", "\"extra\":1,\"mono_ms\"", 1), Some("records[0].extra")),
        (good.replacen("{\"v\":1,", "{\"v\":1,\"x\":2,", 1), Some("x")),
        // Out of range.
        (future_at, Some("records[0].at")),
        (
            r#"{"v":1,"device":"gw-bad","records":[{"seq":1,"at":-1000,"mono_ms":1,"boot_id":"b","body":{"type":"heartbeat","online":true}}]}"#.into(),
            Some("records[0].at"),
        ),
        (good.replacen("\"seq\":3,", "\"seq\":2,", 1), Some("records[2].seq")),
        (good.replacen("\"v\":1", "\"v\":2", 1), Some("v")),
        (good.replace("\"online\":true", "\"online\":true,\"count\":0"), Some("records[0].body.count")),
    ];
    for (body, field) in cases {
        let a = ingest(&r, Some(&token), &body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {}", a.text);
        let e = a.error();
        assert!(!e.error.is_empty());
        match field {
            Some(f) => assert_eq!(e.field.as_deref(), Some(f), "{body}: {}", a.text),
            None => assert!(
                e.field.as_deref().is_some_and(|f| !f.is_empty()),
                "{}",
                a.text
            ),
        }
    }
    assert!(stored(r.store.as_ref(), &dev).await.is_empty());
    // The collector still works for this device after all that.
    assert_eq!(ingest(&r, Some(&token), &good).await.ack().acked, 4);
    r.stop().await;
}

async fn oversized_body_is_413(db: Arc<TestDb>) {
    // A small configured limit...
    let r = start(&db, |c| c.collector.max_body_bytes = 4096).await;
    let (dev, token) = add(r.store.as_ref(), "gw-big").await;
    let body = batch("gw-big", 1..=60);
    assert!(body.len() > 4096);
    let a = ingest(&r, Some(&token), &body).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.text);
    assert!(a.error().error.contains("4096"), "{}", a.text);
    assert!(stored(r.store.as_ref(), &dev).await.is_empty());
    let a = ingest(&r, Some(&token), &batch("gw-big", 1..=5)).await;
    assert_eq!(a.ack().acked, 5);
    r.stop().await;
    // ...and the default (wire::v1::MAX_BODY, 4 MiB), compressed bodies included.
    let r = start(&db, |_| {}).await;
    let junk = vec![b'x'; linkwatch::wire::v1::MAX_BODY + 1];
    let a = post_raw(
        &client(),
        &r.url("/api/v1/ingest"),
        Some(&token),
        junk,
        true,
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", a.text);
    r.stop().await;
}

async fn missing_and_bad_tokens_are_401(db: Arc<TestDb>) {
    let r = start(&db, |_| {}).await;
    let (dev, _token) = add(r.store.as_ref(), "gw-auth").await;
    let body = batch("gw-auth", 1..=2);
    let a = ingest(&r, None, &body).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(
        a.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    // Malformed: another scheme.
    let a = client()
        .post(r.url("/api/v1/ingest"))
        .header("authorization", "Basic dXNlcjpwYXNz")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(a.status(), StatusCode::UNAUTHORIZED);
    assert!(a.headers().contains_key("www-authenticate"));
    // Well-formed but unknown.
    let a = ingest(&r, Some(&devices::new_token()), &body).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    assert_eq!(a.error().error, "unknown token");
    assert!(
        a.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert!(stored(r.store.as_ref(), &dev).await.is_empty());
    r.stop().await;
}

async fn revoked_token_is_403(db: Arc<TestDb>) {
    let r = start(&db, |_| {}).await;
    let (dev, token) = add(r.store.as_ref(), "gw-rev").await;
    assert_eq!(
        ingest(&r, Some(&token), &batch("gw-rev", [1]))
            .await
            .ack()
            .acked,
        1
    );
    assert!(r.store.revoke_device("gw-rev").await.unwrap());
    let a = ingest(&r, Some(&token), &batch("gw-rev", [2])).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(a.error().error, "token revoked");
    assert_eq!(stored(r.store.as_ref(), &dev).await.len(), 1);
    r.stop().await;
}

/// The collector keeps which device a token belongs to between uploads; a
/// new token issued to the device (here straight in the store, as the CLI
/// of another process does) still refuses the old one on the very next
/// upload, stores nothing of it, and the new one works at once.
async fn a_new_token_replaces_the_old_at_once(db: Arc<TestDb>) {
    let r = start(&db, |_| {}).await;
    let (dev, old) = add(r.store.as_ref(), "gw-rot").await;
    for seqs in [[1], [2]] {
        // Twice: the second upload is authenticated from what the first
        // looked up.
        let a = ingest(&r, Some(&old), &batch("gw-rot", seqs)).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    }
    let new = devices::rotate_device(r.store.as_ref(), "gw-rot")
        .await
        .unwrap()
        .expect("the device exists");
    let a = ingest(&r, Some(&old), &batch("gw-rot", [3])).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", a.text);
    assert_eq!(a.error().error, "unknown token");
    assert_eq!(stored(r.store.as_ref(), &dev).await.len(), 2);
    let a = ingest(&r, Some(&new), &batch("gw-rot", [3])).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.ack().acked, 3);
    // And revoking after the new token was used refuses it at once too.
    assert!(r.store.revoke_device("gw-rot").await.unwrap());
    let a = ingest(&r, Some(&new), &batch("gw-rot", [4])).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(a.error().error, "token revoked");
    assert_eq!(stored(r.store.as_ref(), &dev).await.len(), 3);
    r.stop().await;
}

async fn token_of_another_device_is_403_and_stores_nothing(db: Arc<TestDb>) {
    let r = start(&db, |_| {}).await;
    let (a_dev, a_token) = add(r.store.as_ref(), "device-a").await;
    let (b_dev, _b_token) = add(r.store.as_ref(), "device-b").await;
    let a = ingest(&r, Some(&a_token), &batch("device-b", 1..=3)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    assert_eq!(a.error().error, "this token belongs to device device-a");
    for d in [&a_dev, &b_dev] {
        assert!(stored(r.store.as_ref(), d).await.is_empty(), "{}", d.name);
        let now = r.store.device_by_name(&d.name).await.unwrap().unwrap();
        assert_eq!(now.acked, 0, "{}", d.name);
    }
    r.stop().await;
}

async fn overload_is_429_with_retry_after(db: Arc<TestDb>) {
    let r = start(&db, |c| c.collector.max_inflight = 1).await;
    let (_dev, token) = add(r.store.as_ref(), "gw-busy").await;
    // Hold the only slot: a request whose body never finishes arriving.
    let mut slow = tokio::net::TcpStream::connect(r.addr).await.unwrap();
    slow.write_all(
        format!(
            "POST /api/v1/ingest HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{\"v\":1,"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let c = client();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = c
            .get(r.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if m.contains("linkwatch_collector_ingest_inflight 1") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "slot never taken: {m}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let a = ingest(&r, Some(&token), &batch("gw-busy", [1])).await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS, "{}", a.text);
    assert_eq!(a.headers["retry-after"], "1");
    // Overload is answered before authentication: no token needed to see it.
    assert_eq!(
        ingest(&r, None, "{}").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The client goes away: its slot is freed.
    drop(slow);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let a = ingest(&r, Some(&token), &batch("gw-busy", [1])).await;
        if a.status == StatusCode::OK {
            assert_eq!(a.ack().acked, 1);
            break;
        }
        assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    r.stop().await;
}

async fn health_and_metrics(db: Arc<TestDb>) {
    let r = start(&db, |_| {}).await;
    let c = client();
    let h = c.get(r.url("/health")).send().await.unwrap();
    assert_eq!(h.status(), StatusCode::OK);
    assert_eq!(h.text().await.unwrap().trim(), "ok");
    let (_dev, token) = add(r.store.as_ref(), "gw-m").await;
    ingest(&r, Some(&token), &batch("gw-m", 1..=3)).await.ack();
    ingest(&r, Some(&token), &batch("gw-m", 2..=4)).await.ack();
    assert_eq!(
        ingest(&r, None, "{}").await.status,
        StatusCode::UNAUTHORIZED
    );
    let m = c.get(r.url("/metrics")).send().await.unwrap();
    assert_eq!(m.status(), StatusCode::OK);
    let text = m.text().await.unwrap();
    for line in [
        "linkwatch_collector_ingest_requests_total{code=\"200\"} 2",
        "linkwatch_collector_ingest_requests_total{code=\"401\"} 1",
        "linkwatch_collector_ingest_records_stored_total 4",
        "linkwatch_collector_ingest_records_duplicate_total 2",
        "linkwatch_collector_ingest_duration_seconds_count 3",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    // Unknown paths and methods.
    assert_eq!(
        c.get(r.url("/api/v1/ingest"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::METHOD_NOT_ALLOWED
    );
    // An unknown path is 404 with the error body, like any refusal (the
    // client makes `%2E` a dot segment: this asks for `/api/v1/devices/timeline`).
    for path in ["/nope", "/api/v1/devices/%2E/timeline"] {
        let resp = c.get(r.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        let body: ErrorBody = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
        assert!(body.error.contains("no such endpoint"), "{path}: {body:?}");
    }
    r.stop().await;
}

/// The batch's `next_upload_within_s` becomes the device's deadline (the
/// collector's clock plus it, at most 7 days; absent: none), the read API
/// and the metrics show last seen, and a bad value is a 400 naming it.
async fn announced_deadline_and_last_seen(db: Arc<TestDb>) {
    let store = db.open().await;
    let (_, token) = add(store.as_ref(), "gw-d").await;
    let (_, _) = add(store.as_ref(), "silent-one").await;
    let (_, admin) = devices::add_api_token(store.as_ref(), "ops", Role::Admin, None, now_ms())
        .await
        .unwrap();
    let r = start(&db, |_| {}).await;
    let with = |seqs, within: &str| {
        let b = batch("gw-d", seqs);
        format!("{},\"next_upload_within_s\":{within}}}", &b[..b.len() - 1])
    };
    let before = now_ms();
    ingest(&r, Some(&token), &with(1..=2, "307")).await.ack();
    let after = now_ms();
    let seen = r.store.device_by_name("gw-d").await.unwrap().unwrap().seen;
    let due = seen.next_upload_due_ms.unwrap();
    assert!(
        (before + 307_000..=after + 307_000).contains(&due),
        "{due} not within {before}..{after} + 307 s"
    );
    assert!((before..=after).contains(&seen.last_upload_ms.unwrap()));
    // Newest record: seq 2 of `batch`, placed an hour ago plus 2 minutes.
    let newest = seen.last_record_ms.unwrap();
    assert!((before - 3_600_000 + 120_000..=after - 3_600_000 + 120_000).contains(&newest));
    // Absurdly far: taken as 7 days.
    ingest(&r, Some(&token), &with(3..=3, "4294967295"))
        .await
        .ack();
    let seen = r.store.device_by_name("gw-d").await.unwrap().unwrap().seen;
    let week = seen.next_upload_due_ms.unwrap() - seen.last_upload_ms.unwrap();
    assert_eq!(week, 7 * 86_400_000);
    // Not a count of seconds: refused, naming the field; nothing changed.
    for bad in ["-1", "\"300\"", "4294967296", "1.5", "null"] {
        let a = ingest(&r, Some(&token), &with(4..=4, bad)).await;
        if bad == "null" {
            // An explicit null is the field left out.
            a.ack();
            continue;
        }
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert!(a.text.contains("next_upload_within_s"), "{bad}: {}", a.text);
    }
    let seen = r.store.device_by_name("gw-d").await.unwrap().unwrap().seen;
    assert_eq!(
        seen.next_upload_due_ms, None,
        "the null upload announced none"
    );
    // The read API's device list.
    let text = client()
        .get(r.url("/api/v1/devices"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let list: serde_json::Value = serde_json::from_str(&text).unwrap();
    let gw = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "gw-d")
        .unwrap();
    assert_eq!(gw["last_upload_ms"], seen.last_upload_ms.unwrap());
    assert!(gw["last_upload"].as_str().unwrap().ends_with('Z'));
    assert_eq!(gw["last_record_ms"], seen.last_record_ms.unwrap());
    assert!(gw["next_upload_due_ms"].is_null());
    let quiet = list
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "silent-one")
        .unwrap();
    assert!(quiet["last_upload"].is_null() && quiet["last_upload_ms"].is_null());
    // The metrics: refreshed at start (both devices known, none uploaded
    // yet) and then every 15 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let text = loop {
        let text = client()
            .get(r.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("linkwatch_collector_devices 2") {
            break text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no last-seen gauges within 30 s:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for line in [
        "linkwatch_collector_devices_silent 0",
        "# TYPE linkwatch_collector_devices_never_uploaded gauge",
        "# TYPE linkwatch_collector_devices_last_upload_age gauge",
    ] {
        assert!(text.contains(line), "missing `{line}` in:\n{text}");
    }
    r.stop().await;
}

/// The batch's `backlog` (what the agent still has to send) is kept with
/// the device; a batch without it makes it unknown; a bad one is 400 naming
/// the field and changes nothing.
async fn reported_backlog(db: Arc<TestDb>) {
    let store = db.open().await;
    let (d, token) = add(store.as_ref(), "gw-b").await;
    let r = start(&db, |_| {}).await;
    let with = |seqs, backlog: &str| {
        let b = batch("gw-b", seqs);
        format!("{},\"backlog\":{backlog}}}", &b[..b.len() - 1])
    };
    let backlog = r#"{"records":4200,"oldest_at":1790000000000}"#;
    ingest(&r, Some(&token), &with(1..=2, backlog)).await.ack();
    let want = Some(Backlog {
        records: 4_200,
        oldest_at: Some(1_790_000_000_000),
    });
    assert_eq!(r.store.spool_backlog(d.id).await.unwrap(), want);
    for (bad, field) in [
        (r#"{"records":-1}"#, "backlog.records"),
        (r#"{"records":9223372036854775808}"#, "backlog.records"),
        (r#"{"records":1,"oldest_at":-5}"#, "backlog.oldest_at"),
        (r#"{"records":1,"depth":2}"#, "backlog"),
        (r#""many""#, "backlog"),
    ] {
        let a = ingest(&r, Some(&token), &with(3..=3, bad)).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{bad}: {}", a.text);
        assert!(a.text.contains(field), "{bad}: {}", a.text);
        assert_eq!(r.store.spool_backlog(d.id).await.unwrap(), want, "{bad}");
    }
    ingest(&r, Some(&token), &batch("gw-b", 3..=3)).await.ack();
    assert_eq!(r.store.spool_backlog(d.id).await.unwrap(), None);
    r.stop().await;
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

async fn cli_device_add_list_revoke_against_a_running_collector(db: Arc<TestDb>) {
    let cfg = config_file(&db);
    let dir = db.dir();
    // An office to attach the device to.
    let csv = dir.join("offices.csv");
    std::fs::write(
        &csv,
        "code,name,division,district,upazila\n\"dhk-savar-uno\",\"UNO Office, Savar\",Dhaka,Dhaka,Savar\n",
    )
    .unwrap();
    let (code, out, err) = linkwatch(
        &["device", "import", csv.to_str().unwrap(), "--config", &cfg],
        dir,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 1 offices"), "{out}");

    let (code, out, err) = linkwatch(
        &[
            "device",
            "add",
            "uno-savar",
            "--office",
            "dhk-savar-uno",
            "--config",
            &cfg,
        ],
        dir,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let token = out.trim().to_string();
    assert!(token.starts_with("lw1_") && !token.contains('\n'), "{out}");
    assert!(
        err.contains("only this once") && err.contains("hash"),
        "{err}"
    );
    // Unknown office, duplicate name, bad name: refused with a reason.
    let (code, _, err) = linkwatch(
        &[
            "device", "add", "x1", "--office", "nowhere", "--config", &cfg,
        ],
        dir,
    )
    .await;
    assert_eq!(code, 2);
    assert!(err.contains("nowhere"), "{err}");
    let (code, _, err) = linkwatch(&["device", "add", "uno-savar", "--config", &cfg], dir).await;
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    let (code, _, err) = linkwatch(&["device", "add", "a b", "--config", &cfg], dir).await;
    assert_eq!(code, 2);
    assert!(err.contains("device name"), "{err}");

    // The token authenticates an ingest.
    let r = start(&db, |_| {}).await;
    let a = ingest(&r, Some(&token), &batch("uno-savar", 1..=2)).await;
    assert_eq!(a.ack().acked, 2);
    let stored_device = r.store.device_by_name("uno-savar").await.unwrap().unwrap();
    assert_eq!(stored_device.office.as_deref(), Some("dhk-savar-uno"));

    let (code, out, err) = linkwatch(&["device", "list", "--config", &cfg], dir).await;
    assert_eq!(code, 0, "{err}");
    let row = out
        .lines()
        .find(|l| l.starts_with("uno-savar"))
        .unwrap_or_else(|| panic!("{out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1..4], ["dhk-savar-uno", "no", "2"], "{out}");
    assert!(out.lines().next().unwrap().starts_with("NAME"), "{out}");
    // Last seen: uploaded just now, its newest record an hour old.
    assert!(row.ends_with(" ok"), "{out}");
    assert!(row.contains("s ago") && row.contains("58m ago"), "{out}");
    let (code, out, err) = linkwatch(&["device", "list", "--json", "--config", &cfg], dir).await;
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let d = &list[0];
    assert_eq!(d["name"], "uno-savar");
    assert!(
        d["last_upload"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{out}"
    );
    assert_eq!(d["silent"], false, "{out}");
    // No deadline announced (this batch has none): last upload + 5 min.
    assert!(d["next_upload_due"].is_string(), "{out}");

    let (code, out, err) =
        linkwatch(&["device", "revoke", "uno-savar", "--config", &cfg], dir).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("revoked"), "{out}");
    let a = ingest(&r, Some(&token), &batch("uno-savar", [3])).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN, "{}", a.text);
    let (_, out, _) = linkwatch(&["device", "list", "--config", &cfg], dir).await;
    assert!(
        out.lines()
            .any(|l| l.starts_with("uno-savar") && l.contains(" yes ")),
        "{out}"
    );
    let (code, _, err) = linkwatch(&["device", "revoke", "ghost", "--config", &cfg], dir).await;
    assert_eq!(code, 2);
    assert!(err.contains("ghost"), "{err}");
    r.stop().await;
}

async fn cli_import_names_the_bad_line(db: Arc<TestDb>) {
    let cfg = config_file(&db);
    let dir = db.dir();
    let csv = dir.join("bad.csv");
    std::fs::write(
        &csv,
        "code,name,division,district,upazila\n\
         dhk-savar-uno,Savar,Dhaka,Dhaka,Savar\n\
         dhk-dhamrai-uno,\"Dhamrai, UNO,Dhaka,Dhaka,Dhamrai\n",
    )
    .unwrap();
    let (code, _, err) = linkwatch(
        &["device", "import", csv.to_str().unwrap(), "--config", &cfg],
        dir,
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("bad.csv:3"), "{err}");
    assert!(err.contains("column 2"), "{err}");
    // Nothing was imported from the bad file.
    let store = db.open().await;
    assert!(store.list_offices().await.unwrap().is_empty());
    // TOML works too, and updates by code.
    let toml = dir.join("offices.toml");
    std::fs::write(
        &toml,
        "[[office]]\ncode = \"dhk-savar-uno\"\nname = \"Savar UNO\"\ndivision = \"Dhaka\"\n\
         district = \"Dhaka\"\nupazila = \"Savar\"\nhours = \"office:Asia/Dhaka:sun-thu:08:00-16:00\"\n",
    )
    .unwrap();
    let (code, out, err) = linkwatch(
        &["device", "import", toml.to_str().unwrap(), "--config", &cfg],
        dir,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("imported 1"), "{out}");
    assert_eq!(
        store.list_offices().await.unwrap(),
        vec![Office {
            code: "dhk-savar-uno".into(),
            name: "Savar UNO".into(),
            division: "Dhaka".into(),
            district: "Dhaka".into(),
            upazila: "Savar".into(),
            hours: Some("office:Asia/Dhaka:sun-thu:08:00-16:00".into()),
        }]
    );
}

// ---------------------------------------------------------------------------
// Backend-independent: TLS, a failing store, the daemon and the embedded default

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_with_a_self_signed_certificate() {
    let db = TestDb::sqlite();
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let cert = db.dir().join("collector.crt");
    let key = db.dir().join("collector.key");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    linkwatch::shared::files::write_new_private(&key, ck.signing_key.serialize_pem().as_bytes())
        .unwrap();
    let r = start(&db, |c| {
        c.collector.tls_cert = Some(cert.clone());
        c.collector.tls_key = Some(key.clone());
    })
    .await;
    assert!(r.base.starts_with("https://127.0.0.1:"));
    let (_dev, token) = add(r.store.as_ref(), "gw-tls").await;

    let trusted = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let h = trusted.get(r.url("/health")).send().await.unwrap();
    assert_eq!(h.status(), StatusCode::OK);
    let localhost = format!("https://localhost:{}/health", r.addr.port());
    assert_eq!(
        trusted.get(&localhost).send().await.unwrap().status(),
        StatusCode::OK
    );
    let a = post_raw(
        &trusted,
        &r.url("/api/v1/ingest"),
        Some(&token),
        batch("gw-tls", 1..=2).into_bytes(),
        false,
    )
    .await;
    assert_eq!(a.ack().acked, 2);

    // Without the certificate: verification fails.
    let e = client().get(r.url("/health")).send().await.unwrap_err();
    let chain = error_chain(&e);
    assert!(e.is_connect(), "{chain}");
    assert!(chain.to_lowercase().contains("certificate"), "{chain}");
    // Plain HTTP to the TLS port gets nowhere.
    let plain = format!("http://127.0.0.1:{}/health", r.addr.port());
    assert!(
        client()
            .get(&plain)
            .send()
            .await
            .map(|r| r.status() != StatusCode::OK)
            .unwrap_or(true)
    );
    r.stop().await;

    // A key that is not PEM: the server refuses to start, naming the files.
    std::fs::write(&key, "not a key").unwrap();
    let mut cfg = CollectorConfig::embedded();
    cfg.collector.tls_cert = Some(cert.clone());
    cfg.collector.tls_key = Some(key.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = server::serve_on(listener, db.open().await, &cfg, std::future::pending())
        .await
        .unwrap_err();
    assert!(matches!(e, CollectorError::Tls { .. }), "{e}");
    assert!(e.to_string().contains("collector.key"), "{e}");
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A store whose database is gone.
struct DownStore;

fn down() -> StoreError {
    StoreError::Query {
        op: "test",
        source: sqlx::Error::PoolTimedOut,
    }
}

#[async_trait::async_trait]
impl Store for DownStore {
    async fn add_device(
        &self,
        _: &str,
        _: Option<&str>,
        _: &str,
        _: i64,
    ) -> Result<Device, StoreError> {
        Err(down())
    }
    async fn device_by_token(&self, _: &str) -> Result<Option<Device>, StoreError> {
        Err(down())
    }
    async fn device_by_name(&self, _: &str) -> Result<Option<Device>, StoreError> {
        Err(down())
    }
    async fn list_devices(&self) -> Result<Vec<Device>, StoreError> {
        Err(down())
    }
    async fn revoke_device(&self, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn rotate_device_token(&self, _: &str, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn upsert_offices(&self, _: &[Office]) -> Result<usize, StoreError> {
        Err(down())
    }
    async fn list_offices(&self) -> Result<Vec<Office>, StoreError> {
        Err(down())
    }
    async fn ingest(&self, _: i64, _: &[Record], _: i64) -> Result<Ack, StoreError> {
        Err(down())
    }
    async fn records(&self, _: i64, _: i64, _: i64) -> Result<Vec<StoredRecord>, StoreError> {
        Err(down())
    }
    async fn ping(&self) -> Result<(), StoreError> {
        Err(down())
    }
    async fn add_api_token(
        &self,
        _: &str,
        _: Role,
        _: Option<&Branch>,
        _: &str,
        _: i64,
    ) -> Result<ApiToken, StoreError> {
        Err(down())
    }
    async fn api_token_by_hash(&self, _: &str) -> Result<Option<ApiToken>, StoreError> {
        Err(down())
    }
    async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        Err(down())
    }
    async fn revoke_api_token(&self, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn records_between(
        &self,
        _: i64,
        _: i64,
        _: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        Err(down())
    }
    async fn transitions_before(
        &self,
        _: i64,
        _: i64,
        _: i64,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        Err(down())
    }
    async fn dirty_due(&self, _: i64, _: i64) -> Result<Vec<Dirty>, StoreError> {
        Err(down())
    }
    async fn dirty_marks(&self) -> Result<Vec<Dirty>, StoreError> {
        Err(down())
    }
    async fn put_rollups(
        &self,
        _: i64,
        _: &[DayRow],
        _: &[(i64, String)],
        _: i64,
        _: i64,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn rollup_sums(&self, _: &str, _: i64, _: i64) -> Result<Vec<DeviceSums>, StoreError> {
        Err(down())
    }
    async fn rollup_ends(&self, _: &str, _: i64, _: i64) -> Result<Vec<DayEnds>, StoreError> {
        Err(down())
    }
    async fn rollup_timelines(
        &self,
        _: i64,
        _: i64,
        _: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        Err(down())
    }
    async fn delete_minutes_before(&self, _: i64, _: i64) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn delete_rollups_before(&self, _: i64, _: &str, _: i64) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn dirty_mark(&self, _: i64) -> Result<Option<Dirty>, StoreError> {
        Err(down())
    }
    async fn mark_all_dirty(&self, _: i64) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn has_rollups(&self, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_failure_is_503_and_unhealthy() {
    let r = start_with(Arc::new(DownStore), CollectorConfig::embedded()).await;
    let a = ingest(&r, Some(&devices::new_token()), &batch("gw", [1])).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE, "{}", a.text);
    assert!(a.headers.contains_key("retry-after"));
    // The database error is logged, not shown to the client.
    assert!(!a.text.contains("pool"), "{}", a.text);
    // The read API too: the token cannot be checked, so 503, not 401.
    let rep = client()
        .get(r.url("/api/v1/reports/uptime?from=2026-11-29&to=2026-11-30"))
        .bearer_auth(devices::new_token())
        .send()
        .await
        .unwrap();
    assert_eq!(rep.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(rep.headers().contains_key("retry-after"));
    let h = client().get(r.url("/health")).send().await.unwrap();
    assert_eq!(h.status(), StatusCode::SERVICE_UNAVAILABLE);
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn daemon_serves_and_stops_on_sigterm() {
    let db = TestDb::sqlite();
    let cfg = config_file(&db);
    let mut child = tokio::process::Command::new(BIN)
        .args(["collector", "--config", &cfg])
        .env_remove("LINKWATCH_COLLECTOR_CONFIG")
        .env("RUST_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        let mut seen = String::new();
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("collector listening")
                && let Some(a) = line.split("addr=").nth(1)
            {
                return a.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("the collector exited before listening:\n{seen}");
    })
    .await
    .expect("collector listens within 30 s");
    let h = client()
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(h.status(), StatusCode::OK);
    let pid = child.id().unwrap().to_string();
    let k = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(k.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("collector exits within 30 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn embedded_default_uses_a_database_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    // Not made by accident: without --config a missing database is an error.
    let (code, _, err) = linkwatch(&["device", "add", "gw-local"], dir.path()).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--create-database"), "{err}");
    assert!(!dir.path().join("linkwatch-collector.db").exists());
    let (code, out, err) = linkwatch(
        &["device", "add", "gw-local", "--create-database"],
        dir.path(),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("lw1_"), "{out}");
    assert!(dir.path().join("linkwatch-collector.db").is_file());
    let (code, out, _) = linkwatch(&["device", "list"], dir.path()).await;
    assert_eq!(code, 0);
    assert!(out.contains("gw-local"), "{out}");
}
