//! Real receivers on loopback for the alert tests, and a collector running
//! its alert engine: a webhook receiver on 127.0.0.1 that accepts, fails
//! or holds requests ([`receiver`]), the SMTP server of
//! `tests/fixtures/smtp_server.py` (aiosmtpd, [`Smtp`]; [`python`] says
//! whether it can run), an in-process collector with an `[alerts]` section
//! ([`Collector`]), and waiting on a condition with a deadline
//! ([`wait_for`]).

use super::db::TestDb;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use linkwatch::collector::server;
use linkwatch::collector::store::Store;
use linkwatch::config::alerts::AlertsSection;
use linkwatch::config::collector::CollectorConfig;
use serde_json::Value;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Poll `cond` every 50 ms until it holds or `secs` pass (then panic).
pub async fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------
// A webhook receiver on loopback

/// How the receiver answers the next request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// 200.
    Accept,
    /// Answer 500 this many times, then accept.
    Fail(u32),
    /// Take the request and never answer.
    Hang,
}

#[derive(Default)]
pub struct Hooked {
    /// Every request's JSON body, in arrival order.
    pub got: Vec<Value>,
    pub mode: Option<Mode>,
}

pub type Hook = Arc<Mutex<Hooked>>;

async fn hook(State(h): State<Hook>, Json(body): Json<Value>) -> StatusCode {
    let mode = {
        let mut h = h.lock().unwrap();
        h.got.push(body);
        let mode = h.mode.unwrap_or(Mode::Accept);
        if let Mode::Fail(n) = mode {
            h.mode = Some(if n > 1 {
                Mode::Fail(n - 1)
            } else {
                Mode::Accept
            });
        }
        mode
    };
    match mode {
        Mode::Accept => StatusCode::OK,
        Mode::Fail(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Mode::Hang => {
            std::future::pending::<()>().await;
            StatusCode::OK
        }
    }
}

/// A webhook receiver on 127.0.0.1 answering as `mode`: its URL and what
/// it got.
pub async fn receiver(mode: Mode) -> (String, Hook) {
    let h: Hook = Arc::new(Mutex::new(Hooked {
        got: Vec::new(),
        mode: Some(mode),
    }));
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(h.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, h)
}

/// Every JSON body the receiver got, in order.
pub fn got(h: &Hook) -> Vec<Value> {
    h.lock().unwrap().got.clone()
}

/// The messages of `event` about `device`.
pub fn events<'a>(all: &'a [Value], event: &str, device: &str) -> Vec<&'a Value> {
    all.iter()
        .filter(|v| v["event"] == event && v["alert"]["key"]["subject"]["device"] == device)
        .collect()
}

/// (event, device) of every message the receiver got, in order.
pub fn seen(h: &Hook) -> Vec<(String, String)> {
    got(h)
        .iter()
        .map(|v| {
            (
                v["event"].as_str().unwrap_or("?").to_string(),
                v["alert"]["key"]["subject"]["device"]
                    .as_str()
                    .unwrap_or("?")
                    .to_string(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------
// A real SMTP server on loopback (`tests/fixtures/smtp_server.py`)

/// The Python interpreter with aiosmtpd (`LINKWATCH_TEST_PYTHON`, else
/// `python3`), or why not.
pub fn python() -> Result<String, String> {
    let py = std::env::var("LINKWATCH_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&py)
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(py)
    } else {
        Err(format!(
            "`{py}` cannot import aiosmtpd (tests/run.sh installs it into a venv and sets LINKWATCH_TEST_PYTHON)"
        ))
    }
}

/// A running `smtp_server.py`: it printed `READY port`, then prints one
/// JSON line a mail.
pub struct Smtp {
    child: Child,
    pub port: u16,
    pub lines: mpsc::Receiver<String>,
}

impl Smtp {
    /// The script's path.
    pub fn script() -> &'static str {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smtp_server.py")
    }

    /// Start the server with `args` (see the script's help).
    pub fn start(py: &str, args: &[&str]) -> Smtp {
        let mut cmd = Command::new(py);
        cmd.arg(Self::script()).args(args);
        Self::spawn(cmd)
    }

    /// Run `cmd` (the script's command line, perhaps wrapped in
    /// `ip netns exec`); returns once it said READY (20 s at most).
    pub fn spawn(mut cmd: Command) -> Smtp {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the SMTP server");
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let ready = lines
            .recv_timeout(Duration::from_secs(20))
            .expect("the SMTP server says READY within 20 s");
        let port = ready
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {ready:?}"));
        Smtp { child, port, lines }
    }

    /// A plain server when aiosmtpd is at hand; else says why (`then`
    /// names what the test does instead) and gives None.
    pub fn try_start(then: &str) -> Option<Smtp> {
        match python() {
            Ok(py) => Some(Smtp::start(&py, &[])),
            Err(why) => {
                eprintln!("skipping mail: {why}: {then}");
                None
            }
        }
    }

    /// The next message received, waiting at most `wait`.
    pub fn next(&self, wait: Duration) -> Option<Value> {
        self.lines
            .recv_timeout(wait)
            .ok()
            .map(|l| serde_json::from_str(&l).unwrap())
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// A collector with its alert engine, in-process on 127.0.0.1:0

/// A collector serving `store` on an ephemeral loopback port, with the
/// `[alerts]` section it was started with; also written, with the
/// database, to `config` (for the command line).
pub struct Collector {
    pub base: String,
    pub config: PathBuf,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), server::CollectorError>>,
}

impl Collector {
    /// `alerts`: TOML text with the `[alerts]` table.
    pub async fn start(db: &TestDb, store: Arc<dyn Store>, alerts: &str) -> Collector {
        let mut cfg = CollectorConfig::embedded();
        cfg.collector.database = db.url().to_string();
        #[derive(serde::Deserialize)]
        struct File {
            alerts: AlertsSection,
        }
        cfg.alerts = Some(toml::from_str::<File>(alerts).unwrap().alerts);
        let config = db.dir().join("collector.toml");
        std::fs::write(
            &config,
            format!("[collector]\ndatabase = {:?}\n\n{alerts}", db.url()),
        )
        .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server::serve_on(listener, store, &cfg, async {
                let _ = rx.await;
            })
            .await
        });
        Collector {
            base,
            config,
            stop,
            task,
        }
    }

    /// Stop it and wait (at most 30 s) for it to end cleanly.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(30), self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

/// A webhook receiver on `listener` (bound by the caller, for example in
/// another network namespace), answering as `mode`: its URL and what it
/// got.
pub async fn receiver_on(listener: std::net::TcpListener, mode: Mode) -> (String, Hook) {
    listener.set_nonblocking(true).unwrap();
    let l = tokio::net::TcpListener::from_std(listener).unwrap();
    let h: Hook = Arc::new(Mutex::new(Hooked {
        got: Vec::new(),
        mode: Some(mode),
    }));
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(h.clone());
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (url, h)
}

// ---------------------------------------------------------------------------
// The collector binary

/// `linkwatch collector` as a child process: where it listens, and its log.
pub struct BinCollector {
    pub child: tokio::process::Child,
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl BinCollector {
    /// `linkwatch collector --config config` on this machine.
    pub async fn start(config: &std::path::Path) -> BinCollector {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_linkwatch"));
        cmd.arg("collector").arg("--config").arg(config);
        Self::spawn(cmd).await
    }

    /// Run `cmd` (a `linkwatch collector` command line, perhaps wrapped in
    /// `ip netns exec`); returns once it says where it listens (60 s at
    /// most; its config needs `log_format = "text"`).
    pub async fn spawn(mut cmd: tokio::process::Command) -> BinCollector {
        use tokio::io::AsyncBufReadExt;
        let mut child = cmd
            .env_remove("LINKWATCH_COLLECTOR_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = tokio::sync::oneshot::channel();
        {
            let log = log.clone();
            tokio::spawn(async move {
                let mut tx = Some(tx);
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.contains("collector listening")
                        && let Some(a) = line.split("addr=").nth(1)
                        && let Some(tx) = tx.take()
                    {
                        let _ = tx.send(a.split_whitespace().next().unwrap().to_string());
                    }
                    let mut l = log.lock().unwrap();
                    l.push_str(&line);
                    l.push('\n');
                }
            });
        }
        let addr = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("the collector listens within 60 s")
            .unwrap_or_else(|_| panic!("the collector exited before listening"));
        BinCollector {
            child,
            base: format!("http://{addr}"),
            log,
        }
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// SIGKILL, and reap it.
    pub async fn kill(mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }
}
