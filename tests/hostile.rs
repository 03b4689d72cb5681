//! The collector as an attacker finds it: the real binary (`linkwatch
//! collector`, SQLite in a temporary directory) on 127.0.0.1, attacked over
//! raw TCP and HTTP. Counts are modest (hundreds of connections) and the
//! collector's own limits are set small (timeouts of a second or two, an
//! open-file limit of 400 through `ulimit`) so that each attack reaches
//! them in seconds. Timing bounds are generous (a loaded CI machine) but
//! fail when a limit stops working.
//!
//! - idle, slow-head and kept connections are closed on time, a flood of
//!   connections beyond the open-file limit does not stop `/health`
//!   (answered within 100 ms at the median, 1 s at worst, every time) and
//!   memory comes back down after it;
//! - a declared `Content-Length` over the limit is 413 at once;
//! - a gzip bomb inside one record body is 400 naming the limit, with the
//!   collector's peak RSS bounded;
//! - one device's 256 slow uploads: 2 get a slot and are cut with 408, the
//!   rest 429 at once, and another device uploads meanwhile;
//! - sequence numbers at the top of the range: 400 naming the field, and the
//!   device's `acked` is never driven to the maximum;
//! - files holding secrets are 0600 under `umask 000`; a world-readable TLS
//!   key or token file is refused, naming the file and the fix.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

/// Held by the tests that load the machine (floods, bombs): they run one at
/// a time, so that one's timings are not another's load.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------
// The collector process

struct Collector {
    child: tokio::process::Child,
    addr: SocketAddr,
    pid: u32,
    dir: tempfile::TempDir,
    config: PathBuf,
    log: Arc<Mutex<String>>,
}

/// The test process may need more sockets than the usual 1024.
fn raise_own_file_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

impl Collector {
    /// `linkwatch collector` on 127.0.0.1:0 with `extra` lines in
    /// `[collector]`, started by `sh` after `prelude` (`umask 000`,
    /// `ulimit -n 400`, ...).
    async fn start(extra: &str, prelude: &str) -> Collector {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("collector.toml");
        std::fs::write(
            &config,
            format!(
                "[collector]\nlisten = \"127.0.0.1:0\"\ndatabase = \"sqlite://{}\"\n\
                 log_format = \"text\"\nlog_level = \"info\"\n{extra}\n",
                dir.path().join("collector.db").display()
            ),
        )
        .unwrap();
        let (child, addr, log) = spawn_collector(&config, prelude).await;
        let pid = child.id().unwrap();
        Collector {
            child,
            addr,
            pid,
            dir,
            config,
            log,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A field of /proc/PID/status, in kB.
    fn status_kib(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc/{}/status", self.pid))
    }

    fn rss_mib(&self) -> f64 {
        self.status_kib("VmRSS") as f64 / 1024.0
    }

    fn peak_mib(&self) -> f64 {
        self.status_kib("VmHWM") as f64 / 1024.0
    }

    /// Open file descriptors of the collector.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    /// Register a device with the real CLI, its token written to a file.
    async fn add_device(&self, name: &str) -> String {
        let out = self.dir.path().join(format!("{name}.token"));
        let (code, _, err) = run(
            &[
                "device",
                "add",
                name,
                "--output",
                out.to_str().unwrap(),
                "--config",
                self.config.to_str().unwrap(),
            ],
            "",
        )
        .await;
        assert_eq!(code, 0, "{err}");
        std::fs::read_to_string(&out).unwrap().trim().to_string()
    }

    async fn metrics(&self) -> String {
        let (status, body) = get(self.addr, "/metrics").await.unwrap();
        assert_eq!(status, 200);
        body
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Start the collector with `config` after `prelude`; its address once it
/// listens, and its log (read on as it grows).
async fn spawn_collector(
    config: &Path,
    prelude: &str,
) -> (tokio::process::Child, SocketAddr, Arc<Mutex<String>>) {
    let mut child = shell(
        prelude,
        &["collector", "--config", config.to_str().unwrap()],
    )
    .stderr(Stdio::piped())
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let log = Arc::new(Mutex::new(String::new()));
    let addr = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            log.lock().unwrap().push_str(&format!("{line}\n"));
            if line.contains("collector listening")
                && let Some(a) = line.split("addr=").nth(1)
            {
                return a.split_whitespace().next().unwrap().parse().unwrap();
            }
        }
        panic!(
            "the collector exited before listening:\n{}",
            log.lock().unwrap()
        );
    })
    .await
    .expect("the collector listens within 30 s");
    // Keep reading, so the collector never blocks on a full pipe.
    let sink = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let mut l = sink.lock().unwrap();
            if l.len() < 1 << 20 {
                l.push_str(&format!("{line}\n"));
            }
        }
    });
    (child, addr, log)
}

/// `linkwatch ARGS` run by `sh` after `prelude`.
fn shell(prelude: &str, args: &[&str]) -> tokio::process::Command {
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!("{prelude}\nexec '{BIN}' {}", quoted.join(" ")))
        .env_remove("LINKWATCH_COLLECTOR_CONFIG")
        .env_remove("RUST_LOG");
    cmd
}

/// Run `linkwatch ARGS` to the end: (exit code, stdout, stderr).
async fn run(args: &[&str], prelude: &str) -> (i32, String, String) {
    let out = shell(prelude, args).output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

// ---------------------------------------------------------------------------
// Raw HTTP

/// `GET path` on a new connection (`Connection: close`): status and body.
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    get_from([127, 0, 0, 1], addr, path).await
}

/// The same from the source address `src` (in 127.0.0.0/8).
async fn get_from(src: [u8; 4], addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let sock = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
    sock.bind(SocketAddr::from((src, 0)))
        .map_err(|e| e.to_string())?;
    let mut s = sock.connect(addr).await.map_err(|e| e.to_string())?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = status_of(&text).ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((status, body.to_string()))
}

fn status_of(text: &str) -> Option<u16> {
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// `/health` on a new connection from 127.0.0.2 (a monitor elsewhere than
/// the attacker), timed; an error past 2 s.
async fn health(addr: SocketAddr) -> Result<Duration, String> {
    let t0 = Instant::now();
    match tokio::time::timeout(
        Duration::from_secs(2),
        get_from([127, 0, 0, 2], addr, "/health"),
    )
    .await
    {
        Ok(Ok((200, _))) => Ok(t0.elapsed()),
        Ok(Ok((s, b))) => Err(format!("HTTP {s}: {b}")),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no answer within 2 s".into()),
    }
}

/// Read the answer head on `s` (up to the blank line), within `limit`.
async fn read_head(s: &mut TcpStream, limit: Duration) -> Result<String, String> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    tokio::time::timeout(limit, async {
        while !buf.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte).await {
                Ok(0) => return Err(format!("closed after {:?}", String::from_utf8_lossy(&buf))),
                Ok(_) => buf.push(byte[0]),
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(String::from_utf8_lossy(&buf).into_owned())
    })
    .await
    .map_err(|_| format!("no answer head within {limit:?}"))?
}

/// Read and discard until the server ends the connection (end of stream or
/// reset): when that was, or `None` past `limit`.
async fn closed_within(mut s: TcpStream, limit: Duration) -> Option<Instant> {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(_) => {}
            }
        }
    })
    .await
    .ok()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A batch of heartbeats `seqs` for `device`.
fn batch(device: &str, seqs: impl IntoIterator<Item = u64>) -> String {
    let t = now_ms() - 3_600_000;
    let records: Vec<String> = seqs
        .into_iter()
        .map(|s| {
            format!(
                r#"{{"seq":{s},"at":{},"mono_ms":{},"boot_id":"b0","body":{{"type":"heartbeat","online":true}}}}"#,
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

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

struct Answer {
    status: u16,
    json: serde_json::Value,
}

async fn post(c: &reqwest::Client, url: &str, token: &str, body: Vec<u8>, gz: bool) -> Answer {
    let mut req = c
        .post(url)
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body);
    if gz {
        req = req.header("content-encoding", "gzip");
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    Answer {
        status,
        json: serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

// ---------------------------------------------------------------------------
// 1. Connections

const HEADER: Duration = Duration::from_secs(1);
const IDLE: Duration = Duration::from_secs(2);
/// How late a connection may be closed after its deadline on a loaded machine.
const SLACK: Duration = Duration::from_millis(2000);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_slow_and_surplus_connections_are_closed_and_health_keeps_answering() {
    let _heavy = HEAVY.lock().await;
    raise_own_file_limit();
    // An open-file limit of 400: max_connections (10,000 by default) is
    // lowered to fit, and 450 connections would exhaust it.
    let c = Collector::start(
        "header_timeout = \"1s\"\nidle_timeout = \"2s\"\n",
        "ulimit -n 400",
    )
    .await;
    assert!(
        c.log()
            .contains("max_connections lowered to fit the open-file limit"),
        "{}",
        c.log()
    );
    health(c.addr).await.unwrap();

    // (a) Silent connections, heads sent a line every 300 ms, and kept
    // connections idle after one answer: each closed on time.
    let mut silent = Vec::new();
    let mut slow = Vec::new();
    let mut kept = Vec::new();
    for _ in 0..20 {
        let s = TcpStream::connect(c.addr).await.unwrap();
        let t = Instant::now();
        silent.push(tokio::spawn(async move {
            (t, closed_within(s, Duration::from_secs(10)).await)
        }));
        let mut s = TcpStream::connect(c.addr).await.unwrap();
        let t = Instant::now();
        slow.push(tokio::spawn(async move {
            let _ = s.write_all(b"GET /health HTTP/1.1\r\n").await;
            let (mut r, mut w) = s.into_split();
            let trickle = tokio::spawn(async move {
                for i in 0..50 {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if w.write_all(format!("x-slow-{i}: 1\r\n").as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
            });
            let mut buf = [0u8; 1024];
            let end = tokio::time::timeout(Duration::from_secs(10), async {
                loop {
                    match r.read(&mut buf).await {
                        Ok(0) | Err(_) => return Instant::now(),
                        Ok(_) => {}
                    }
                }
            })
            .await
            .ok();
            trickle.abort();
            (t, end)
        }));
        let mut s = TcpStream::connect(c.addr).await.unwrap();
        kept.push(tokio::spawn(async move {
            s.write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
                .await
                .unwrap();
            let head = read_head(&mut s, Duration::from_secs(5)).await.unwrap();
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let mut body = [0u8; 3]; // "ok\n"
            s.read_exact(&mut body).await.unwrap();
            let t = Instant::now();
            (t, closed_within(s, Duration::from_secs(10)).await)
        }));
    }
    let judge = |what: &str, timeout: Duration, results: Vec<(Instant, Option<Instant>)>| {
        for (start, end) in results {
            let end = end.unwrap_or_else(|| panic!("a {what} connection was never closed"));
            let took = end - start;
            // New connections are closed in the second half of the header
            // timeout (spread at random); kept ones at the idle timeout.
            let early = if what == "kept idle" { 0.8 } else { 0.4 };
            assert!(
                took >= timeout.mul_f64(early) && took <= timeout + SLACK,
                "a {what} connection was closed after {:.2} s (timeout {:.0} s)",
                secs(took),
                secs(timeout)
            );
        }
    };
    let collect = |v: Vec<tokio::task::JoinHandle<(Instant, Option<Instant>)>>| async move {
        let mut out = Vec::new();
        for h in v {
            out.push(h.await.unwrap());
        }
        out
    };
    judge("silent", HEADER, collect(silent).await);
    judge("slow-head", HEADER, collect(slow).await);
    judge("kept idle", IDLE, collect(kept).await);
    let m = c.metrics().await;
    for line in [
        "linkwatch_collector_connections_timed_out_total{reason=\"header\"} 40",
        "linkwatch_collector_connections_timed_out_total{reason=\"idle\"} 20",
    ] {
        assert!(m.contains(line), "missing `{line}` in\n{m}");
    }

    // (b) A flood from 127.0.0.1: 450 connections held open, each reopened
    // the moment the collector closes it, for 4 s: more than the
    // collector's 400 files. A monitor on 127.0.0.2 asks /health every
    // 50 ms on new connections meanwhile.
    let base_rss = c.rss_mib();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut flood = Vec::new();
    for _ in 0..450 {
        let stop = stop.clone();
        let addr = c.addr;
        flood.push(tokio::spawn(async move {
            let mut opened = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(s) = TcpStream::connect(addr).await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                opened += 1;
                let _ = closed_within(s, Duration::from_secs(10)).await;
            }
            opened
        }));
    }
    let t0 = Instant::now();
    let mut latencies = Vec::new();
    let mut fds_max = 0;
    while t0.elapsed() < Duration::from_secs(4) {
        let l = match health(c.addr).await {
            Ok(l) => l,
            Err(e) => {
                let log = c.log();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                panic!(
                    "/health failed during the flood after {:?}: {e}; files {}; log:\n{}",
                    t0.elapsed(),
                    c.fds(),
                    tail.join("\n")
                )
            }
        };
        latencies.push(l);
        fds_max = fds_max.max(c.fds());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut opened = 0;
    for h in flood {
        opened += h.await.unwrap();
    }
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let p90 = latencies[latencies.len() * 9 / 10];
    let worst = *latencies.last().unwrap();
    eprintln!(
        "flood: {opened} connections opened; /health {} times: median {:.1} ms, p90 {:.1} ms, \
         worst {:.1} ms; collector files at most {fds_max}",
        latencies.len(),
        secs(median) * 1e3,
        secs(p90) * 1e3,
        secs(worst) * 1e3
    );
    assert!(median < Duration::from_millis(100), "median {median:?}");
    assert!(worst < Duration::from_secs(1), "worst {worst:?}");
    assert!(fds_max <= 400, "{fds_max} files open");
    let m = c.metrics().await;
    let evicted: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("linkwatch_collector_connections_evicted_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(evicted > 0, "the cap was never reached:\n{m}");
    assert!(!c.log().contains("out of file descriptors"), "{}", c.log());
    // After the flood: connections and memory come back down.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = c.metrics().await;
        let open: i64 = m
            .lines()
            .find_map(|l| l.strip_prefix("linkwatch_collector_connections "))
            .and_then(|v| v.parse().ok())
            .unwrap();
        if open <= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "{open} connections still open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = c.rss_mib();
    eprintln!(
        "collector RSS: {base_rss:.1} MiB before the flood, {after:.1} MiB after, peak {:.1} MiB",
        c.peak_mib()
    );
    assert!(after < base_rss + 32.0, "{base_rss:.1} -> {after:.1} MiB");
}

// ---------------------------------------------------------------------------
// 2. Declared lengths

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_length_over_the_limit_is_413_at_once() {
    let c = Collector::start("", "").await;
    let token = c.add_device("gw-len").await;
    for auth in [format!("authorization: Bearer {token}\r\n"), String::new()] {
        let mut s = TcpStream::connect(c.addr).await.unwrap();
        s.write_all(
            format!(
                "POST /api/v1/ingest HTTP/1.1\r\nhost: 127.0.0.1\r\n{auth}\
                 content-type: application/json\r\ncontent-length: 99999999999\r\n\r\n{{\"v\":1,"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let t0 = Instant::now();
        let head = read_head(&mut s, Duration::from_secs(2)).await.unwrap();
        assert!(head.starts_with("HTTP/1.1 413"), "{head}");
        assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
        // Nothing more is read: the connection is closed.
        assert!(closed_within(s, Duration::from_secs(5)).await.is_some());
    }
    // The device still uploads.
    let a = post(
        &client(),
        &c.url("/api/v1/ingest"),
        &token,
        batch("gw-len", 1..=2).into_bytes(),
        false,
    )
    .await;
    assert_eq!((a.status, a.json["acked"].as_u64()), (200, Some(2)));
}

// ---------------------------------------------------------------------------
// 3. Gzip bombs

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gzip_bomb_in_a_record_body_is_400_and_memory_stays_bounded() {
    let _heavy = HEAVY.lock().await;
    let c = Collector::start("", "").await;
    let names = ["gw-b1", "gw-b2", "gw-b3"];
    let mut tokens = Vec::new();
    for n in names {
        tokens.push(c.add_device(n).await);
    }
    // 15 MiB of small numbers inside one record body: about 15 KiB gzip'd,
    // under the 16 MiB decompressed limit, so it reaches the decoder, and a
    // body serde buffers whole before reading its `type` (as the old decoder
    // did: 550 MB for 32 MiB of it).
    let bomb = |device: &str| {
        let pad = "0,".repeat(15 << 19);
        gzip(
            format!(
                r#"{{"v":1,"device":"{device}","records":[{{"seq":1,"at":{},"mono_ms":1,"boot_id":"b","body":{{"type":"failover","cause":"x","reason":[{pad}0]}}}}]}}"#,
                now_ms()
            )
            .as_bytes(),
        )
    };
    let bodies: Vec<Vec<u8>> = names.iter().map(|n| bomb(n)).collect();
    assert!(bodies[0].len() < 64 * 1024, "{}", bodies[0].len());
    let base = c.rss_mib();
    let http = client();
    let url = c.url("/api/v1/ingest");
    // Six at once (two per device, each device's most), three rounds.
    let mut answers = Vec::new();
    for _ in 0..3 {
        let mut all = Vec::new();
        for (i, t) in tokens.iter().enumerate() {
            for _ in 0..2 {
                let (http, url, t, body) =
                    (http.clone(), url.clone(), t.clone(), bodies[i].clone());
                all.push(tokio::spawn(async move {
                    post(&http, &url, &t, body, true).await
                }));
            }
        }
        for h in all {
            answers.push(h.await.unwrap());
        }
    }
    let peak = c.peak_mib();
    eprintln!(
        "gzip bombs: collector RSS {base:.1} MiB before, peak {peak:.1} MiB, {:.1} MiB after",
        c.rss_mib()
    );
    // Six 15 MiB bodies at once: the old decoder took 550 MB for one. A few
    // times the decompressed size each is the bound, and it is given back.
    assert!(peak - base < 200.0, "peak {peak:.1} MiB from {base:.1} MiB");
    let after = c.rss_mib();
    for a in answers {
        assert_eq!(a.status, 400, "{}", a.json);
        assert_eq!(a.json["field"], "records[0].body", "{}", a.json);
        let e = a.json["error"].as_str().unwrap();
        assert!(e.contains("32768"), "{e}");
    }
    assert!(
        after < base + 32.0,
        "{after:.1} MiB after, {base:.1} MiB before"
    );
    // Over the decompressed limit: 413 without decoding at all.
    let over = gzip(&vec![b' '; 17 << 20]);
    let a = post(&http, &url, &tokens[0], over, true).await;
    assert_eq!(a.status, 413, "{}", a.json);
    assert!(a.json["error"].as_str().unwrap().contains("decompressed"));
    // The devices still upload.
    let a = post(
        &http,
        &url,
        &tokens[0],
        batch("gw-b1", 1..=3).into_bytes(),
        false,
    )
    .await;
    assert_eq!((a.status, a.json["acked"].as_u64()), (200, Some(3)));
}

// ---------------------------------------------------------------------------
// 4. One device's slow uploads

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_devices_slow_uploads_do_not_stop_another_device() {
    let _heavy = HEAVY.lock().await;
    raise_own_file_limit();
    let c = Collector::start("body_rate_window = \"2s\"\nheader_timeout = \"5s\"\n", "").await;
    let attacker = c.add_device("gw-slow").await;
    let other = c.add_device("gw-fine").await;
    // 256 uploads declaring 4,000,000 bytes, then a byte a second.
    let mut slow = Vec::new();
    for _ in 0..256 {
        let mut s = TcpStream::connect(c.addr).await.unwrap();
        s.write_all(
            format!(
                "POST /api/v1/ingest HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {attacker}\r\n\
                 content-type: application/json\r\ncontent-length: 4000000\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let t = Instant::now();
        slow.push(tokio::spawn(async move {
            let (mut r, mut w) = s.into_split();
            let trickle = tokio::spawn(async move {
                for _ in 0..30 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if w.write_all(b" ").await.is_err() {
                        break;
                    }
                }
            });
            let mut buf = Vec::new();
            let mut byte = [0u8; 1];
            let head = tokio::time::timeout(Duration::from_secs(15), async {
                while !buf.ends_with(b"\r\n\r\n") {
                    match r.read(&mut byte).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => buf.push(byte[0]),
                    }
                }
                String::from_utf8_lossy(&buf).into_owned()
            })
            .await
            .unwrap_or_default();
            trickle.abort();
            (head, t.elapsed())
        }));
    }
    // Meanwhile the other device uploads, five times.
    let http = client();
    for k in 0..5u64 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t0 = Instant::now();
        let a = post(
            &http,
            &c.url("/api/v1/ingest"),
            &other,
            batch("gw-fine", k * 2 + 1..=k * 2 + 2).into_bytes(),
            false,
        )
        .await;
        assert_eq!(a.status, 200, "{}", a.json);
        assert_eq!(a.json["acked"].as_u64(), Some(k * 2 + 2));
        assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    }
    let (mut busy, mut cut) = (0, 0);
    for h in slow {
        let (head, took) = h.await.unwrap();
        match status_of(&head) {
            Some(429) => {
                busy += 1;
                assert!(took < Duration::from_secs(2), "429 after {took:?}");
                assert!(head.to_lowercase().contains("retry-after: 5"), "{head}");
            }
            Some(408) => {
                cut += 1;
                // The first rate window (2 s) ends with 2 bytes of 2,048.
                assert!(
                    took >= Duration::from_millis(1800) && took < Duration::from_secs(6),
                    "408 after {took:?}"
                );
            }
            other => panic!("unexpected answer {other:?}: {head:?}"),
        }
    }
    assert_eq!((cut, busy), (2, 254));
}

// ---------------------------------------------------------------------------
// 5. Sequence numbers at the top of the range

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_numbers_at_the_top_are_refused_and_acked_never_reaches_the_maximum() {
    let c = Collector::start("", "").await;
    let token = c.add_device("gw-seq").await;
    let http = client();
    let url = c.url("/api/v1/ingest");
    let one = |seq: &str, end: Option<&str>, mono: &str| {
        let end = end.map(|e| format!(",\"seq_end\":{e}")).unwrap_or_default();
        format!(
            r#"{{"v":1,"device":"gw-seq","records":[{{"seq":{seq}{end},"at":{},"mono_ms":{mono},"boot_id":"b","body":{{"type":"heartbeat","online":true}}}}]}}"#,
            now_ms()
        )
    };
    let max = i64::MAX.to_string(); // 2^63 - 1
    let top = (i64::MAX - 1).to_string(); // 2^63 - 2
    for (body, field) in [
        // The attack: a record up to 2^63 - 1 set acked to it for good.
        (one("1", Some(&max), "1"), "records[0].seq_end"),
        (one(&max, None, "1"), "records[0].seq"),
        (one("1", None, "9223372036854775808"), "records[0].mono_ms"),
        (one("1", Some(&top), "1"), "records[0].seq_end"),
        (one("18446744073709551615", None, "1"), "records[0].seq"),
    ] {
        let a = post(&http, &url, &token, body.into_bytes(), false).await;
        assert_eq!(a.status, 400, "{}", a.json);
        assert_eq!(a.json["field"], field, "{}", a.json);
    }
    // Nothing moved.
    let a = post(
        &http,
        &url,
        &token,
        batch("gw-seq", 1..=3).into_bytes(),
        false,
    )
    .await;
    assert_eq!((a.status, a.json["acked"].as_u64()), (200, Some(3)));
    // A record at the very top is stored (a gap: acked stays), and nothing
    // overflows afterwards.
    let a = post(
        &http,
        &url,
        &token,
        one(&top, None, "1").into_bytes(),
        false,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.json);
    assert_eq!(
        (a.json["acked"].as_u64(), a.json["stored"].as_u64()),
        (Some(3), Some(1))
    );
    let a = post(
        &http,
        &url,
        &token,
        batch("gw-seq", 4..=6).into_bytes(),
        false,
    )
    .await;
    assert_eq!((a.status, a.json["acked"].as_u64()), (200, Some(6)));
}

// ---------------------------------------------------------------------------
// 6. Files

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_private_under_umask_000_and_open_ones_are_refused() {
    // The CLI, under umask 000: the database and the token file are 0600.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let cfg = dir.path().join("collector.toml");
    std::fs::write(
        &cfg,
        format!(
            "[collector]\nlisten = \"127.0.0.1:0\"\ndatabase = \"sqlite://{}\"\nlog_format = \"text\"\n",
            db.display()
        ),
    )
    .unwrap();
    let token_file = dir.path().join("gw1.token");
    let (code, out, err) = run(
        &[
            "device",
            "add",
            "gw1",
            "--output",
            token_file.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ],
        "umask 000",
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.is_empty(), "the token goes to the file only: {out}");
    assert!(err.contains(token_file.to_str().unwrap()), "{err}");
    assert_eq!(mode(&token_file), 0o600);
    assert_eq!(mode(&db), 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(
        token.starts_with("lw1_") && token.ends_with('\n'),
        "{token}"
    );
    // An existing file is never overwritten, and no device is made then.
    let (code, _, err) = run(
        &[
            "device",
            "add",
            "gw2",
            "--output",
            token_file.to_str().unwrap(),
            "--config",
            cfg.to_str().unwrap(),
        ],
        "umask 000",
    )
    .await;
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), token);
    let (_, list, _) = run(&["device", "list", "--config", cfg.to_str().unwrap()], "").await;
    assert!(list.contains("gw1") && !list.contains("gw2"), "{list}");

    // The collector, under umask 000, with an older world-readable database:
    // made private; its WAL and SHM files are 0600 while it runs.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (_child, addr, log) = spawn_collector(&cfg, "umask 000").await;
    let a = post(
        &client(),
        &format!("http://{addr}/api/v1/ingest"),
        token.trim(),
        batch("gw1", 1..=2).into_bytes(),
        false,
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.json);
    for f in ["c.db", "c.db-wal", "c.db-shm"] {
        assert_eq!(mode(&dir.path().join(f)), 0o600, "{f}");
    }
    assert!(
        log.lock().unwrap().contains("made it private"),
        "{}",
        log.lock().unwrap()
    );

    // A TLS key others can read: the collector refuses to start, naming the
    // file and the fix.
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert = dir.path().join("tls.crt");
    let key = dir.path().join("tls.key");
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let tls_cfg = dir.path().join("tls.toml");
    std::fs::write(
        &tls_cfg,
        format!(
            "[collector]\nlisten = \"127.0.0.1:0\"\ndatabase = \"sqlite://{}\"\ntls_cert = {:?}\ntls_key = {:?}\n",
            dir.path().join("tls.db").display(),
            cert,
            key
        ),
    )
    .unwrap();
    let (code, _, err) = run(&["collector", "--config", tls_cfg.to_str().unwrap()], "").await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("collector.tls_key"), "{err}");
    assert!(
        err.contains(&format!("chmod 600 {}", key.display())),
        "{err}"
    );

    // The agent's spool under umask 000: 0600, and its side files too.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let spool_path = dir.path().join("spool").join("spool.db");
    let spool = linkwatch::agent::spool::Spool::open(&spool_path, 1 << 20)
        .await
        .unwrap();
    nix::sys::stat::umask(old);
    spool
        .append(
            now_ms(),
            1,
            "b",
            &linkwatch::wire::v1::Body::Heartbeat {
                online: true,
                count: 1,
            },
        )
        .await
        .unwrap();
    for f in ["spool.db", "spool.db-wal", "spool.db-shm"] {
        assert_eq!(mode(&spool_path.with_file_name(f)), 0o600, "{f}");
    }
}
