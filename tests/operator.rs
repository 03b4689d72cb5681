//! The operator's first day, through the real binary and real HTTP on
//! loopback (no root needed): a missing token file stops the agent and fails
//! `validate`; SIGHUP reads a replaced token file; a token issued for another
//! name gets the `agent.device_name` hint; `device rotate` refuses the old
//! token at once; `office list`; no database is made by accident; `status`
//! shows the spool and uploads in local time; `validate --collector`; the
//! dashboard reads the fleet's states at start.

use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn wait_until(deadline: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// `linkwatch ARGS` in `dir` with extra environment: (exit code, stdout, stderr).
fn lw(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("LINKWATCH_CONFIG")
        .env_remove("LINKWATCH_COLLECTOR_CONFIG")
        .envs(env.iter().copied())
        .output()
        .expect("run linkwatch");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// A real collector on loopback with its own SQLite database.
struct Collector {
    dir: tempfile::TempDir,
    config: PathBuf,
    addr: SocketAddr,
    child: Child,
}

impl Collector {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let addr = free_addr();
        let config = dir.path().join("collector.toml");
        std::fs::write(
            &config,
            format!(
                "[collector]\nlisten = \"{addr}\"\ndatabase = \"sqlite://{}\"\nlog_format = \"text\"\n",
                dir.path().join("collector.db").display()
            ),
        )
        .unwrap();
        let child = Self::spawn(dir.path(), &config);
        wait_until(Duration::from_secs(15), "collector listening", || {
            TcpStream::connect(addr).is_ok()
        });
        Collector {
            dir,
            config,
            addr,
            child,
        }
    }

    /// The collector process on `config`, its log appended to `collector.log`.
    fn spawn(dir: &Path, config: &Path) -> Child {
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(dir.join("collector.log"))
            .unwrap();
        Command::new(BIN)
            .args(["collector", "--config", config.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Stop the collector (SIGTERM, waited for) and start it again.
    fn restart(&mut self) {
        signal(&self.child, nix::sys::signal::Signal::SIGTERM);
        self.child.wait().unwrap();
        self.child = Self::spawn(self.dir.path(), &self.config);
        wait_until(Duration::from_secs(15), "collector listening again", || {
            TcpStream::connect(self.addr).is_ok()
        });
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("collector.log")).unwrap_or_default()
    }

    /// `linkwatch ARGS --config COLLECTOR_CONFIG`.
    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let mut a = args.to_vec();
        a.extend(["--config", self.config.to_str().unwrap()]);
        lw(self.dir.path(), &a, &[])
    }

    /// A new device's token, written to `file` (mode 0600).
    fn add_device(&self, name: &str, file: &Path) {
        let (code, _, err) = self.cli(&["device", "add", name, "--output", file.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
    }

    /// The HTTP status of an ingest request with `token` (an empty batch).
    fn ingest_status(&self, token: &str, device: &str) -> u16 {
        let body = format!("{{\"v\":1,\"device\":\"{device}\",\"records\":[]}}");
        let mut s = TcpStream::connect(self.addr).unwrap();
        write!(
            s,
            "POST /api/v1/ingest HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        s.read_to_string(&mut resp).unwrap();
        resp.split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {resp:?}"))
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The real agent uploading to `collector_url`, no links, observe mode.
struct Agent {
    dir: tempfile::TempDir,
    config: PathBuf,
    token: PathBuf,
    child: Option<Child>,
}

impl Agent {
    /// Write the config (the token file is `token` in the agent's directory,
    /// created by the caller); `extra` goes into `[agent]`.
    fn prepare(collector: SocketAddr, extra: &str, backoff_max: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        let config = dir.path().join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "[agent]\nstatus_listen = \"{}\"\nlog_format = \"text\"\n{extra}\n\
                 [discovery]\nenabled = false\n\
                 [failover]\nmode = \"observe\"\n\
                 [upload]\ncollector_url = \"http://{collector}\"\ntoken_file = \"{}\"\n\
                 spool_path = \"{}\"\nupload_interval = \"1s\"\nheartbeat = \"1s\"\n\
                 urgent_delay = \"100ms\"\nbackoff_max = \"{backoff_max}\"\n",
                free_addr(),
                token.display(),
                dir.path().join("spool.db").display()
            ),
        )
        .unwrap();
        Agent {
            dir,
            config,
            token,
            child: None,
        }
    }

    fn spawn(&mut self) {
        let child = Command::new(BIN)
            .args(["agent", "--config", self.config.to_str().unwrap()])
            .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(self.log()).unwrap())
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("agent.log")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    fn cli(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut a = args.to_vec();
        a.extend(["--config", self.config.to_str().unwrap()]);
        lw(self.dir.path(), &a, env)
    }

    fn status(&self) -> Option<Value> {
        let (_, out, _) = self.cli(&["status", "--json"], &[]);
        serde_json::from_str(&out).ok()
    }

    /// The `record` part of the status once the agent answers.
    fn record(&self) -> Value {
        self.status()
            .map(|s| s["record"].clone())
            .unwrap_or(Value::Null)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn write_token(path: &Path, token: &str) {
    std::fs::write(path, format!("{token}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_missing_token_file_stops_the_agent_and_fails_validate_naming_path_and_fix() {
    let mut agent = Agent::prepare(free_addr(), "", "5s");
    // `validate` needs a link to list: one declared, never started.
    let mut text = std::fs::read_to_string(&agent.config).unwrap();
    text.push_str(
        "[[link]]\nname = \"lwtest0\"\nprobes = [{ type = \"icmp\", target = \"192.0.2.1\" }]\n",
    );
    std::fs::write(&agent.config, text).unwrap();
    let path = agent.token.display().to_string();
    let (code, out, err) = agent.cli(&["validate"], &[]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(!out.contains("valid"), "{out}");
    assert!(err.contains(&path), "{err}");
    assert!(err.contains("linkwatch device add"), "the fix: {err}");

    let started = Instant::now();
    agent.spawn();
    let status = agent.child.as_mut().unwrap().wait().unwrap();
    assert_eq!(status.code(), Some(2), "{}", agent.log_text());
    assert!(started.elapsed() < Duration::from_secs(10));
    let log = agent.log_text();
    assert!(log.contains("not starting"), "{log}");
    assert!(log.contains(&path), "{log}");
    assert!(log.contains("upload.collector_url"), "{log}");

    // An unreadable one (a directory) is refused as well; a good one passes.
    std::fs::create_dir(&agent.token).unwrap();
    let (code, _, err) = agent.cli(&["validate"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&path), "{err}");
    std::fs::remove_dir(&agent.token).unwrap();
    write_token(&agent.token, "lw1_whatever");
    let (code, out, err) = agent.cli(&["validate"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("valid"), "{out}");
    assert!(
        out.contains(&format!("token file {path} readable")),
        "{out}"
    );
}

#[test]
fn rotate_refuses_the_old_token_at_once_and_sighup_reads_the_new_file() {
    let c = Collector::start();
    // Long back-off: only SIGHUP brings the agent back quickly.
    let mut agent = Agent::prepare(c.addr, "device_name = \"gw1\"", "1h");
    c.add_device("gw1", &agent.token);
    let old = std::fs::read_to_string(&agent.token)
        .unwrap()
        .trim()
        .to_string();
    agent.spawn();
    wait_until(Duration::from_secs(20), "first upload", || {
        agent.record()["last_upload"].is_string()
    });

    // A new token: the old one is refused over real HTTP at once.
    let new_file = c.dir.path().join("new-token");
    let (code, _, err) = c.cli(&[
        "device",
        "rotate",
        "gw1",
        "--output",
        new_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("refused from now on"), "{err}");
    let new = std::fs::read_to_string(&new_file)
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(new, old);
    assert_eq!(c.ingest_status(&old, "gw1"), 401);
    assert_ne!(c.ingest_status(&new, "gw1"), 401);

    // The agent's next upload is refused; it waits its (long) back-off.
    wait_until(Duration::from_secs(20), "upload refused", || {
        agent.record()["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("401"))
    });
    // The file disappears: SIGHUP keeps the old token and says why.
    std::fs::remove_file(&agent.token).unwrap();
    signal(
        agent.child.as_ref().unwrap(),
        nix::sys::signal::Signal::SIGHUP,
    );
    wait_until(Duration::from_secs(10), "reload refusal logged", || {
        agent.log_text().contains("keeping the old upload token")
    });
    // The new file appears: SIGHUP reads it and uploads resume at once.
    let before = agent.record()["last_upload"].clone();
    write_token(&agent.token, &new);
    signal(
        agent.child.as_ref().unwrap(),
        nix::sys::signal::Signal::SIGHUP,
    );
    wait_until(Duration::from_secs(15), "upload with the new token", || {
        let r = agent.record();
        r["last_upload"].is_string() && r["last_upload"] != before
    });
    assert!(agent.log_text().contains("upload token file read again"));
    let (code, out, _) = c.cli(&["device", "list"]);
    assert_eq!(code, 0);
    assert_eq!(
        out.matches("gw1").count(),
        1,
        "one device, its history kept: {out}"
    );
    // An unknown name is named.
    let (code, _, err) = c.cli(&["device", "rotate", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("no device named `nope`"), "{err}");
}

#[test]
fn a_token_of_another_device_name_hints_at_agent_device_name() {
    let c = Collector::start();
    let mut agent = Agent::prepare(c.addr, "device_name = \"laptop-7\"", "1h");
    c.add_device("office-gw-3", &agent.token);
    agent.spawn();
    wait_until(Duration::from_secs(20), "refusal", || {
        agent.record()["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("403"))
    });
    let err = agent.record()["last_error"].as_str().unwrap().to_string();
    assert!(
        err.contains("set agent.device_name = \"office-gw-3\""),
        "{err}"
    );
    assert!(err.contains("`laptop-7`"), "{err}");
    wait_until(Duration::from_secs(5), "hint logged", || {
        agent.log_text().contains("agent.device_name")
    });
}

#[test]
fn status_table_shows_spool_and_uploads_in_local_time() {
    let c = Collector::start();
    let mut agent = Agent::prepare(c.addr, "device_name = \"gw1\"", "5s");
    c.add_device("gw1", &agent.token);
    agent.spawn();
    wait_until(Duration::from_secs(20), "first upload", || {
        agent.record()["last_upload"].is_string()
    });
    let json = agent.status().unwrap();
    let last = json["record"]["last_upload"].as_str().unwrap().to_string();
    assert!(last.ends_with('Z'), "JSON stays RFC 3339: {last}");

    let (_, dhaka, err) = agent.cli(&["status"], &[("TZ", "Asia/Dhaka")]);
    assert!(dhaka.contains("spool: "), "{dhaka}{err}");
    assert!(dhaka.contains("records unsent"), "{dhaka}");
    assert!(dhaka.contains("oldest unsent"), "{dhaka}");
    assert!(dhaka.contains("upload: last success "), "{dhaka}");
    assert!(dhaka.contains("last error"), "{dhaka}");
    // The last upload in Dhaka's time, six hours ahead of UTC.
    let t: jiff::Timestamp = last.parse().unwrap();
    let local = t
        .to_zoned_datetime(jiff::tz::TimeZone::get("Asia/Dhaka").unwrap())
        .strftime("%Y-%m-%d %H:%M:%S +06")
        .to_string();
    let (_, utc, _) = agent.cli(&["status", "--utc"], &[("TZ", "Asia/Dhaka")]);
    // The upload time moves on every second: compare whichever line was printed.
    let line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("upload:"))
            .unwrap()
            .to_string()
    };
    assert!(
        line(&dhaka).contains(" +06;"),
        "{dhaka} (expected like {local})"
    );
    assert!(line(&utc).contains(" UTC;"), "{utc}");
}

#[test]
fn without_config_no_database_is_made_by_accident() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["device", "list"],
        vec!["office", "list"],
        vec!["token", "list"],
        vec!["report", "--from", "2026-11-01", "--to", "2026-11-02"],
    ] {
        let (code, _, err) = lw(dir.path(), &args, &[]);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains("no collector database here"),
            "{args:?}: {err}"
        );
        assert!(err.contains("--create-database"), "{err}");
        assert!(err.contains("--config"), "{err}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{args:?} made a file"
        );
    }
    let (code, out, err) = lw(dir.path(), &["device", "list", "--create-database"], &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no devices"), "{out}");
    assert!(dir.path().join("linkwatch-collector.db").exists());
    // Now it exists, it is used without the flag.
    let (code, _, err) = lw(dir.path(), &["device", "add", "gw1"], &[]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = lw(dir.path(), &["device", "list"], &[("TZ", "Asia/Dhaka")]);
    assert_eq!(code, 0);
    assert!(out.contains("gw1"), "{out}");
    assert!(out.contains(" +06"), "created in local time: {out}");
    let (_, out, _) = lw(
        dir.path(),
        &["device", "list", "--utc"],
        &[("TZ", "Asia/Dhaka")],
    );
    assert!(out.contains(" UTC"), "{out}");
}

/// A collector started on a fleet reads every device's state for the
/// dashboard in the background, so the first view after a restart does not
/// have to (it says so in its log, with the count).
#[test]
fn the_dashboard_reads_the_fleet_at_start() {
    let mut c = Collector::start();
    for name in ["gw1", "gw2", "laptop-7"] {
        c.add_device(name, &c.dir.path().join(format!("{name}.token")));
    }
    c.restart();
    wait_until(Duration::from_secs(20), "the warm-up's log line", || {
        c.log()
            .lines()
            .any(|l| l.contains("the fleet's states are read") && l.contains("devices=3"))
    });
}

#[test]
fn office_list_shows_the_imported_hierarchy() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("offices.csv");
    std::fs::write(
        &csv,
        "code,name,division,district,upazila,hours\n\
         dhk-savar-uno,Savar UNO office,Dhaka,Dhaka,Savar,\n\
         dhk-dhamrai-uno,Dhamrai UNO office,Dhaka,Dhaka,Dhamrai,office:Asia/Dhaka:sun-thu:08:00-16:00\n\
         ctg-dc,Chattogram DC office,Chattogram,Chattogram,Kotwali,\n",
    )
    .unwrap();
    let (code, _, err) = lw(
        dir.path(),
        &["device", "import", "offices.csv", "--create-database"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = lw(
        dir.path(),
        &["device", "add", "gw1", "--office", "dhk-savar-uno"],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = lw(dir.path(), &["office", "list"], &[]);
    assert_eq!(code, 0, "{err}");
    let pos = |s: &str| out.find(s).unwrap_or_else(|| panic!("{s} missing: {out}"));
    // Sorted by name at every level, each office under its upazila.
    assert!(
        pos("Chattogram (division)") < pos("Dhaka (division)"),
        "{out}"
    );
    assert!(pos("Dhaka (district)") < pos("Dhamrai (upazila)"), "{out}");
    assert!(pos("Dhamrai (upazila)") < pos("dhk-dhamrai-uno"), "{out}");
    assert!(pos("Savar (upazila)") < pos("dhk-savar-uno"), "{out}");
    assert!(
        out.contains("dhk-savar-uno  Savar UNO office  [1 device]"),
        "{out}"
    );
    assert!(
        out.contains("[0 devices, hours office:Asia/Dhaka:sun-thu:08:00-16:00]"),
        "{out}"
    );
    assert!(
        out.contains("3 offices; 1 devices, 0 of them in no office"),
        "{out}"
    );
}

#[test]
fn validate_checks_a_collector_config() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("collector.toml");
    std::fs::write(
        &good,
        "[collector]\nlisten = \"127.0.0.1:8443\"\ndatabase = \"sqlite:///var/lib/linkwatch/x.db\"\n",
    )
    .unwrap();
    // Recognised by its [collector] table, or named with --collector.
    for args in [
        vec!["validate", "--config", "collector.toml"],
        vec!["validate", "--collector", "--config", "collector.toml"],
    ] {
        let (code, out, err) = lw(dir.path(), &args, &[]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("valid collector config"), "{out}");
        assert!(out.contains("127.0.0.1:8443"), "{out}");
        assert!(out.contains("does not exist yet"), "{out}");
    }
    std::fs::write(
        &good,
        "[collector]\nlisten = \"127.0.0.1:8443\"\ndatabase = \"mysql://x\"\n",
    )
    .unwrap();
    let (code, _, err) = lw(dir.path(), &["validate", "--config", "collector.toml"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("collector.database"), "{err}");
    let (code, _, err) = lw(dir.path(), &["validate", "--collector"], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("/etc/linkwatch/collector.toml"), "{err}");
}

#[test]
fn a_bad_alert_rule_stops_validate_and_the_collector_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("collector.toml"),
        "[collector]\nlisten = \"127.0.0.1:0\"\ndatabase = \"sqlite://x.db\"\n\n\
         [[alerts.rule]]\nname = \"late\"\nkind = \"unreachable\"\nschedule = \"Sun-Thu 25:00-17:00\"\n",
    )
    .unwrap();
    let (code, _, err) = lw(dir.path(), &["validate", "--config", "collector.toml"], &[]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("alerts.rule[0].schedule"), "{err}");
    // The collector stops before it opens (or creates) its database.
    let (code, _, err) = lw(
        dir.path(),
        &["collector", "--config", "collector.toml"],
        &[],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("alerts.rule[0].schedule"), "{err}");
    assert!(!dir.path().join("x.db").exists());
}
