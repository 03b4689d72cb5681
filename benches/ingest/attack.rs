//! `attack`: ingest at 100,000 devices' rate (one-minute batches, 1,667
//! req/s) against the real collector binary (a child process, SQLite, the
//! default limits), once on a quiet collector and once while an attacker on
//! another address holds 5,000 idle connections (each reopened as soon as
//! the collector closes it) and 200 slow bodies with one device's token (a
//! byte every 5 s; each started again a second after its answer, as the
//! issue's attack did with 256 of them). The attacker is a process of its
//! own (this benchmark run again with `LW_ATTACKER` set), so that it does
//! not slow the load generator down. Prints legitimate p50/p99 and
//! throughput side by side (target: within 20 %), and the collector's RSS
//! at the end of each run and once the attacker has left. A third run
//! holds the attacker to a quarter of one core with a CPU cgroup, the way an
//! attacker on another machine looks to the collector (the collector still
//! does all its own work for every attacking connection); each run prints
//! the CPU the collector and the attacker used, to tell the collector's
//! own cost from the machine's. The three kinds of run repeat for
//! [`ROUNDS`] rounds in a turning order; the verdict compares medians, and
//! every run and each round's ratio are printed.

use super::{Fleet, StepResult, background_cpu, cores, ms, run_step, thousands};
use linkwatch::collector::devices::{new_token, token_hash};
use linkwatch::collector::store;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");
/// 100,000 devices at one batch a minute.
const RATE: f64 = 100_000.0 / 60.0;
const RUN: Duration = Duration::from_secs(20);
/// Quiet, attacked and confined runs, each this many times.
const ROUNDS: usize = 3;
const IDLE_CONNECTIONS: usize = 5_000;
const SLOW_BODIES: usize = 200;
/// The third run holds the attacker to this share of one core.
const CONFINED_PERCENT: u32 = 25;
/// The attacker's address (the fleet comes from 127.0.0.1).
const ATTACKER: [u8; 4] = [127, 0, 0, 3];

/// The collector binary on 127.0.0.1:0 with the default limits.
pub(super) struct Child {
    child: tokio::process::Child,
    pub(super) addr: SocketAddr,
    pid: u32,
}

impl Child {
    async fn start(dir: &Path, url: &str) -> Child {
        Child::start_bin(BIN, dir, url).await
    }

    /// The collector binary `bin` (this revision's, or an earlier one's for
    /// `versus`) on 127.0.0.1:0 with the default limits.
    pub(super) async fn start_bin(bin: &str, dir: &Path, url: &str) -> Child {
        let config = collector_config(dir, url, "info");
        let mut child = tokio::process::Command::new(bin)
            .args([
                "collector",
                "--config",
                config.to_str().expect("utf-8 path"),
            ])
            .env_remove("RUST_LOG")
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the collector");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("collector listening")
                    && let Some(a) = line.split("addr=").nth(1)
                {
                    return a
                        .split_whitespace()
                        .next()
                        .and_then(|a| a.parse().ok())
                        .expect("an address");
                }
            }
            panic!("the collector exited before listening");
        })
        .await
        .expect("the collector listens within 30 s");
        // Drain its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pid = child.id().expect("a pid");
        Child { child, addr, pid }
    }

    /// VmRSS and VmHWM, MiB.
    fn memory(&self) -> (f64, f64) {
        let text =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS"), field("VmHWM"))
    }

    /// CPU seconds (user and system) the collector has used so far.
    pub(super) fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid)
    }

    async fn metric(&self, name: &str) -> f64 {
        let text = reqwest::get(format!("http://{}/metrics", self.addr))
            .await
            .ok()
            .map(|r| r.text());
        let text = match text {
            Some(t) => t.await.unwrap_or_default(),
            None => String::new(),
        };
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    }

    pub(super) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// A collector config in `dir` on 127.0.0.1:0 and database `url`, logging
/// plain text at `level` (the rest at defaults).
pub(super) fn collector_config(dir: &Path, url: &str, level: &str) -> std::path::PathBuf {
    let config = dir.join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nlisten = \"127.0.0.1:0\"\ndatabase = \"{url}\"\n\
             log_format = \"text\"\nlog_level = \"{level}\"\n"
        ),
    )
    .expect("write the collector config");
    config
}

/// CPU seconds (user and system) process `pid` has used so far, or 0 when
/// it is gone.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) closed by ')'.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after ')',
    // in clock ticks of USER_HZ, which Linux keeps at 100 for user space.
    (ticks(11) + ticks(12)) / 100.0
}

/// Where the attacker may run.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Attacker {
    None,
    /// Free to use the whole machine, like the load generator and the
    /// collector.
    Free,
    /// Held to this share of one core by a CPU cgroup: how an attacker on
    /// another machine looks to the collector, whose own work for every
    /// attacking connection (accepting, timing out, refusing) still counts.
    Confined(u32),
}

/// A CPU cgroup holding `pid` to `percent` of one core: cgroup v1's `cpu`
/// controller or cgroup v2's `cpu.max`. None when neither can be written
/// (not root, no controller). The group is removed by [`unconfine`].
fn confine(pid: u32, percent: u32) -> Option<std::path::PathBuf> {
    let period = 100_000u32;
    let quota = period / 100 * percent;
    let name = format!("linkwatch-bench-attacker-{pid}");
    let v1 = Path::new("/sys/fs/cgroup/cpu");
    if v1.join("cpu.cfs_quota_us").exists() {
        return cgroup(
            &v1.join(name),
            &[
                ("cpu.cfs_period_us", period.to_string()),
                ("cpu.cfs_quota_us", quota.to_string()),
                ("cgroup.procs", pid.to_string()),
            ],
        );
    }
    let v2 = Path::new("/sys/fs/cgroup");
    if std::fs::read_to_string(v2.join("cgroup.subtree_control"))
        .is_ok_and(|c| c.split_whitespace().any(|c| c == "cpu"))
    {
        return cgroup(
            &v2.join(name),
            &[
                ("cpu.max", format!("{quota} {period}")),
                ("cgroup.procs", pid.to_string()),
            ],
        );
    }
    None
}

/// Makes the cgroup `dir` and writes `files` into it in order; None (and
/// the group removed) when any step fails.
fn cgroup(dir: &Path, files: &[(&str, String)]) -> Option<std::path::PathBuf> {
    std::fs::create_dir(dir).ok()?;
    if files
        .iter()
        .all(|(f, v)| std::fs::write(dir.join(f), v).is_ok())
    {
        Some(dir.to_path_buf())
    } else {
        unconfine(dir);
        None
    }
}

/// Removes a cgroup made by [`confine`] once its process has gone.
fn unconfine(dir: &Path) {
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A connection from the attacker's address.
async fn connect(addr: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(SocketAddr::from((ATTACKER, 0)))?;
    s.connect(addr).await
}

/// The attacker process: `LW_ATTACKER` = "ADDR TOKEN". Prints what it did
/// once a second, until killed.
pub(super) fn attacker_process(spec: &str) {
    let (addr, token) = spec.split_once(' ').expect("LW_ATTACKER=ADDR TOKEN");
    let addr: SocketAddr = addr.parse().expect("an address");
    let token = token.to_string();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let attack = Arc::new(Attack::default());
        for _ in 0..IDLE_CONNECTIONS {
            tokio::spawn(hold_idle(addr, attack.clone()));
        }
        for _ in 0..SLOW_BODIES {
            tokio::spawn(slow_body(addr, token.clone(), attack.clone()));
        }
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            println!("{}", attack.summary());
        }
    });
}

/// What the attacker did.
#[derive(Default)]
struct Attack {
    idle_opened: AtomicU64,
    slow_started: AtomicU64,
    slow_answers: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

/// Hold an idle connection, opening another whenever it is closed (until
/// the task is aborted).
async fn hold_idle(addr: SocketAddr, attack: Arc<Attack>) {
    let mut buf = [0u8; 64];
    loop {
        let Ok(mut s) = connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        attack.idle_opened.fetch_add(1, Ordering::Relaxed);
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    }
}

/// Upload a body a byte every 5 s, starting again a second after each
/// answer (until the task is aborted).
async fn slow_body(addr: SocketAddr, token: String, attack: Arc<Attack>) {
    loop {
        let Ok(s) = connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        attack.slow_started.fetch_add(1, Ordering::Relaxed);
        let (mut r, mut w) = s.into_split();
        let head = format!(
            "POST /api/v1/ingest HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer {token}\r\n\
             content-type: application/json\r\ncontent-length: 4000000\r\n\r\n{{"
        );
        if w.write_all(head.as_bytes()).await.is_err() {
            continue;
        }
        let trickle = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                if w.write_all(b" ").await.is_err() {
                    break;
                }
            }
        });
        let mut answer = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = r.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
        trickle.abort();
        let status = String::from_utf8_lossy(&answer)
            .get(9..12)
            .unwrap_or("closed")
            .to_string();
        *attack
            .slow_answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_default() += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl Attack {
    fn summary(&self) -> String {
        let answers = self
            .slow_answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| format!("{v} x {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "attacker: {} idle connections opened in all, {} slow uploads started (answers: {answers})",
            thousands(self.idle_opened.load(Ordering::Relaxed)),
            thousands(self.slow_started.load(Ordering::Relaxed)),
        )
    }
}

struct Run {
    step: StepResult,
    rss: f64,
    peak: f64,
    connections: f64,
    attack: Option<String>,
    /// RSS once the attacker's connections are gone, MiB.
    rss_after: Option<f64>,
    /// CPU the collector used during the measured step, % of one core.
    collector_cpu: f64,
    /// CPU the attacker used during the measured step, % of one core.
    attacker_cpu: Option<f64>,
    /// Why the attacker was not confined, when that was asked and failed.
    unconfined: Option<&'static str>,
}

async fn one_run(who: Attacker) -> Run {
    let attacked = who != Attacker::None;
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("collector.db").display());
    let (mut fleet, attacker_token) = {
        let store = store::open(&url).await.expect("open the store");
        let fleet = Fleet::register(store.clone(), super::DEVICES).await;
        let token = new_token();
        store
            .add_device("attacker", None, &token_hash(&token), super::now_ms())
            .await
            .expect("add the attacker's device");
        (fleet, token)
    };
    let collector = Child::start(dir.path(), &url).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(20))
        .timeout(Duration::from_secs(30))
        .build()
        .expect("HTTP client");
    let ingest = reqwest::Url::parse(&format!("http://{}/api/v1/ingest", collector.addr))
        .expect("ingest URL");
    let mut rng = StdRng::seed_from_u64(11);
    let warm = tokio::task::block_in_place(|| fleet.requests(400, &mut rng));
    run_step(&client, &ingest, warm, 200.0).await;

    // The attacker, a process of its own: its last report line.
    let mut attacker: Option<tokio::process::Child> = None;
    let mut cgroup = None;
    let mut unconfined = None;
    let report = Arc::new(std::sync::Mutex::new(String::new()));
    if attacked {
        let mut child = tokio::process::Command::new(std::env::current_exe().expect("this bench"))
            .env(
                "LW_ATTACKER",
                format!("{} {attacker_token}", collector.addr),
            )
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the attacker");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let last = report.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                *last.lock().unwrap_or_else(|p| p.into_inner()) = line;
            }
        });
        if let Attacker::Confined(percent) = who {
            let pid = child.id().expect("the attacker's pid");
            match confine(pid, percent) {
                Some(dir) => cgroup = Some(dir),
                None => {
                    unconfined = Some("no writable CPU cgroup (needs root and a cpu controller)")
                }
            }
        }
        attacker = Some(child);
        // Until the attacker holds its connections.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while collector.metric("linkwatch_collector_connections").await
            < IDLE_CONNECTIONS as f64 * 0.95
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let count = (RATE * RUN.as_secs_f64()).round() as usize;
    let reqs = tokio::task::block_in_place(|| fleet.requests(count, &mut rng));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let connections_during = collector.metric("linkwatch_collector_connections").await;
    let attacker_pid = attacker.as_ref().and_then(tokio::process::Child::id);
    let (cpu0, acpu0, t0) = (
        collector.cpu_seconds(),
        attacker_pid.map(cpu_seconds),
        std::time::Instant::now(),
    );
    let step = run_step(&client, &ingest, reqs, RATE).await;
    let took = t0.elapsed().as_secs_f64().max(0.001);
    let collector_cpu = (collector.cpu_seconds() - cpu0) / took * 100.0;
    let attacker_cpu = attacker_pid
        .zip(acpu0)
        .map(|(pid, c0)| (cpu_seconds(pid) - c0) / took * 100.0);
    let (rss, peak) = collector.memory();
    let summary = attacked.then(|| report.lock().unwrap_or_else(|p| p.into_inner()).clone());
    if let Some(mut child) = attacker {
        let _ = child.kill().await;
        let _ = child.wait().await;
    }
    if let Some(dir) = &cgroup {
        unconfine(dir);
    }
    let rss_after = if attacked {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while collector.metric("linkwatch_collector_connections").await > 50.0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The collector gives freed memory back within its trim interval.
        tokio::time::sleep(Duration::from_secs(16)).await;
        Some(collector.memory().0)
    } else {
        None
    };
    collector.stop().await;
    Run {
        step,
        rss,
        peak,
        connections: connections_during,
        attack: summary,
        rss_after,
        collector_cpu,
        attacker_cpu,
        unconfined,
    }
}

fn print_run(label: &str, r: &Run) {
    let s = &r.step;
    let errors: Vec<String> = s.errors.iter().map(|(k, v)| format!("{v} {k}")).collect();
    println!(
        "  {label:<12} {:.0} req/s offered, ok {}/{} ({:.0}/s), p50 {:.1} ms, p99 {:.1} ms, max {:.0} ms, \
         start lag p99 {:.1} ms{}; collector: {:.0} connections open, RSS {:.1} MiB at the end \
         (peak {:.1} MiB) -> {}",
        s.target,
        s.ok,
        s.sent,
        s.ok_rate,
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        ms(s.lag_p99),
        if errors.is_empty() {
            String::new()
        } else {
            format!(", errors: {}", errors.join(", "))
        },
        r.connections,
        r.rss,
        r.peak,
        s.fail.as_deref().unwrap_or("ok")
    );
    match r.attacker_cpu {
        Some(a) => println!(
            "            CPU during the run: collector {:.0}% of a core, attacker {a:.0}%",
            r.collector_cpu
        ),
        None => println!(
            "            CPU during the run: collector {:.0}% of a core",
            r.collector_cpu
        ),
    }
    if let Some(why) = r.unconfined {
        println!("            the attacker could NOT be confined: {why}; it ran free");
    }
    if let Some(a) = &r.attack {
        println!("            {a}");
    }
    if let Some(m) = r.rss_after {
        println!("            collector RSS once the attacker's connections are gone: {m:.1} MiB");
    }
}

pub(super) async fn bench_attack() {
    println!(
        "== ingest under attack: {RATE:.0} req/s of one-minute batches (100,000 devices), {} s a run, \
         against the release collector binary (SQLite, default limits: max_connections 10,000, \
         header_timeout 10 s, idle_timeout 30 s, max_inflight 256, 2 per device, min_body_rate \
         1024 B/s over 10 s)",
        RUN.as_secs()
    );
    println!(
        "   attacker on 127.0.0.3, a process of its own: {IDLE_CONNECTIONS} idle connections \
         (reopened when closed) and {SLOW_BODIES} slow bodies with one device's token (a byte \
         every 5 s, started again a second after each answer); load generator, attacker and \
         collector share the machine's {} cores",
        cores()
    );
    if let Some(c) = background_cpu().await {
        println!(
            "   before starting, other processes use {:.0}% of {}00% CPU{}",
            c.others(),
            cores(),
            if c.others() > 20.0 * cores() as f64 {
                " -- the machine is busy with other work: the figures below are lower than on a quiet machine"
            } else {
                ""
            }
        );
    }
    {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        if let Ok((_, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
    // Rounds in a turning order, so that no kind of run always comes first
    // (the first run after a start met a slower disk cache more than once),
    // and medians, so that one stall on this small machine does not decide
    // the verdict; every run is printed.
    let kinds = [
        Attacker::None,
        Attacker::Free,
        Attacker::Confined(CONFINED_PERCENT),
    ];
    let mut runs: Vec<(Attacker, Run)> = Vec::new();
    for round in 0..ROUNDS {
        for k in 0..kinds.len() {
            let who = kinds[(round + k) % kinds.len()];
            let r = one_run(who).await;
            print_run(&format!("{} #{}", label(who), round + 1), &r);
            runs.push((who, r));
        }
    }
    let of = |who: Attacker| -> Vec<&Run> {
        runs.iter()
            .filter(|(w, _)| *w == who)
            .map(|(_, r)| r)
            .collect()
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let quiet = of(Attacker::None);
    let quiet_p99 = median(quiet.iter().map(|r| ms(r.step.p99)).collect());
    let quiet_rate = median(quiet.iter().map(|r| r.step.ok_rate).collect());
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };
    for who in [Attacker::Free, Attacker::Confined(CONFINED_PERCENT)] {
        let these = of(who);
        let p99s: Vec<f64> = these.iter().map(|r| ms(r.step.p99)).collect();
        let p99 = median(p99s.clone());
        let rate = median(these.iter().map(|r| r.step.ok_rate).collect());
        // Each round's attacked p99 against the same round's quiet one.
        let per_round: Vec<String> = p99s
            .iter()
            .zip(&quiet)
            .map(|(a, q)| format!("{:.2}", a / ms(q.step.p99).max(0.001)))
            .collect();
        let ratio = p99 / quiet_p99.max(0.001);
        let rate_ratio = rate / quiet_rate.max(0.001);
        let worst = these.iter().map(|r| ms(r.step.p99)).fold(0.0, f64::max);
        println!(
            "attack ({}): median p99 {quiet_p99:.1} ms quiet vs {p99:.1} ms attacked over {ROUNDS} rounds \
             (ratio {ratio:.2}: within 20 % {}; round by round {}; worst attacked p99 {worst:.1} ms: \
             < 100 ms {}), median throughput {quiet_rate:.0} vs {rate:.0} req/s ok (ratio {rate_ratio:.2}: \
             within 20 % {})",
            label(who),
            verdict(ratio <= 1.2),
            per_round.join(", "),
            verdict(worst < 100.0),
            verdict(rate_ratio >= 0.8),
        );
    }
}

fn label(who: Attacker) -> &'static str {
    match who {
        Attacker::None => "quiet",
        Attacker::Free => "attacked",
        Attacker::Confined(_) => "confined",
    }
}
