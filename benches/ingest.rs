//! Benchmarks of the collector's ingest path and of the agent's uploader, all
//! over real HTTP on 127.0.0.1 with the collector started in-process
//! (`server::serve_on`). Prints figures and ratios against the targets, never
//! pass/fail:
//!
//! - `throughput`: largest sustained rate of one-minute batches (3
//!   `link_minutes` + 1 `heartbeat`, gzip'd JSON, keep-alive HTTP/1.1 via
//!   reqwest) with p99 latency under 100 ms, stepping a constant open-loop
//!   rate up (200, 500, 1000, ... req/s, ~10 s each, then three
//!   bisection steps), on SQLite and, when `LINKWATCH_TEST_PG_URL` is set, on
//!   PostgreSQL (a fresh schema, dropped after). Converted to devices at one
//!   batch per minute. The load generator runs in the same process and shares
//!   the machine's cores with the collector (and with PostgreSQL).
//! - `backlog`: a spool holding 7 days of records at default rates for a
//!   3-link device, drained with `Uploader::drain` to a SQLite collector;
//!   also the spool's file size (`.db` + `-wal`).
//! - `bytes`: one day of uploads at the default interval (and one per state
//!   change, as urgent records make) with
//!   the uploader's own counters, plus the HTTP request/response bytes
//!   counted by a TCP relay, TLS bytes measured through a TLS collector (kept
//!   alive, and a new connection per upload), and an estimate of TCP/IP
//!   header bytes.
//!
//! - `attack` (in `ingest/attack.rs`): 100,000 devices' rate against the
//!   collector binary, quiet and while an attacker holds 5,000 idle
//!   connections and 200 slow bodies; p99, throughput and the collector's
//!   RSS side by side.
//!
//! - `versus` (in `ingest/versus.rs`): throughput and p99 at 64 connections,
//!   this revision's collector binary against an earlier one's
//!   (`LW_OLD_BIN`, from `benches/ingest/build-old.sh`), in turns.
//!
//! `cargo bench --bench ingest -- [throughput] [backlog] [bytes] [attack] [versus]` (none = all).
//! Without `--bench` (as under `cargo test --all-targets`) it prints one line
//! and returns.

#[path = "ingest/attack.rs"]
mod attack;
mod common;
#[path = "ingest/versus.rs"]
mod versus;

use common::db::Db;
use common::shapes::{LINKS, link_minutes};
use common::{ms, thousands};
use futures::StreamExt;
use linkwatch::agent::spool::Spool;
use linkwatch::agent::upload::Uploader;
use linkwatch::collector::devices::{self, new_token, token_hash};
use linkwatch::collector::server::{self, CollectorError};
use linkwatch::collector::store::{self, Store};
use linkwatch::config::agent::UploadSection;
use linkwatch::config::collector::CollectorConfig;
use linkwatch::wire::LinkState;
use linkwatch::wire::v1::{Ack, Batch, Body, Record, VERSION};
use rand::SeedableRng;
use rand::rngs::StdRng;
use reqwest::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Devices registered for the throughput runs (requests go round-robin).
const DEVICES: usize = 2_000;
/// Length of one rate step.
const STEP: Duration = Duration::from_secs(10);
/// A step passes when p99 is below this.
const P99_LIMIT_MS: f64 = 100.0;
/// The rate ladder, requests per second.
const LADDER: [f64; 8] = [
    200.0, 500.0, 1_000.0, 2_000.0, 4_000.0, 8_000.0, 16_000.0, 32_000.0,
];
/// Stop adding steps after this long on one backend.
const BACKEND_BUDGET: Duration = Duration::from_secs(240);
/// Devices the collector should carry at one batch per minute.
const TARGET_DEVICES: f64 = 100_000.0;
const BOOT_ID: &str = "6f1c2b9e-3a47-4d0b-9c1e-5b2f8a7d4e10";

// ---------------------------------------------------------------------------
// Small helpers

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64
}

/// The `q` quantile of sorted values (nearest rank).
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// CPU clock ticks (USER_HZ) so far: the whole machine's busy and total
/// (all cores, from /proc/stat) and this process's own (from /proc/self/stat).
#[derive(Debug, Clone, Copy)]
struct Ticks {
    busy: u64,
    total: u64,
    own: u64,
}

fn cpu_ticks() -> Option<Ticks> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    let total: u64 = v.iter().sum();
    // Fields after the command name: state is the first, utime the 12th, stime the 13th.
    let me = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<&str> = me.rsplit_once(')')?.1.split_whitespace().collect();
    let own = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Ticks {
        busy: total - idle,
        total,
        own,
    })
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// CPU use between two samples, in % of one core: (whole machine, this process).
#[derive(Debug, Clone, Copy)]
struct Cpu {
    machine: f64,
    own: f64,
}

impl Cpu {
    fn between(a: Option<Ticks>, b: Option<Ticks>) -> Option<Cpu> {
        let (a, b) = (a?, b?);
        let total = b.total.checked_sub(a.total)?;
        let pct = |d: u64| d as f64 / total as f64 * 100.0 * cores() as f64;
        (total > 0).then(|| Cpu {
            machine: pct(b.busy.saturating_sub(a.busy)),
            own: pct(b.own.saturating_sub(a.own)),
        })
    }
    /// Everything else on the machine (other processes, the database server).
    fn others(&self) -> f64 {
        (self.machine - self.own).max(0.0)
    }
}

/// What other processes use while this one idles for a second.
async fn background_cpu() -> Option<Cpu> {
    let a = cpu_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    Cpu::between(a, cpu_ticks())
}

/// The file system type and device of the mount holding `path`.
fn filesystem_of(path: &Path) -> String {
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "?".into();
    };
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || !path.starts_with(f[1]) {
            continue;
        }
        if best.as_ref().is_none_or(|(len, _)| f[1].len() > *len) {
            best = Some((f[1].len(), format!("{} on {}", f[2], f[0])));
        }
    }
    best.map(|b| b.1).unwrap_or_else(|| "?".into())
}

/// Median time of a 4 KiB write + fdatasync in `dir` (what each SQLite commit pays at least).
fn fsync_ms(dir: &Path) -> f64 {
    let path = dir.join("fsync-probe");
    let Ok(mut f) = std::fs::File::create(&path) else {
        return f64::NAN;
    };
    let block = [0u8; 4096];
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        if f.write_all(&block).is_err() || f.sync_data().is_err() {
            return f64::NAN;
        }
        times.push(t.elapsed());
    }
    let _ = std::fs::remove_file(&path);
    times.sort();
    ms(quantile(&times, 0.5))
}

// ---------------------------------------------------------------------------
// What a 3-link agent records at defaults

/// The `k`th transition of a run: mostly `link_state`, 3 in 10 `failover`.
fn transition(k: usize) -> Body {
    let (name, kind) = LINKS[1 + k % 2];
    if matches!(k % 10, 3 | 6 | 9) {
        Body::Failover {
            from: Some(LINKS[0].0.into()),
            to: Some(LINKS[1].0.into()),
            cause: "current-down".into(),
            reason: "enp1s0 down: 5 of 5 probes lost".into(),
        }
    } else {
        let (from, to) = if k % 4 < 2 {
            (LinkState::Up, LinkState::Degraded)
        } else {
            (LinkState::Degraded, LinkState::Up)
        };
        Body::LinkState {
            link: name.into(),
            kind,
            from,
            to,
            reason: Some("loss".into()),
        }
    }
}

/// The bodies an agent records in minute `m`: transitions (when `transitions`
/// says so), 3 `link_minutes`, 1 `heartbeat`; with their (at, mono) times.
fn minute_bodies(
    rng: &mut StdRng,
    t0_ms: i64,
    m: u64,
    transitions: &[Body],
) -> Vec<(i64, u64, Body)> {
    let at = t0_ms + (m as i64 + 1) * 60_000;
    let mono = 3_600_000 + (m + 1) * 60_000;
    let mut out = Vec::with_capacity(4 + transitions.len());
    for (i, t) in transitions.iter().enumerate() {
        let back = 30_000 - i as i64 * 1_000;
        out.push((at - back, mono - back as u64, t.clone()));
    }
    for link in 0..LINKS.len() {
        out.push((at, mono, link_minutes(rng, link)));
    }
    out.push((
        at,
        mono,
        Body::Heartbeat {
            online: true,
            count: 1,
        },
    ));
    out
}

fn gzip(json: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(
        Vec::with_capacity(json.len() / 3),
        flate2::Compression::default(),
    );
    gz.write_all(json).expect("gzip into memory");
    gz.finish().expect("gzip into memory")
}

// ---------------------------------------------------------------------------
// Databases and the collector

struct Collector {
    base: String,
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), CollectorError>>,
}

impl Collector {
    /// Serve `store` on 127.0.0.1:0 with the embedded defaults (plain HTTP,
    /// `max_inflight` 256), or TLS with `tls` = (cert, key).
    async fn start(store: Arc<dyn Store>, url: &str, tls: Option<(PathBuf, PathBuf)>) -> Self {
        let mut cfg = CollectorConfig::embedded();
        cfg.collector.database = url.to_string();
        let scheme = if tls.is_some() { "https" } else { "http" };
        if let Some((cert, key)) = tls {
            cfg.collector.tls_cert = Some(cert);
            cfg.collector.tls_key = Some(key);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server::serve_on(listener, store, &cfg, async {
                let _ = rx.await;
            })
            .await
        });
        Collector {
            base: format!("{scheme}://127.0.0.1:{}", addr.port()),
            addr,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match tokio::time::timeout(Duration::from_secs(30), self.task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => eprintln!("collector failed: {e}"),
            Ok(Err(e)) => eprintln!("collector task failed: {e}"),
            Err(_) => eprintln!("collector did not stop within 30 s"),
        }
    }
}

// ---------------------------------------------------------------------------
// 1. Throughput

/// Registered devices and where each stands in its own minute sequence.
struct Fleet {
    names: Vec<String>,
    auth: Vec<HeaderValue>,
    next_minute: Vec<u64>,
    next: usize,
    t0_ms: i64,
    /// Send each batch's `backlog` (earlier revisions refuse the field).
    backlog: bool,
}

impl Fleet {
    /// Register `n` devices straight through the store (16 at a time).
    async fn register(store: Arc<dyn Store>, n: usize) -> Fleet {
        let now = now_ms();
        let made: Vec<(String, String)> = futures::stream::iter(0..n)
            .map(|i| {
                let store = store.clone();
                async move {
                    let name = format!("bench-gw-{i:06}");
                    let token = new_token();
                    store
                        .add_device(&name, None, &token_hash(&token), now)
                        .await
                        .expect("add a device");
                    (name, token)
                }
            })
            .buffered(16)
            .collect()
            .await;
        let (names, tokens): (Vec<String>, Vec<String>) = made.into_iter().unzip();
        Fleet::from_tokens(names, &tokens)
    }

    /// Devices registered elsewhere (`versus`: by each binary's own
    /// `device add`), by name and token.
    fn from_tokens(names: Vec<String>, tokens: &[String]) -> Fleet {
        let n = names.len();
        Fleet {
            auth: tokens
                .iter()
                .map(|t| HeaderValue::from_str(&format!("Bearer {t}")).expect("header"))
                .collect(),
            names,
            next_minute: vec![0; n],
            next: 0,
            t0_ms: now_ms() - 7 * 86_400_000,
            backlog: true,
        }
    }

    /// The next `count` requests, round-robin over the devices, each a
    /// device's next one-minute batch, gzip'd (made before the clock starts).
    fn requests(&mut self, count: usize, rng: &mut StdRng) -> Vec<(HeaderValue, Vec<u8>)> {
        let n = self.names.len();
        (0..count)
            .map(|_| {
                let d = self.next % n;
                self.next += 1;
                let m = self.next_minute[d];
                self.next_minute[d] += 1;
                let records = minute_bodies(rng, self.t0_ms, m, &[])
                    .into_iter()
                    .enumerate()
                    .map(|(i, (at, mono_ms, body))| Record {
                        seq: m * 4 + i as u64 + 1,
                        seq_end: None,
                        at,
                        mono_ms,
                        boot_id: BOOT_ID.into(),
                        body,
                    })
                    .collect();
                let batch = Batch {
                    v: VERSION,
                    device: self.names[d].clone(),
                    records,
                    // What agents announce with the default interval.
                    next_upload_within_s: Some(307),
                    // What an agent of this version sends: nothing left waiting.
                    backlog: self.backlog.then_some(linkwatch::wire::v1::Backlog {
                        records: 0,
                        oldest_at: None,
                    }),
                };
                let json = serde_json::to_vec(&batch).expect("encode a batch");
                (self.auth[d].clone(), gzip(&json))
            })
            .collect()
    }
}

/// One request's outcome.
struct Outcome {
    /// HTTP status, or the transport error's kind.
    status: Result<u16, &'static str>,
    latency: Duration,
    /// How late the request started against its schedule.
    lag: Duration,
    stored: u64,
    duplicates: u64,
}

struct StepResult {
    target: f64,
    sent: usize,
    ok: usize,
    errors: BTreeMap<String, usize>,
    send_rate: f64,
    ok_rate: f64,
    p50: Duration,
    p99: Duration,
    max: Duration,
    lag_p99: Duration,
    cpu: Option<Cpu>,
    stored: u64,
    duplicates: u64,
    /// None: passed; Some(why not).
    fail: Option<String>,
}

/// POST one gzip'd batch to the ingest `url` with a device's `auth`.
async fn post_batch(
    client: &reqwest::Client,
    url: reqwest::Url,
    auth: HeaderValue,
    body: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(url)
        .header(AUTHORIZATION, auth)
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_ENCODING, "gzip")
        .body(body)
        .send()
        .await
}

/// Send `requests` at a constant `rate` (open loop: each request starts at its
/// scheduled time whatever the answers do) and collect the outcomes.
async fn run_step(
    client: &reqwest::Client,
    url: &reqwest::Url,
    requests: Vec<(HeaderValue, Vec<u8>)>,
    rate: f64,
) -> StepResult {
    let n = requests.len();
    let period = 1.0 / rate;
    let mut handles = Vec::with_capacity(n);
    let mut iter = requests.into_iter();
    let cpu0 = cpu_ticks();
    let start = Instant::now();
    let mut i = 0usize;
    while i < n {
        let due = ((start.elapsed().as_secs_f64() / period) as usize + 1).min(n);
        while i < due {
            let (auth, body) = iter.next().expect("a request per slot");
            let intended = start + Duration::from_secs_f64(i as f64 * period);
            let client = client.clone();
            let url = url.clone();
            handles.push(tokio::spawn(async move {
                let t0 = Instant::now();
                let lag = t0.saturating_duration_since(intended);
                let sent = post_batch(&client, url, auth, body).await;
                let (status, ack) = match sent {
                    Ok(resp) => {
                        let code = resp.status().as_u16();
                        match resp.bytes().await {
                            Ok(b) => (Ok(code), serde_json::from_slice::<Ack>(&b).ok()),
                            Err(_) => (Err("body read error"), None),
                        }
                    }
                    Err(e) if e.is_timeout() => (Err("timeout"), None),
                    Err(e) if e.is_connect() => (Err("connect error"), None),
                    Err(_) => (Err("network error"), None),
                };
                Outcome {
                    status,
                    latency: t0.elapsed(),
                    lag,
                    stored: ack.as_ref().map_or(0, |a| u64::from(a.stored)),
                    duplicates: ack.as_ref().map_or(0, |a| u64::from(a.duplicates)),
                }
            }));
            i += 1;
        }
        if i < n {
            let next = start + Duration::from_secs_f64(i as f64 * period);
            tokio::time::sleep_until(next.into()).await;
        }
    }
    let send_span = start.elapsed().max(Duration::from_secs_f64(period));
    let outcomes = futures::future::join_all(handles).await;
    let all_done = start.elapsed();
    let cpu = Cpu::between(cpu0, cpu_ticks());

    let mut latencies = Vec::with_capacity(n);
    let mut lags = Vec::with_capacity(n);
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    let (mut ok, mut stored, mut duplicates) = (0usize, 0u64, 0u64);
    for o in outcomes {
        let o = match o {
            Ok(o) => o,
            Err(_) => {
                *errors.entry("task panicked".into()).or_default() += 1;
                continue;
            }
        };
        latencies.push(o.latency);
        lags.push(o.lag);
        stored += o.stored;
        duplicates += o.duplicates;
        match o.status {
            Ok(200) => ok += 1,
            Ok(code) => *errors.entry(format!("HTTP {code}")).or_default() += 1,
            Err(kind) => *errors.entry(kind.into()).or_default() += 1,
        }
    }
    latencies.sort();
    lags.sort();
    let send_rate = n as f64 / (send_span.as_secs_f64() + period);
    let (p50, p99, max) = (
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    );
    let lag_p99 = quantile(&lags, 0.99);
    let failed: usize = errors.values().sum();
    let fail = if failed * 1000 > n {
        Some(format!(
            "{:.1}% of requests failed",
            failed as f64 * 100.0 / n as f64
        ))
    } else if ms(p99) >= P99_LIMIT_MS {
        Some(format!("p99 {:.0} ms >= {P99_LIMIT_MS:.0} ms", ms(p99)))
    } else if send_rate < 0.95 * rate || ms(lag_p99) >= 50.0 {
        Some(format!(
            "the load generator could not keep up (sent {send_rate:.0} req/s, start lag p99 {:.0} ms; \
             it shares the CPU with the collector)",
            ms(lag_p99)
        ))
    } else {
        None
    };
    StepResult {
        target: rate,
        sent: n,
        ok,
        errors,
        send_rate,
        ok_rate: ok as f64 / all_done.as_secs_f64(),
        p50,
        p99,
        max,
        lag_p99,
        cpu,
        stored,
        duplicates,
        fail,
    }
}

fn print_step(label: &str, r: &StepResult) {
    let errors = if r.errors.is_empty() {
        String::new()
    } else {
        let e: Vec<String> = r.errors.iter().map(|(k, v)| format!("{v} {k}")).collect();
        format!(", errors: {}", e.join(", "))
    };
    let cpu = r
        .cpu
        .map(|c| {
            format!(
                ", CPU {:.0}% bench process (collector + generator) + {:.0}% others of {}00%",
                c.own,
                c.others(),
                cores()
            )
        })
        .unwrap_or_default();
    println!(
        "  {label} {:>6.0} req/s: sent {:.0}/s, ok {}/{} ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms, \
         max {:.0} ms, start lag p99 {:.1} ms{cpu}, records stored {} dup {}{errors} -> {}",
        r.target,
        r.send_rate,
        r.ok,
        r.sent,
        r.ok_rate,
        ms(r.p50),
        ms(r.p99),
        ms(r.max),
        ms(r.lag_p99),
        r.stored,
        r.duplicates,
        r.fail.as_deref().unwrap_or("ok")
    );
}

async fn throughput_on(label: &str, url: &str) {
    if let Some(c) = background_cpu().await {
        let capacity = 100.0 * cores() as f64;
        println!(
            "{label}: before starting, other processes use {:.0}% of {capacity:.0}% CPU{}",
            c.others(),
            if c.others() > 0.2 * capacity {
                " -- the machine is busy with other work: the figures below are lower than on a quiet machine"
            } else {
                ""
            }
        );
    }
    let started = Instant::now();
    let store = store::open(url).await.expect("open the store");
    let t = Instant::now();
    let mut fleet = Fleet::register(store.clone(), DEVICES).await;
    println!(
        "{label}: registered {DEVICES} devices through the store in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let collector = Collector::start(store, url, None).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(120))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let ingest =
        reqwest::Url::parse(&format!("{}/api/v1/ingest", collector.base)).expect("ingest URL");
    let mut rng = StdRng::seed_from_u64(7);

    // Warm-up (not reported): connections, prepared statements, caches.
    let warm = tokio::task::block_in_place(|| fleet.requests(200, &mut rng));
    run_step(&client, &ingest, warm, 200.0).await;

    let step = |rate: f64, fleet: &mut Fleet, rng: &mut StdRng| {
        let count = (rate * STEP.as_secs_f64()).round() as usize;
        let reqs = tokio::task::block_in_place(|| fleet.requests(count, rng));
        let client = client.clone();
        let ingest = ingest.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let r = run_step(&client, &ingest, reqs, rate).await;
            print_step(label, &r);
            r
        }
    };
    let mut best: Option<StepResult> = None;
    let mut failed_at: Option<(f64, String, Option<Cpu>)> = None;
    for rate in LADDER {
        if started.elapsed() > BACKEND_BUDGET {
            break;
        }
        let r = step(rate, &mut fleet, &mut rng).await;
        match r.fail.clone() {
            None => best = Some(r),
            Some(why) => {
                failed_at = Some((rate, why, r.cpu));
                break;
            }
        }
    }
    // Three bisection steps between the last passing and the first failing rate.
    if let Some((mut hi, _, _)) = failed_at.clone() {
        let mut lo = best.as_ref().map_or(0.0, |b| b.target);
        for _ in 0..3 {
            let mid = ((lo + hi) / 2.0 / 50.0).round() * 50.0;
            if mid <= lo || mid >= hi || started.elapsed() > BACKEND_BUDGET {
                break;
            }
            let r = step(mid, &mut fleet, &mut rng).await;
            if r.fail.is_none() {
                lo = mid;
                best = Some(r);
            } else {
                hi = mid;
                failed_at = Some((mid, r.fail.clone().unwrap_or_default(), r.cpu));
            }
        }
    }
    collector.stop().await;

    let stop = match &failed_at {
        Some((rate, why, cpu)) => {
            let capacity = 100.0 * cores() as f64;
            let hint = match cpu {
                Some(c) if c.machine < 0.75 * capacity => format!(
                    " (machine CPU {:.0}% of {capacity:.0}% there: not CPU-bound, so sharing the \
                     cores with the generator is not what limits it)",
                    c.machine
                ),
                Some(c) => format!(
                    " (machine CPU {:.0}% of {capacity:.0}% there, {:.0}% of it outside this process: \
                     near saturation, the generator's share of the CPU counts against the collector)",
                    c.machine,
                    c.others()
                ),
                None => String::new(),
            };
            format!("stopped at {rate:.0} req/s: {why}{hint}")
        }
        None => format!(
            "every step passed up to {:.0} req/s (ladder or time budget exhausted: the real limit is higher)",
            best.as_ref().map_or(0.0, |b| b.target)
        ),
    };
    match best {
        Some(b) => {
            let devices = b.target * 60.0;
            println!(
                "{label}: sustained {} req/s with p99 {:.0} ms => {} devices at one batch per minute \
                 (target >= {}: ratio {:.2}); {stop}",
                thousands(b.target as u64),
                ms(b.p99),
                thousands(devices as u64),
                thousands(TARGET_DEVICES as u64),
                devices / TARGET_DEVICES
            );
        }
        None => println!(
            "{label}: no step sustained p99 < {P99_LIMIT_MS:.0} ms => fewer than {} devices at one \
             batch per minute (target >= {}); {stop}",
            thousands((failed_at.as_ref().map_or(LADDER[0], |f| f.0) * 60.0) as u64),
            thousands(TARGET_DEVICES as u64)
        ),
    }
    println!(
        "{label}: ({} s of this backend, {} s per step)",
        started.elapsed().as_secs(),
        STEP.as_secs()
    );
}

async fn bench_throughput() {
    println!(
        "== ingest throughput: one-minute batches (3 link_minutes + 1 heartbeat, gzip'd JSON), keep-alive HTTP/1.1 on 127.0.0.1"
    );
    println!(
        "   note: the load generator (reqwest, same process) shares the machine's {} cores with the collector{}; \
         the collector runs the embedded defaults (max_inflight 256); the database starts empty \
         ({DEVICES} devices, a few hundred thousand records), so index depth of a months-old \
         production database is not covered",
        cores(),
        if std::env::var("LINKWATCH_TEST_PG_URL").is_ok() {
            " (and with PostgreSQL's server processes in the PostgreSQL run)"
        } else {
            ""
        }
    );
    let sqlite = Db::sqlite();
    if let Some(dir) = sqlite.sqlite_dir() {
        println!(
            "   sqlite: file on {}, synchronous=FULL; a 4 KiB write+fdatasync there takes {:.2} ms (median)",
            filesystem_of(dir),
            fsync_ms(dir)
        );
    }
    throughput_on("sqlite", sqlite.url()).await;
    sqlite.drop_db().await;

    match std::env::var("LINKWATCH_TEST_PG_URL") {
        Err(_) => println!("postgres: skipped (LINKWATCH_TEST_PG_URL not set)"),
        Ok(base) => {
            let pg = Db::postgres(&base).await;
            if let Ok(mut conn) = PgConnection::connect(&base).await {
                let mut settings = Vec::new();
                for s in [
                    "server_version",
                    "synchronous_commit",
                    "fsync",
                    "shared_buffers",
                ] {
                    if let Ok(v) =
                        sqlx::query_scalar::<_, String>(AssertSqlSafe(format!("SHOW {s}")))
                            .fetch_one(&mut conn)
                            .await
                    {
                        settings.push(format!("{s}={v}"));
                    }
                }
                let _ = conn.close().await;
                println!("   postgres: local server, {}", settings.join(", "));
            }
            let url = pg.url().to_string();
            // Run on a task so that the schema is dropped even if the run panics.
            let outcome = tokio::spawn(async move { throughput_on("postgres", &url).await }).await;
            pg.drop_db().await;
            if let Err(e) = outcome {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Agent side: spool + uploader

/// A directory for spools being filled: tmpfs when there is one (filling
/// 40,000 records one fsync'd transaction at a time takes minutes on disk;
/// the agent pays that over a week, not at once), else the default temp dir.
fn fill_dir() -> (tempfile::TempDir, &'static str) {
    match tempfile::tempdir_in("/dev/shm") {
        Ok(d) => (d, "tmpfs (/dev/shm)"),
        Err(_) => (tempfile::tempdir().expect("temporary directory"), "disk"),
    }
}

/// Append minutes `from..to` of a 3-link device to `spool`; a transition is
/// added in every minute `m` with `m % every == every / 2`. Returns the
/// number of transitions added.
async fn fill_minutes(
    spool: &Spool,
    rng: &mut StdRng,
    t0_ms: i64,
    minutes: std::ops::Range<u64>,
    every: u64,
    transitions: &mut usize,
) {
    for m in minutes {
        let extra: Vec<Body> = if m % every == every / 2 {
            *transitions += 1;
            vec![transition(*transitions)]
        } else {
            vec![]
        };
        for (at, mono, body) in minute_bodies(rng, t0_ms, m, &extra) {
            spool
                .append(at, mono, BOOT_ID, &body)
                .await
                .expect("append to the spool");
        }
    }
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn wal_of(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

/// An uploader for `device` (token registered in `store`) draining `spool`
/// to `url`, with the default upload settings.
async fn uploader_for(
    store: &dyn Store,
    device: &str,
    url: &str,
    ca: Option<PathBuf>,
    dir: &Path,
    spool: Arc<Spool>,
) -> Uploader {
    let (_, token) = devices::add_device(store, device, None, now_ms())
        .await
        .expect("register the device");
    let token_file = dir.join(format!("{device}.token"));
    let _ = std::fs::remove_file(&token_file);
    linkwatch::shared::files::write_new_private(&token_file, format!("{token}\n").as_bytes())
        .expect("write the token file");
    let cfg = UploadSection {
        collector_url: Some(url.to_string()),
        token_file: Some(token_file),
        ca_file: ca,
        spool_path: spool.path().to_path_buf(),
        ..UploadSection::default()
    };
    Uploader::new(&cfg, device.to_string(), spool).expect("build the uploader")
}

// ---------------------------------------------------------------------------
// 2. Backlog

async fn bench_backlog() {
    println!(
        "== backlog catch-up: 7 days offline at defaults (3 links), then Uploader::drain to a SQLite collector over http://127.0.0.1"
    );
    let defaults = UploadSection::default();
    let disk = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", disk.path().join("collector.db").display());
    let store = store::open(&url).await.expect("open the store");
    let collector = Collector::start(store.clone(), &url, None).await;

    // Fill: 7 days x 1440 minutes x (3 link_minutes + 1 heartbeat) + transitions.
    let (fill, fill_fs) = fill_dir();
    let fill_path = fill.path().join("spool.db");
    let spool = Spool::open(&fill_path, defaults.spool_max_bytes)
        .await
        .expect("open the spool");
    let mut rng = StdRng::seed_from_u64(11);
    let minutes = 7 * 1440;
    let t0 = now_ms() - minutes as i64 * 60_000 - 60_000;
    let mut transitions = 0usize;
    let t = Instant::now();
    fill_minutes(&spool, &mut rng, t0, 0..minutes, 30, &mut transitions).await;
    let fill_secs = t.elapsed().as_secs_f64();
    let stats = spool.stats().await.expect("spool stats");
    let (db_len, wal_len) = (file_len(&fill_path), file_len(&wal_of(&fill_path)));
    spool.close().await;
    println!(
        "  filled {} records ({} link_minutes, {} heartbeats, {transitions} link_state/failover) in {fill_secs:.1} s on {fill_fs}; \
         folded {}, over budget {}",
        thousands(stats.depth),
        thousands(minutes * 3),
        thousands(minutes),
        stats.folded,
        stats.over_budget
    );
    let per_day = stats.bytes as f64 / 7.0;
    println!(
        "  spool size for 7 days offline at defaults: {:.1} MB on disk (.db {:.1} MB + -wal {:.1} MB); \
         payload counted against the budget {:.1} MB of {:.0} MiB ({:.0}%): folding would start after ~{:.0} days offline",
        (db_len + wal_len) as f64 / 1e6,
        db_len as f64 / 1e6,
        wal_len as f64 / 1e6,
        stats.bytes as f64 / 1e6,
        defaults.spool_max_bytes as f64 / 1048576.0,
        stats.bytes as f64 * 100.0 / defaults.spool_max_bytes as f64,
        defaults.spool_max_bytes as f64 / per_day
    );

    // Drain from a spool on disk (the copy of the filled file).
    let path = disk.path().join("spool.db");
    std::fs::copy(&fill_path, &path).expect("copy the spool to disk");
    if wal_of(&fill_path).exists() {
        std::fs::copy(wal_of(&fill_path), wal_of(&path)).expect("copy the spool's WAL");
    }
    drop(fill);
    let spool = Arc::new(
        Spool::open(&path, defaults.spool_max_bytes)
            .await
            .expect("reopen the spool"),
    );
    let up = uploader_for(
        store.as_ref(),
        "gw-backlog",
        &collector.base,
        None,
        disk.path(),
        spool.clone(),
    )
    .await;
    let t = Instant::now();
    let report = up.drain().await.expect("drain the backlog");
    let secs = t.elapsed().as_secs_f64();
    let left = spool.stats().await.expect("spool stats");
    let acked = store
        .device_by_name("gw-backlog")
        .await
        .expect("device")
        .map_or(0, |d| d.acked);
    println!(
        "  drain: {} records in {} batches of <= {} in {secs:.2} s ({:.0} records/s); collector acked seq {}, spool left {} \
         (spool on {}, collector database on the same disk)",
        thousands(report.records),
        report.batches,
        defaults.batch_max_records,
        report.records as f64 / secs,
        thousands(acked.max(0) as u64),
        left.depth,
        filesystem_of(disk.path())
    );
    println!(
        "  backlog catch-up: {secs:.2} s for 7 days (target <= 10 s: ratio {:.2}, i.e. {:.1}x headroom) over loopback; \
         the {:.0} KB of gzip'd bodies would add ~{:.0} s on a 1 Mbit/s link",
        secs / 10.0,
        10.0 / secs,
        report.bytes as f64 / 1e3,
        report.bytes as f64 * 8.0 / 1e6
    );
    spool.close().await;
    collector.stop().await;
}

// ---------------------------------------------------------------------------
// 3. Bytes on the wire

#[derive(Default)]
struct Counts {
    up: AtomicU64,
    down: AtomicU64,
    conns: AtomicU64,
    /// TLS connections whose ServerHello accepted a pre-shared key (resumed).
    resumed: AtomicU64,
}

impl Counts {
    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.up.load(Ordering::Relaxed),
            self.down.load(Ordering::Relaxed),
            self.conns.load(Ordering::Relaxed),
        )
    }
}

/// A TCP relay on 127.0.0.1 that counts the bytes each way (TCP payload:
/// HTTP, or TLS records); with `idle_close`, a connection quiet that long is
/// closed (to force a new connection per upload).
struct Relay {
    port: u16,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl Relay {
    async fn start(target: SocketAddr, idle_close: Option<Duration>) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn({
            let counts = counts.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    counts.conns.fetch_add(1, Ordering::Relaxed);
                    let counts = counts.clone();
                    tokio::spawn(async move {
                        if let Ok(server) = tokio::net::TcpStream::connect(target).await {
                            relay(client, server, &counts, idle_close).await;
                        }
                    });
                }
            }
        });
        Relay { port, counts, task }
    }
}

async fn relay(
    mut client: tokio::net::TcpStream,
    mut server: tokio::net::TcpStream,
    counts: &Counts,
    idle_close: Option<Duration>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.split();
    let mut a = vec![0u8; 64 * 1024];
    let mut b = vec![0u8; 64 * 1024];
    let mut first_answer = true;
    loop {
        let idle = async {
            match idle_close {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = cr.read(&mut a) => match r {
                Ok(n) if n > 0 => {
                    counts.up.fetch_add(n as u64, Ordering::Relaxed);
                    if sw.write_all(&a[..n]).await.is_err() {
                        break;
                    }
                }
                _ => break,
            },
            r = sr.read(&mut b) => match r {
                Ok(n) if n > 0 => {
                    counts.down.fetch_add(n as u64, Ordering::Relaxed);
                    if std::mem::take(&mut first_answer) && server_hello_psk(&b[..n]) == Some(true) {
                        counts.resumed.fetch_add(1, Ordering::Relaxed);
                    }
                    if cw.write_all(&b[..n]).await.is_err() {
                        break;
                    }
                }
                _ => break,
            },
            _ = idle => break,
        }
    }
}

/// Does this TLS ServerHello (the server's first bytes, in clear) carry the
/// `pre_shared_key` extension, i.e. resume a session? None: not a ServerHello.
fn server_hello_psk(buf: &[u8]) -> Option<bool> {
    // Record header (type 22 = handshake, version, length), handshake header
    // (type 2 = ServerHello, 3-byte length), legacy version, random.
    if buf.len() < 9 || buf[0] != 22 || buf[5] != 2 {
        return None;
    }
    let mut p = 5 + 4 + 2 + 32;
    let sid = usize::from(*buf.get(p)?);
    p += 1 + sid + 2 + 1; // session id, cipher suite, compression
    let ext_len = usize::from(u16::from_be_bytes([*buf.get(p)?, *buf.get(p + 1)?]));
    p += 2;
    let end = (p + ext_len).min(buf.len());
    while p + 4 <= end {
        let ty = u16::from_be_bytes([buf[p], buf[p + 1]]);
        let len = usize::from(u16::from_be_bytes([buf[p + 2], buf[p + 3]]));
        if ty == 41 {
            return Some(true);
        }
        p += 4 + len;
    }
    Some(false)
}

/// A CA and a server certificate for 127.0.0.1 signed by it (P-256), as
/// files: (ca.pem, server cert, server key).
fn make_certs(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "linkwatch bench CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let key = KeyPair::generate().expect("server key");
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("server cert params");
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let cert = params.signed_by(&key, &ca).expect("server certificate");
    let (ca_path, cert_path, key_path) = (
        dir.join("ca.pem"),
        dir.join("collector.crt"),
        dir.join("collector.key"),
    );
    std::fs::write(&ca_path, ca.pem()).expect("write ca.pem");
    std::fs::write(&cert_path, cert.pem()).expect("write collector.crt");
    let _ = std::fs::remove_file(&key_path);
    linkwatch::shared::files::write_new_private(&key_path, key.serialize_pem().as_bytes())
        .expect("write collector.key");
    (ca_path, cert_path, key_path)
}

/// What one series of uploads cost.
struct Series {
    requests: u64,
    body: u64,
    up: u64,
    down: u64,
    conns: u64,
}

impl Series {
    fn per_req(&self, v: u64) -> f64 {
        v as f64 / self.requests.max(1) as f64
    }
}

/// Record minutes `range` and upload them as the agent does at defaults:
/// a drain every `per_upload` minutes (the upload interval), and one right
/// after each transition (an urgent record, sent `urgent_delay` later with
/// whatever was written by then), with `pause` after each upload; returns
/// the counts of that span.
#[allow(clippy::too_many_arguments)]
async fn upload_minutes(
    up: &Uploader,
    spool: &Spool,
    relay: &Relay,
    rng: &mut StdRng,
    t0: i64,
    range: std::ops::Range<u64>,
    per_upload: u64,
    every: u64,
    transitions: &mut usize,
    pause: Duration,
) -> Series {
    let (u0, d0, c0) = relay.counts.snapshot();
    let b0 = up.stats().bytes_sent;
    let batches0 = up.stats().batches;
    for m in range {
        let before = *transitions;
        fill_minutes(spool, rng, t0, m..m + 1, every, transitions).await;
        let urgent = *transitions > before;
        if !urgent && (m + 1) % per_upload != 0 {
            continue;
        }
        // The uploader itself resends once on a dropped connection.
        if let Err(e) = up.drain().await {
            panic!("upload failed: {e}");
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    let (u1, d1, c1) = relay.counts.snapshot();
    let s = up.stats();
    Series {
        requests: s.batches - batches0,
        body: s.bytes_sent - b0,
        up: u1 - u0,
        down: d1 - d0,
        conns: c1 - c0,
    }
}

async fn bench_bytes() {
    let defaults = UploadSection::default();
    let per_upload = (defaults.upload_interval.as_secs() / 60).max(1);
    println!(
        "== bytes per device per day on the wire at defaults: a 3-link device, upload every {} min ({} uploads/day) \
         + one upload {} after each of ~20 state changes a day",
        per_upload,
        1440 / per_upload,
        humantime::format_duration(defaults.urgent_delay)
    );
    let disk = tempfile::tempdir().expect("temporary directory");
    let (spools, _) = fill_dir();
    let url = format!("sqlite://{}", disk.path().join("collector.db").display());
    let store = store::open(&url).await.expect("open the store");
    let plain = Collector::start(store.clone(), &url, None).await;
    let (ca, cert, key) = make_certs(disk.path());
    let tls = Collector::start(store.clone(), &url, Some((cert, key))).await;
    let t0 = now_ms() - 86_400_000 - 60_000;
    let mut rng = StdRng::seed_from_u64(13);

    // A: the whole day over plain HTTP, kept alive (uploads back to back).
    let relay_a = Relay::start(plain.addr, None).await;
    let spool_a = Arc::new(
        Spool::open(&spools.path().join("a.db"), defaults.spool_max_bytes)
            .await
            .expect("open the spool"),
    );
    let up_a = uploader_for(
        store.as_ref(),
        "gw-bytes",
        &format!("http://127.0.0.1:{}", relay_a.port),
        None,
        disk.path(),
        spool_a.clone(),
    )
    .await;
    let mut transitions = 0usize;
    let day = upload_minutes(
        &up_a,
        &spool_a,
        &relay_a,
        &mut rng,
        t0,
        0..1440,
        per_upload,
        72,
        &mut transitions,
        Duration::ZERO,
    )
    .await;
    let stats = up_a.stats();
    let records = stats.records;
    let per_day = day.requests as f64;
    let header = day.per_req(day.up - day.body);
    let resp = day.per_req(day.down);
    println!(
        "  uploaded {} records/day ({} heartbeats, {} link_minutes, {transitions} transitions) in {} requests over {} connection(s) (kept alive)",
        thousands(records),
        thousands(1440),
        thousands(1440 * 3),
        thousands(day.requests),
        day.conns
    );
    println!(
        "  request bodies (gzip'd JSON, UploadStats.bytes_sent): {} B/day = {:.1} KB/day ({:.0} B/request; {} B/day raw JSON, {:.1}x compression)",
        thousands(stats.bytes_sent),
        stats.bytes_sent as f64 / 1e3,
        day.per_req(day.body),
        thousands(stats.bytes_raw),
        stats.bytes_raw as f64 / stats.bytes_sent.max(1) as f64
    );
    println!(
        "  HTTP/1.1 request line + headers (measured on the wire): {header:.0} B/request = {:.1} KB/day",
        header * per_day / 1e3
    );
    println!(
        "  HTTP response: status line + headers + ack JSON (measured): {resp:.0} B/request = {:.1} KB/day",
        resp * per_day / 1e3
    );
    spool_a.close().await;
    relay_a.task.abort();

    // B: TLS, connection kept alive (back-to-back uploads).
    let relay_b = Relay::start(tls.addr, None).await;
    let spool_b = Arc::new(
        Spool::open(&spools.path().join("b.db"), defaults.spool_max_bytes)
            .await
            .expect("open the spool"),
    );
    let up_b = uploader_for(
        store.as_ref(),
        "gw-tls-kept",
        &format!("https://127.0.0.1:{}", relay_b.port),
        Some(ca.clone()),
        disk.path(),
        spool_b.clone(),
    )
    .await;
    let mut tb = 0usize;
    let first_b = upload_minutes(
        &up_b,
        &spool_b,
        &relay_b,
        &mut rng,
        t0,
        0..5,
        per_upload,
        72,
        &mut tb,
        Duration::from_millis(200),
    )
    .await;
    let kept = upload_minutes(
        &up_b,
        &spool_b,
        &relay_b,
        &mut rng,
        t0,
        5..125,
        per_upload,
        72,
        &mut tb,
        Duration::ZERO,
    )
    .await;
    spool_b.close().await;
    relay_b.task.abort();
    let tls_kept_overhead = kept.per_req(kept.up + kept.down - kept.body) - header - resp;

    // C: TLS, a new connection for every upload (the relay closes a
    // connection idle 150 ms; uploads 400 ms apart). A fresh uploader: its
    // first connection is a full handshake, later ones may resume the session.
    let relay_c = Relay::start(tls.addr, Some(Duration::from_millis(150))).await;
    let spool_c = Arc::new(
        Spool::open(&spools.path().join("c.db"), defaults.spool_max_bytes)
            .await
            .expect("open the spool"),
    );
    let up_c = uploader_for(
        store.as_ref(),
        "gw-tls-new",
        &format!("https://127.0.0.1:{}", relay_c.port),
        Some(ca),
        disk.path(),
        spool_c.clone(),
    )
    .await;
    let mut tc = 0usize;
    let pause = Duration::from_millis(400);
    let first_c = upload_minutes(
        &up_c,
        &spool_c,
        &relay_c,
        &mut rng,
        t0,
        0..5,
        per_upload,
        72,
        &mut tc,
        pause,
    )
    .await;
    let first_resumed = relay_c.counts.resumed.load(Ordering::Relaxed);
    let fresh = upload_minutes(
        &up_c,
        &spool_c,
        &relay_c,
        &mut rng,
        t0,
        5..155,
        per_upload,
        72,
        &mut tc,
        pause,
    )
    .await;
    spool_c.close().await;
    relay_c.task.abort();
    let fresh_wire = fresh.per_req(fresh.up + fresh.down);
    let fresh_overhead = fresh_wire - fresh.per_req(fresh.body);
    let first_overhead = (first_c.up + first_c.down) as f64 - first_c.per_req(first_c.body);

    println!(
        "  TLS kept alive (measured, {} uploads over {} connection(s)): +{tls_kept_overhead:.0} B/request of TLS record \
         overhead over plain HTTP (~22 B per TLS 1.3 record, 29 with TLS 1.2 AES-GCM) = {:.1} KB/day",
        kept.requests,
        kept.conns + first_b.conns,
        tls_kept_overhead * per_day / 1e3,
    );
    println!(
        "  TLS new connection per upload (measured, {} uploads over {} connections): {fresh_wire:.0} B/request on the wire, \
         {fresh_overhead:.0} B of it besides the body (HTTP + TLS handshake, {} of {} sessions resumed, + records) = {:.1} KB/day; \
         the uploader's first connection ({}) took {first_overhead:.0} B besides the body \
         (one P-256 leaf certificate signed by a local CA; a longer chain adds its size)",
        fresh.requests,
        fresh.conns,
        relay_c.counts.resumed.load(Ordering::Relaxed) - first_resumed,
        fresh.conns,
        fresh_wire * per_day / 1e3,
        if first_resumed > 0 {
            "resumed"
        } else {
            "full handshake, no cached session"
        }
    );

    // TCP/IP: 20 B IPv4 + 32 B TCP with timestamps per packet; link-layer
    // framing (Ethernet, PPP, mobile) comes on top and is not counted.
    let per_packet = 52.0;
    let kept_packets = 4.0; // request, ACK, response, ACK
    let fresh_packets = 14.0; // 3 handshake + ~5 TLS/HTTP flights + ~2 ACKs + 4 for the close
    let body_day = stats.bytes_sent as f64;
    let http_day = (header + resp) * per_day;
    let kept_total =
        body_day + http_day + (tls_kept_overhead + kept_packets * per_packet) * per_day;
    let fresh_total = (fresh_wire - fresh.per_req(fresh.body)) * per_day
        + body_day
        + fresh_packets * per_packet * per_day;
    println!(
        "  TCP/IP headers (estimate, {per_packet:.0} B per packet: IPv4 20 + TCP 32 with timestamps): ~{kept_packets:.0} packets per upload \
         kept alive = {:.1} KB/day, ~{fresh_packets:.0} with a new connection = {:.1} KB/day",
        kept_packets * per_packet * per_day / 1e3,
        fresh_packets * per_packet * per_day / 1e3
    );
    println!(
        "  bytes per device per day: bodies alone {:.1} KB (measured); bodies + HTTP {:.1} KB (measured); \
         total estimate over TLS kept alive {:.1} KB; with a new TLS connection per upload {:.1} KB \
         (target <= 1 MB/day incl. heartbeats: ratios {:.2}, {:.2}, {:.2}, {:.2})",
        body_day / 1e3,
        (body_day + http_day) / 1e3,
        kept_total / 1e3,
        fresh_total / 1e3,
        body_day / 1e6,
        (body_day + http_day) / 1e6,
        kept_total / 1e6,
        fresh_total / 1e6
    );
    println!(
        "  note: the uploader's HTTP client keeps an idle connection for the upload interval + 30 s, so where the \
         network keeps idle TCP connections for {} min the kept-alive figure applies; a NAT or mobile network that \
         drops them sooner gets the new-connection figure (resumed TLS: the collector remembers 131,072 sessions)",
        per_upload
    );
    plain.stop().await;
    tls.stop().await;
}

// ---------------------------------------------------------------------------

fn main() {
    // The attack benchmark's attacker: this binary run again.
    if let Ok(spec) = std::env::var("LW_ATTACKER") {
        attack::attacker_process(&spec);
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        // `cargo test --all-targets` runs benchmarks as tests: do nothing then.
        println!("ingest benchmarks run only under `cargo bench --bench ingest`");
        return;
    }
    let known = ["throughput", "backlog", "bytes", "attack", "versus"];
    let mut selected = Vec::new();
    for a in args.iter().filter(|a| !a.starts_with('-')) {
        if known.contains(&a.as_str()) {
            selected.push(a.as_str());
        } else {
            eprintln!(
                "unknown benchmark `{a}`: choose from throughput, backlog, bytes, attack, versus (none = all)"
            );
            std::process::exit(2);
        }
    }
    let want = |s: &str| selected.is_empty() || selected.contains(&s);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        if want("throughput") {
            bench_throughput().await;
        }
        if want("backlog") {
            bench_backlog().await;
        }
        if want("bytes") {
            bench_bytes().await;
        }
        if want("attack") {
            attack::bench_attack().await;
        }
        if want("versus") {
            versus::bench_versus().await;
        }
    });
}
