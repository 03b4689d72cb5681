//! The uploader against a fake collector on loopback (axum): order, nothing
//! lost or duplicated, retries after refusals and dropped connections,
//! partial acks, 413 halving, Retry-After, wake-ups, the metered hold, and
//! the errors a bad token or CA file gives. Waits are on conditions with
//! deadlines.

use axum::Router;
use axum::body::{Body as HttpBody, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use linkwatch::agent::spool::Spool;
use linkwatch::agent::upload::{UploadError, Uploader};
use linkwatch::config::agent::{AgentConfig, UploadSection};
use linkwatch::wire::v1::{Ack, Backlog, Body, Record, parse_batch};
use linkwatch::wire::{LinkKind, LinkState};
use std::collections::{BTreeMap, VecDeque};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

const TOKEN: &str = "s3cret-token";

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// What the fake collector does with the next request.
#[derive(Debug, Clone)]
enum Fault {
    /// Answer this status (with `Retry-After` seconds), store nothing.
    Status(u16, Option<u64>, &'static str),
    /// Store only the first n records, ack what is contiguous.
    StoreFirst(usize),
    /// Store everything, but ack only up to the end of the n-th record.
    AckFirst(usize),
    /// Store everything, then drop the connection in the middle of the answer.
    DropAfterStore,
}

#[derive(Default)]
struct Fake {
    store: BTreeMap<u64, Record>,
    /// (first seq, record count, status) of every request, in arrival order.
    requests: Vec<(u64, usize, u16, Instant)>,
    duplicates: u64,
    faults: VecDeque<Fault>,
    max_records: Option<usize>,
    /// `next_upload_within_s` of every valid batch, in arrival order.
    announced: Vec<Option<u32>>,
    /// `backlog` of every valid batch, with its last sequence number.
    backlogs: Vec<(u64, Option<Backlog>)>,
}

type Shared = Arc<Mutex<Fake>>;

impl Fake {
    fn acked(&self) -> u64 {
        let mut h = 0;
        for r in self.store.values() {
            if r.seq > h + 1 {
                break;
            }
            h = h.max(r.seq_end.unwrap_or(r.seq));
        }
        h
    }
    fn note(&mut self, first: u64, n: usize, status: u16) {
        self.requests.push((first, n, status, Instant::now()));
    }
    fn put(&mut self, recs: &[Record]) -> (u32, u32) {
        let (mut stored, mut dup) = (0, 0);
        for r in recs {
            match self.store.entry(r.seq) {
                std::collections::btree_map::Entry::Occupied(_) => dup += 1,
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(r.clone());
                    stored += 1;
                }
            }
        }
        self.duplicates += u64::from(dup);
        (stored, dup)
    }
}

async fn ingest(State(fake): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let gzip = headers.get("content-encoding").is_some_and(|v| v == "gzip");
    let json = headers
        .get("content-type")
        .is_some_and(|v| v == "application/json");
    let mut f = fake.lock().unwrap();
    if auth != format!("Bearer {TOKEN}") {
        f.note(0, 0, 401);
        return (StatusCode::UNAUTHORIZED, "unknown token").into_response();
    }
    if !gzip || !json {
        f.note(0, 0, 415);
        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, "gzip'd JSON only").into_response();
    }
    let mut text = Vec::new();
    if let Err(e) = flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut text) {
        f.note(0, 0, 400);
        return (StatusCode::BAD_REQUEST, format!("bad gzip: {e}")).into_response();
    }
    let batch = match parse_batch(&text).and_then(|b| b.validate().map(|_| b)) {
        Ok(b) => b,
        Err(e) => {
            f.note(0, 0, 400);
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    assert_eq!(batch.device, "dev-1");
    f.announced.push(batch.next_upload_within_s);
    if let Some(r) = batch.records.last() {
        f.backlogs.push((r.seq_end.unwrap_or(r.seq), batch.backlog));
    }
    let first = batch.records.first().map_or(0, |r| r.seq);
    let n = batch.records.len();
    if f.max_records.is_some_and(|m| n > m) {
        f.note(first, n, 413);
        return (StatusCode::PAYLOAD_TOO_LARGE, "too many records").into_response();
    }
    let fault = f.faults.pop_front();
    let (status, acked, stored, dup) = match fault {
        Some(Fault::Status(code, retry, msg)) => {
            f.note(first, n, code);
            let mut resp = (StatusCode::from_u16(code).unwrap(), msg).into_response();
            if let Some(s) = retry {
                resp.headers_mut()
                    .insert("retry-after", s.to_string().parse().unwrap());
            }
            return resp;
        }
        Some(Fault::StoreFirst(k)) => {
            let (s, d) = f.put(&batch.records[..k.min(n)]);
            (200, f.acked(), s, d)
        }
        Some(Fault::AckFirst(k)) => {
            let (s, d) = f.put(&batch.records);
            let r = &batch.records[k.min(n) - 1];
            (200, f.acked().min(r.seq_end.unwrap_or(r.seq)), s, d)
        }
        Some(Fault::DropAfterStore) => {
            f.put(&batch.records);
            f.note(first, n, 0);
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from_static(b"{\"acked\":")),
                Err(std::io::Error::other("connection dropped")),
            ];
            return Response::new(HttpBody::from_stream(futures::stream::iter(chunks)));
        }
        None => {
            let (s, d) = f.put(&batch.records);
            (200, f.acked(), s, d)
        }
    };
    f.note(first, n, status);
    axum::Json(Ack {
        acked,
        stored,
        duplicates: dup,
    })
    .into_response()
}

struct Collector {
    fake: Shared,
    port: u16,
    listener: Option<socket2::Socket>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Collector {
    /// Bound to a loopback port but not listening yet: connections are refused.
    fn reserve() -> Collector {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
        let port = s.local_addr().unwrap().as_socket().unwrap().port();
        Collector {
            fake: Shared::default(),
            port,
            listener: Some(s),
            server: None,
        }
    }
    async fn start() -> Collector {
        let mut c = Collector::reserve();
        c.listen();
        c
    }
    fn listen(&mut self) {
        let s = self.listener.take().expect("listening once");
        s.listen(128).unwrap();
        s.set_nonblocking(true).unwrap();
        let l = tokio::net::TcpListener::from_std(std::net::TcpListener::from(s)).unwrap();
        let app = Router::new()
            .route("/api/v1/ingest", axum::routing::post(ingest))
            .with_state(self.fake.clone());
        self.server = Some(tokio::spawn(async move {
            axum::serve(l, app).await.unwrap();
        }));
    }
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
    fn fake(&self) -> std::sync::MutexGuard<'_, Fake> {
        self.fake.lock().unwrap()
    }
    /// Each seq 1..=n stored exactly once, nothing else.
    fn assert_has_exactly(&self, n: u64) {
        let f = self.fake();
        let seqs: Vec<u64> = f.store.keys().copied().collect();
        assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
        assert_eq!(f.acked(), n);
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.abort();
        }
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    token_file: PathBuf,
    spool: Arc<Spool>,
}

async fn setup(records: u64) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    linkwatch::shared::files::write_new_private(&token_file, format!("  {TOKEN}\n").as_bytes())
        .unwrap();
    let spool = Arc::new(
        Spool::open(&dir.path().join("spool.db"), 1 << 30)
            .await
            .unwrap(),
    );
    fill(&spool, records).await;
    Setup {
        _dir: dir,
        token_file,
        spool,
    }
}

async fn fill(spool: &Spool, n: u64) {
    let t0 = now_ms() - 86_000_000;
    for i in 0..n {
        let body = match i % 5 {
            0 => Body::LinkState {
                link: "eth0".into(),
                kind: LinkKind::Broadband,
                from: LinkState::Up,
                to: LinkState::Down,
                reason: Some("probes".into()),
            },
            1 => Body::Heartbeat {
                online: true,
                count: 1,
            },
            _ => Body::LinkMinutes {
                link: format!("eth{}", i % 3),
                kind: LinkKind::Broadband,
                minutes: 1,
                sent: 120,
                lost: (i % 7) as u32,
                rtt_p50_ms: Some(21.5),
                rtt_p95_ms: Some(48.0),
                rtt_max_ms: Some(90.25),
                bytes: 6720,
            },
        };
        spool
            .append(t0 + i as i64, 1000 + i, "0b1d5e8c-boot", &body)
            .await
            .unwrap();
    }
}

fn section(url: &str, token_file: &Path) -> UploadSection {
    UploadSection {
        collector_url: Some(url.to_string()),
        token_file: Some(token_file.to_path_buf()),
        ..UploadSection::default()
    }
}

/// Poll `cond` every 20 ms until it holds or `secs` pass.
async fn wait_for(what: &str, secs: u64, mut cond: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn depth(spool: &Spool) -> u64 {
    spool.stats().await.unwrap().depth
}

#[tokio::test]
async fn ten_thousand_records_drain_in_order_in_batches_nothing_lost_or_duplicated() {
    let c = Collector::start().await;
    let s = setup(10_000).await;
    let file_bytes = std::fs::metadata(s.spool.path()).unwrap().len()
        + std::fs::metadata(s.spool.path().with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    let payload = s.spool.stats().await.unwrap().bytes;
    let up = Uploader::new(
        &section(&c.url(), &s.token_file),
        "dev-1".into(),
        s.spool.clone(),
    )
    .unwrap();
    let started = Instant::now();
    let report = up.drain().await.unwrap();
    let took = started.elapsed();
    assert_eq!(report.records, 10_000);
    assert!(report.batches >= 5, "{report:?}");
    assert_eq!(report.acked, 10_000);
    assert_eq!(report.deleted, 10_000);
    assert_eq!(depth(&s.spool).await, 0);
    c.assert_has_exactly(10_000);
    {
        let f = c.fake();
        assert_eq!(f.duplicates, 0);
        // In order: each batch starts where the previous one ended.
        let mut next = 1;
        for (first, n, status, _) in &f.requests {
            assert_eq!((*first, *status), (next, 200));
            next += *n as u64;
        }
        assert_eq!(f.requests.len() as u64, report.batches);
    }
    let st = up.stats();
    assert_eq!(st.records, 10_000);
    assert_eq!(st.bytes_sent, report.bytes);
    assert!(st.last_success_ms.is_some() && st.last_error.is_none());
    // Figures for the record (visible with --nocapture).
    let _ = writeln!(
        std::io::stderr(),
        "10k records: spool file {file_bytes} B ({} B/record), payload {payload} B; \
         drained in {took:?} ({} batches), {} B gzip'd on the wire ({} B raw)",
        file_bytes / 10_000,
        report.batches,
        st.bytes_sent,
        st.bytes_raw
    );
    // Empty spool: a drain does nothing.
    assert_eq!(up.drain().await.unwrap().batches, 0);
}

/// Every batch announces when the next upload comes at the latest (the
/// upload interval plus the first three back-off steps: 7 s, or
/// `backoff_max` when smaller) and what it leaves in the spool.
#[tokio::test]
async fn every_batch_announces_the_next_upload_deadline_and_its_backlog() {
    let c = Collector::start().await;
    let s = setup(2_500).await;
    let cfg = section(&c.url(), &s.token_file);
    assert_eq!(
        (cfg.upload_interval, cfg.backoff_max),
        (Duration::from_secs(300), Duration::from_secs(300))
    );
    let up = Uploader::new(&cfg, "dev-1".into(), s.spool.clone()).unwrap();
    let report = up.drain().await.unwrap();
    assert!(report.batches >= 2, "{report:?}");
    {
        let f = c.fake();
        assert_eq!(f.announced.len() as u64, report.batches);
        assert!(
            f.announced.iter().all(|a| *a == Some(307)),
            "{:?}",
            f.announced
        );
        // And what it leaves waiting: the records after it, the oldest of
        // them the next batch's first (records `fill` spaces 1 ms apart).
        let first_at = f.store[&1].at;
        assert_eq!(f.backlogs.len() as u64, report.batches);
        for (last, backlog) in &f.backlogs {
            let b = backlog.expect("every batch reports its backlog");
            assert_eq!(b.records, 2_500 - last, "after {last}");
            assert_eq!(
                b.oldest_at,
                (*last < 2_500).then_some(first_at + *last as i64),
                "after {last}"
            );
        }
        assert_eq!(f.backlogs.last().unwrap().1.unwrap().records, 0);
    }
    fill(&s.spool, 10).await;
    let cfg = UploadSection {
        upload_interval: Duration::from_millis(90_500),
        backoff_max: Duration::from_secs(2),
        ..cfg
    };
    let up = Uploader::new(&cfg, "dev-1".into(), s.spool.clone()).unwrap();
    up.drain().await.unwrap();
    assert_eq!(
        c.fake().announced.last(),
        Some(&Some(93)),
        "90.5 s + 2 s, rounded up"
    );
}

#[tokio::test]
async fn collector_down_then_up_drains_after_wake() {
    let mut c = Collector::reserve();
    let s = setup(300).await;
    let mut cfg = section(&c.url(), &s.token_file);
    cfg.upload_interval = Duration::from_secs(3600);
    cfg.backoff_max = Duration::from_secs(3600);
    let up = Uploader::new(&cfg, "dev-1".into(), s.spool.clone()).unwrap();
    let stats = up.stats_handle();
    // Refused connection: an error naming the collector, nothing deleted.
    let err = up.drain().await.unwrap_err();
    assert!(matches!(err, UploadError::Network { .. }), "{err}");
    assert!(err.to_string().contains(&c.url()), "{err}");
    assert_eq!(depth(&s.spool).await, 300);

    let (wake, stop) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let task = tokio::spawn(up.run(wake.clone(), stop.clone(), Arc::new(|| false)));
    wait_for("three failed attempts", 30, async || {
        stats.get().consecutive_failures >= 4
    })
    .await;
    assert_eq!(depth(&s.spool).await, 300);
    c.listen();
    wake.notify_one();
    wait_for("the spool to drain after wake", 5, async || {
        depth(&s.spool).await == 0
    })
    .await;
    c.assert_has_exactly(300);
    assert_eq!(stats.get().consecutive_failures, 0);
    stop.notify_one();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("run stops when told")
        .unwrap();
}

#[tokio::test]
async fn a_503_is_retried_by_run() {
    let c = Collector::start().await;
    let s = setup(50).await;
    c.fake()
        .faults
        .push_back(Fault::Status(503, None, "store unavailable"));
    c.fake()
        .faults
        .push_back(Fault::Status(503, None, "store unavailable"));
    let up = Uploader::new(
        &section(&c.url(), &s.token_file),
        "dev-1".into(),
        s.spool.clone(),
    )
    .unwrap();
    let stats = up.stats_handle();
    let err = up.drain().await.unwrap_err();
    assert!(
        matches!(err, UploadError::Rejected { status: 503, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("store unavailable"), "{err}");
    assert_eq!(depth(&s.spool).await, 50, "nothing deleted on a refusal");
    let (wake, stop) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let task = tokio::spawn(up.run(wake, stop.clone(), Arc::new(|| false)));
    wait_for("the retry to succeed", 15, async || {
        depth(&s.spool).await == 0
    })
    .await;
    c.assert_has_exactly(50);
    let statuses: Vec<u16> = c.fake().requests.iter().map(|r| r.2).collect();
    assert_eq!(statuses, vec![503, 503, 200]);
    let st = stats.get();
    assert!(st.last_error.as_deref().unwrap().contains("503"), "{st:?}");
    assert_eq!(st.consecutive_failures, 0);
    stop.notify_waiters();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn retry_after_on_429_is_honoured_even_against_a_wake() {
    let c = Collector::start().await;
    let s = setup(20).await;
    c.fake()
        .faults
        .push_back(Fault::Status(429, Some(2), "slow down"));
    let up = Uploader::new(
        &section(&c.url(), &s.token_file),
        "dev-1".into(),
        s.spool.clone(),
    )
    .unwrap();
    let (wake, stop) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let task = tokio::spawn(up.run(wake.clone(), stop.clone(), Arc::new(|| false)));
    wait_for("the 429", 5, async || !c.fake().requests.is_empty()).await;
    wake.notify_one();
    wait_for("the retry", 10, async || depth(&s.spool).await == 0).await;
    let times: Vec<Instant> = c.fake().requests.iter().map(|r| r.3).collect();
    assert_eq!(times.len(), 2);
    let gap = times[1] - times[0];
    assert!(gap >= Duration::from_millis(1900), "retried after {gap:?}");
    stop.notify_one();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn partial_acks_keep_the_rest_and_it_is_sent_again() {
    let c = Collector::start().await;
    let s = setup(1000).await;
    c.fake()
        .faults
        .extend([Fault::StoreFirst(150), Fault::AckFirst(100)]);
    let mut cfg = section(&c.url(), &s.token_file);
    cfg.batch_max_records = 400;
    let up = Uploader::new(&cfg, "dev-1".into(), s.spool.clone()).unwrap();
    // 1: the collector stores 150 of 400.
    let err = up.drain().await.unwrap_err();
    assert!(
        matches!(
            err,
            UploadError::PartialAck {
                acked: 150,
                first: 1,
                last: 400
            }
        ),
        "{err}"
    );
    assert_eq!(depth(&s.spool).await, 850);
    // 2: it stores 151..=550 but acks only up to 250.
    let err = up.drain().await.unwrap_err();
    assert!(
        matches!(err, UploadError::PartialAck { acked: 250, .. }),
        "{err}"
    );
    assert_eq!(depth(&s.spool).await, 750);
    // 3: the rest, with the replays of 251..=550.
    let report = up.drain().await.unwrap();
    assert_eq!(report.acked, 1000);
    assert_eq!(depth(&s.spool).await, 0);
    c.assert_has_exactly(1000);
    assert_eq!(c.fake().duplicates, 300);
}

#[tokio::test]
async fn a_connection_dropped_after_storing_is_replayed_without_duplicates() {
    let c = Collector::start().await;
    let s = setup(120).await;
    c.fake().faults.push_back(Fault::DropAfterStore);
    let up = Uploader::new(
        &section(&c.url(), &s.token_file),
        "dev-1".into(),
        s.spool.clone(),
    )
    .unwrap();
    // One drop (a connection the network lost): sent again at once.
    up.drain().await.unwrap();
    assert_eq!(depth(&s.spool).await, 0);
    c.assert_has_exactly(120);
    assert_eq!(c.fake().duplicates, 120);
    assert_eq!(c.fake().requests.len(), 2);
    // Two in a row: the drain fails and keeps what was not acknowledged.
    fill(&s.spool, 50).await;
    c.fake().faults.push_back(Fault::DropAfterStore);
    c.fake().faults.push_back(Fault::DropAfterStore);
    let err = up.drain().await.unwrap_err();
    assert!(matches!(err, UploadError::Network { .. }), "{err}");
    assert_eq!(depth(&s.spool).await, 50, "unacknowledged: kept");
    up.drain().await.unwrap();
    assert_eq!(depth(&s.spool).await, 0);
    c.assert_has_exactly(170);
}

#[tokio::test]
async fn a_413_halves_the_batch_size() {
    let c = Collector::start().await;
    let s = setup(1000).await;
    c.fake().max_records = Some(300);
    let up = Uploader::new(
        &section(&c.url(), &s.token_file),
        "dev-1".into(),
        s.spool.clone(),
    )
    .unwrap();
    let report = up.drain().await.unwrap();
    assert_eq!(report.records, 1000);
    c.assert_has_exactly(1000);
    let f = c.fake();
    let too_large: Vec<usize> = f
        .requests
        .iter()
        .filter(|r| r.2 == 413)
        .map(|r| r.1)
        .collect();
    // 2000 asked, 1000 there: halved from what was sent.
    assert_eq!(too_large, vec![1000, 500]);
    assert!(f.requests.iter().filter(|r| r.2 == 200).all(|r| r.1 <= 250));
    assert_eq!(up.stats().batch_size, 250);
}

#[tokio::test]
async fn a_400_keeps_the_records_and_reports_the_collectors_message() {
    let c = Collector::start().await;
    let s = setup(10).await;
    c.fake().faults.push_back(Fault::Status(
        400,
        None,
        r#"{"error":"measurement time out of range","field":"records[3].at"}"#,
    ));
    let up = Uploader::new(
        &section(&c.url(), &s.token_file),
        "dev-1".into(),
        s.spool.clone(),
    )
    .unwrap();
    let err = up.drain().await.unwrap_err();
    assert!(matches!(err, UploadError::Rejected { status: 400, .. }));
    assert!(
        err.to_string()
            .contains("records[3].at: measurement time out of range"),
        "{err}"
    );
    assert_eq!(depth(&s.spool).await, 10);
    assert!(up.stats().last_error.unwrap().contains("records[3].at"));
}

#[tokio::test]
async fn a_wrong_token_is_refused_and_a_fixed_token_file_is_picked_up() {
    let c = Collector::start().await;
    let s = setup(10).await;
    std::fs::write(&s.token_file, "wrong\n").unwrap();
    let up = Uploader::new(
        &section(&c.url(), &s.token_file),
        "dev-1".into(),
        s.spool.clone(),
    )
    .unwrap();
    let err = up.drain().await.unwrap_err();
    assert!(
        matches!(err, UploadError::Rejected { status: 401, .. }),
        "{err}"
    );
    assert_eq!(depth(&s.spool).await, 10);
    // IT staff fix the file: the next attempt reads it again.
    std::fs::write(&s.token_file, TOKEN).unwrap();
    up.drain().await.unwrap();
    c.assert_has_exactly(10);
}

#[tokio::test]
async fn metered_links_hold_a_large_backlog_until_another_link_is_up() {
    let c = Collector::start().await;
    let s = setup(500).await;
    let mut cfg = section(&c.url(), &s.token_file);
    cfg.hold_backlog_on_metered = true;
    cfg.metered_backlog_threshold = 100;
    cfg.upload_interval = Duration::from_secs(3600);
    let up = Uploader::new(&cfg, "dev-1".into(), s.spool.clone()).unwrap();
    let stats = up.stats_handle();
    let metered = Arc::new(AtomicBool::new(true));
    let m = metered.clone();
    let (wake, stop) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let task = tokio::spawn(up.run(
        wake.clone(),
        stop.clone(),
        Arc::new(move || m.load(Ordering::SeqCst)),
    ));
    wait_for("the hold", 5, async || stats.get().held_for_metered).await;
    assert!(c.fake().requests.is_empty());
    // Broadband is back.
    metered.store(false, Ordering::SeqCst);
    wake.notify_one();
    wait_for("the drain", 10, async || depth(&s.spool).await == 0).await;
    c.assert_has_exactly(500);
    assert!(!stats.get().held_for_metered);
    stop.notify_one();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn bad_token_and_ca_files_are_named_in_the_error() {
    let s = setup(0).await;
    let dir = tempfile::tempdir().unwrap();
    let url = "https://collector.invalid";
    let new = |cfg: &UploadSection| Uploader::new(cfg, "dev-1".into(), s.spool.clone());

    let missing = dir.path().join("no-such-token");
    let e = new(&section(url, &missing)).err().unwrap();
    assert!(matches!(e, UploadError::TokenFile { .. }), "{e}");
    assert!(e.to_string().contains(missing.to_str().unwrap()), "{e}");

    let empty = dir.path().join("empty-token");
    std::fs::write(&empty, " \n").unwrap();
    let e = new(&section(url, &empty)).err().unwrap();
    assert!(matches!(e, UploadError::EmptyToken { .. }), "{e}");
    assert!(e.to_string().contains(empty.to_str().unwrap()), "{e}");

    // A token file others can read: refused, naming the file and the fix;
    // group-readable (a unit's group) is fine.
    let open = dir.path().join("open-token");
    std::fs::write(&open, format!("{TOKEN}\n")).unwrap();
    for mode in [0o644, 0o604, 0o660] {
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(mode)).unwrap();
        let e = new(&section(url, &open)).err().unwrap();
        assert!(matches!(e, UploadError::TokenFileOpen(_)), "{e}");
        let text = e.to_string();
        assert!(
            text.contains(&format!("chmod 600 {}", open.display())),
            "{text}"
        );
    }
    for mode in [0o600, 0o640, 0o400] {
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(mode)).unwrap();
        new(&section(url, &open)).unwrap();
    }

    let mut cfg = section(url, &s.token_file);
    let no_ca = dir.path().join("no-such-ca.pem");
    cfg.ca_file = Some(no_ca.clone());
    let e = new(&cfg).err().unwrap();
    assert!(matches!(e, UploadError::CaFile { .. }), "{e}");
    assert!(e.to_string().contains(no_ca.to_str().unwrap()), "{e}");

    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    cfg.ca_file = Some(junk.clone());
    let e = new(&cfg).err().unwrap();
    assert!(matches!(e, UploadError::CaPem { .. }), "{e}");
    assert!(e.to_string().contains(junk.to_str().unwrap()), "{e}");

    let e = new(&section("http://collector.example.org", &s.token_file))
        .err()
        .unwrap();
    assert!(matches!(e, UploadError::BadUrl(_)), "{e}");
    assert!(e.to_string().contains("https://"), "{e}");

    // No collector: spool only; drain does nothing, run waits for stop.
    let up = new(&UploadSection::default()).unwrap();
    assert!(!up.enabled());
    assert_eq!(up.drain().await.unwrap().batches, 0);
    let stop = Arc::new(Notify::new());
    stop.notify_one();
    tokio::time::timeout(
        Duration::from_secs(5),
        up.run(Arc::new(Notify::new()), stop, Arc::new(|| false)),
    )
    .await
    .unwrap();
}

#[test]
fn the_upload_section_has_defaults_and_is_validated() {
    let p = Path::new("/etc/linkwatch/agent.toml");
    let cfg = AgentConfig::parse("", p).unwrap();
    assert_eq!(cfg.upload, UploadSection::default());
    assert_eq!(cfg.upload.collector_url, None);
    assert_eq!(cfg.upload.spool_max_bytes, 64 * 1024 * 1024);
    assert_eq!(cfg.upload.batch_max_records, 2000);
    assert_eq!(cfg.upload.backoff_max, Duration::from_secs(300));
    let cfg = AgentConfig::parse(
        "[upload]\ncollector_url = \"https://c.example.gov.bd\"\ntoken_file = \"/etc/linkwatch/token\"\n\
         upload_interval = \"30s\"\nhold_backlog_on_metered = true\n",
        p,
    )
    .unwrap();
    assert_eq!(cfg.upload.upload_interval, Duration::from_secs(30));
    assert!(cfg.upload.hold_backlog_on_metered);
    for (text, key) in [
        (
            "[upload]\ncollector_url = \"http://c.example.org\"\ntoken_file = \"/t\"\n",
            "upload.collector_url",
        ),
        (
            "[upload]\ncollector_url = \"https://c.example.org\"\n",
            "upload.token_file",
        ),
        (
            "[upload]\nbatch_max_records = 5001\n",
            "upload.batch_max_records",
        ),
        ("[upload]\nbackoff_max = \"0s\"\n", "upload.backoff_max"),
        ("[upload]\nspool_max_bytes = 10\n", "upload.spool_max_bytes"),
    ] {
        let e = AgentConfig::parse(text, p).unwrap_err().to_string();
        assert!(e.contains(key), "{text}: {e}");
    }
    let e = AgentConfig::parse("[upload]\nbogus = 1\n", p)
        .unwrap_err()
        .to_string();
    assert!(e.contains("bogus"), "{e}");
    // Loopback may be plain http (tests, a local relay).
    AgentConfig::parse(
        "[upload]\ncollector_url = \"http://127.0.0.1:8080\"\ntoken_file = \"/t\"\n",
        p,
    )
    .unwrap();
}

/// Run openssl with `args` in `dir`; false when openssl is not installed.
fn openssl(dir: &Path, args: &[&str]) -> bool {
    match std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            true
        }
        Err(_) => false,
    }
}

#[tokio::test]
async fn https_with_an_extra_ca_file_is_trusted_and_without_it_is_not() {
    let certs = tempfile::tempdir().unwrap();
    let d = certs.path();
    std::fs::write(
        d.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let ca_args = [
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=linkwatch test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    ]
    .concat();
    if !openssl(d, &ca_args) {
        let _ = writeln!(std::io::stderr(), "openssl not installed: TLS test skipped");
        return;
    }
    let csr_args = [
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "srv.key",
            "-out",
            "srv.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    ]
    .concat();
    assert!(openssl(d, &csr_args));
    assert!(openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "srv.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "srv.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ]
    ));

    let fake = Shared::default();
    let app = Router::new()
        .route("/api/v1/ingest", axum::routing::post(ingest))
        .with_state(fake.clone());
    let tls =
        axum_server::tls_rustls::RustlsConfig::from_pem_file(d.join("srv.pem"), d.join("srv.key"))
            .await
            .unwrap();
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        axum_server::from_tcp_rustls(l, tls)
            .unwrap()
            .serve(app.into_make_service())
            .await
            .unwrap();
    });

    let s = setup(25).await;
    let url = format!("https://127.0.0.1:{port}");
    // System roots only: the collector's certificate is not trusted.
    let up = Uploader::new(
        &section(&url, &s.token_file),
        "dev-1".into(),
        s.spool.clone(),
    )
    .unwrap();
    let err = up.drain().await.unwrap_err();
    assert!(matches!(err, UploadError::Network { .. }), "{err}");
    assert!(
        err.to_string().to_lowercase().contains("certificate"),
        "{err}"
    );
    assert_eq!(depth(&s.spool).await, 25);
    // With the ministry's CA added: accepted.
    let mut cfg = section(&url, &s.token_file);
    cfg.ca_file = Some(d.join("ca.pem"));
    let up = Uploader::new(&cfg, "dev-1".into(), s.spool.clone()).unwrap();
    up.drain().await.unwrap();
    assert_eq!(depth(&s.spool).await, 0);
    assert_eq!(fake.lock().unwrap().store.len(), 25);
    server.abort();
}

/// Minute summaries and heartbeats wait for the upload interval; an urgent
/// record (here a link state change, announced as the spool writer does)
/// takes everything written so far out after `urgent_delay`.
#[tokio::test]
async fn urgent_records_go_out_after_the_urgent_delay_and_the_rest_waits() {
    let c = Collector::start().await;
    let s = setup(0).await;
    let mut cfg = section(&c.url(), &s.token_file);
    cfg.upload_interval = Duration::from_secs(3600);
    cfg.urgent_delay = Duration::from_millis(300);
    let up = Uploader::new(&cfg, "dev-1".into(), s.spool.clone()).unwrap();
    let urgent = up.urgent_handle();
    let t0 = now_ms();
    let start = Body::Lifecycle {
        event: linkwatch::wire::v1::LifecycleEvent::Start,
        boot_time: None,
        detail: None,
    };
    s.spool.append(t0 - 10, 0, "boot-u", &start).await.unwrap();
    let (wake, stop) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let task = tokio::spawn(up.run(wake, stop.clone(), Arc::new(|| false)));
    // `run` begins with a drain.
    wait_for("the first drain", 5, async || depth(&s.spool).await == 0).await;
    assert_eq!(c.fake().requests.len(), 1);
    let minutes = Body::LinkMinutes {
        link: "eth0".into(),
        kind: LinkKind::Broadband,
        minutes: 1,
        sent: 120,
        lost: 0,
        rtt_p50_ms: Some(9.0),
        rtt_p95_ms: Some(12.0),
        rtt_max_ms: Some(15.0),
        bytes: 6720,
    };
    let heartbeat = Body::Heartbeat {
        online: true,
        count: 1,
    };
    s.spool.append(t0, 1, "boot-u", &minutes).await.unwrap();
    s.spool
        .append(t0 + 1, 2, "boot-u", &heartbeat)
        .await
        .unwrap();
    // Not urgent: an hour's interval means nothing is sent now.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        c.fake().requests.len(),
        1,
        "minute summaries must wait for the interval"
    );
    let change = Body::LinkState {
        link: "eth0".into(),
        kind: LinkKind::Broadband,
        from: LinkState::Up,
        to: LinkState::Down,
        reason: Some("probes".into()),
    };
    s.spool.append(t0 + 2, 3, "boot-u", &change).await.unwrap();
    let announced = Instant::now();
    urgent.notify_one();
    wait_for("the urgent upload", 5, async || depth(&s.spool).await == 0).await;
    let waited = announced.elapsed();
    assert!(
        waited >= Duration::from_millis(300),
        "sent after {waited:?}, before urgent_delay"
    );
    c.assert_has_exactly(4);
    assert_eq!(c.fake().requests.len(), 2, "one request for the three");
    stop.notify_one();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}
