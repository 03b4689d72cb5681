//! Running the real agent inside a testbed's device namespace, and reading its
//! state the way IT staff do (`linkwatch status --json`).

use super::{Testbed, wait_until};
use linkwatch::wire::{AgentStatus, LinkState};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

/// Where the namespace tests run the collector (HTTPS on port 8443 in the
/// internet namespace).
pub const COLLECTOR_ADDR: &str = "203.0.113.20";

/// Registers `device` with the collector of `collector_config` (`linkwatch
/// device add`) and returns the file its token was written to, in `dir`.
pub fn add_device(collector_config: &Path, device: &str, dir: &Path) -> PathBuf {
    let path = dir.join("token");
    let out = Command::new(BIN)
        .args(["device", "add", device, "--output"])
        .arg(&path)
        .arg("--config")
        .arg(collector_config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

/// An agent config for the testbed's three links (bb0, wl0, mb0): probes
/// to 192.0.2.1 and .2 every second, uploads every second over HTTPS to
/// the collector on [`COLLECTOR_ADDR`] (trusting `ca`), spool in `dir`.
pub fn uploading_config(
    device: &str,
    token: &Path,
    ca: &Path,
    dir: &Path,
    log_level: &str,
) -> String {
    format!(
        r#"presets = []
probes = [
  {{ type = "icmp", target = "192.0.2.1" }},
  {{ type = "icmp", target = "192.0.2.2" }},
]
[agent]
device_name = "{device}"
status_listen = "127.0.0.1:9477"
log_format = "text"
log_level = "{log_level}"
[discovery]
enabled = false
[health]
interval_standby = "1s"
interval_metered_standby = "1s"
[upload]
collector_url = "https://{COLLECTOR_ADDR}:8443"
token_file = "{}"
ca_file = "{}"
spool_path = "{}"
heartbeat = "1s"
upload_interval = "1s"
backoff_max = "2s"
[[link]]
name = "bb0"
kind = "broadband"
[[link]]
name = "wl0"
kind = "wifi"
[[link]]
name = "mb0"
kind = "mobile"
"#,
        token.display(),
        ca.display(),
        dir.join("spool.db").display()
    )
}

pub struct Agent<'a> {
    pub tb: &'a Testbed,
    pub child: Option<Child>,
    pub config: PathBuf,
    pub log: PathBuf,
    pub dir: tempfile::TempDir,
    /// Programs the agent runs under (`setpriv ...`, `nsenter ...`), kept for restarts.
    pub prefix: Vec<String>,
    /// Extra environment of the agent and of [`Agent::cli`].
    pub env: Vec<(String, String)>,
}

impl<'a> Agent<'a> {
    pub fn start(tb: &'a Testbed, config_text: &str) -> Self {
        let a = Self::spawn(tb, config_text);
        wait_until(Duration::from_secs(10), "agent status listener", || {
            a.try_status().is_some()
        });
        a
    }

    /// Start the agent without waiting for its listener (it may refuse to start).
    pub fn spawn(tb: &'a Testbed, config_text: &str) -> Self {
        Self::spawn_with(tb, config_text, &[])
    }

    /// Start `prefix... linkwatch agent --config ...` (e.g. setpriv to drop capabilities).
    pub fn spawn_with(tb: &'a Testbed, config_text: &str, prefix: &[&str]) -> Self {
        Self::spawn_env(tb, config_text, prefix, &[])
    }

    /// [`Agent::spawn_with`] with extra environment variables. Unless `env` names
    /// `DBUS_SYSTEM_BUS_ADDRESS`, the agent gets a bus address where no bus listens: an agent
    /// in a test never talks to the machine's own system bus (`failover.mode = "auto"` then
    /// finds no NetworkManager and observes).
    pub fn spawn_env(
        tb: &'a Testbed,
        config_text: &str,
        prefix: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("agent.toml");
        let mut text = config_text.to_string();
        if !text.contains("spool_path") {
            // Each agent keeps its own spool, never the system's.
            let line = format!(
                "spool_path = \"{}\"\n",
                dir.path().join("spool.db").display()
            );
            match text.find("[upload]\n") {
                Some(i) => text.insert_str(i + "[upload]\n".len(), &line),
                None => text.push_str(&format!("\n[upload]\n{line}")),
            }
        }
        std::fs::write(&config, text).expect("write config");
        let log = dir.path().join("agent.log");
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if !env.iter().any(|(k, _)| k == "DBUS_SYSTEM_BUS_ADDRESS") {
            env.push((
                "DBUS_SYSTEM_BUS_ADDRESS".into(),
                format!("unix:path={}", dir.path().join("no-bus").display()),
            ));
        }
        let mut agent = Agent {
            tb,
            child: None,
            config,
            log,
            dir,
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
            env,
        };
        std::fs::File::create(&agent.log).expect("log file");
        agent.child = Some(agent.launch());
        agent
    }

    /// Starts the agent process (prefix, environment, config; stderr appended to the log).
    fn launch(&self) -> Child {
        let logf = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut args: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        args.extend([BIN, "agent", "--config", self.config.to_str().unwrap()]);
        self.tb
            .exec_dev(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(logf)
            .spawn()
            .expect("start agent")
    }

    /// The agent's spool (unless the config names another).
    pub fn spool_path(&self) -> PathBuf {
        self.dir.path().join("spool.db")
    }

    /// Restart after the process ended (or was killed), same config, prefix, environment and
    /// log.
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.child = Some(self.launch());
        wait_until(Duration::from_secs(10), "agent status listener", || {
            self.try_status().is_some()
        });
    }

    /// Wait for the process to exit by itself; its exit status.
    pub fn wait_exit(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let start = Instant::now();
        loop {
            if let Some(s) = child.try_wait().expect("wait") {
                self.child = None;
                return s;
            }
            assert!(
                start.elapsed() < deadline,
                "agent did not exit within {deadline:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Run `linkwatch ARGS --config CONFIG` in the device namespace.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut a: Vec<&str> = vec![BIN];
        a.extend(args);
        a.extend(["--config", self.config.to_str().unwrap()]);
        let mut p: Vec<&str> = self.prefix.iter().map(String::as_str).collect();
        p.extend(a);
        self.tb
            .exec_dev(p)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .output()
            .expect("run linkwatch")
    }

    pub fn try_status(&self) -> Option<AgentStatus> {
        let out = self
            .tb
            .exec_dev([BIN, "status", "--json", "--config", self.config.to_str()?])
            .stdin(Stdio::null())
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    }

    pub fn status(&self) -> AgentStatus {
        self.try_status()
            .unwrap_or_else(|| panic!("agent gave no status; log:\n{}", self.log_text()))
    }

    pub fn state(&self, link: &str) -> (LinkState, Option<String>) {
        let s = self.status();
        let l = s
            .links
            .iter()
            .find(|l| l.name == link)
            .unwrap_or_else(|| panic!("link {link} not in status {s:?}"));
        (l.state, l.reason.clone())
    }

    /// Wait until `link` is in `state`, checking `invariant` on every status
    /// seen meanwhile. Returns the time it took.
    pub fn wait_state(
        &self,
        link: &str,
        state: LinkState,
        deadline: Duration,
        mut invariant: impl FnMut(&AgentStatus),
    ) -> Duration {
        let start = Instant::now();
        loop {
            let s = self.status();
            invariant(&s);
            if s.links.iter().any(|l| l.name == link && l.state == state) {
                return start.elapsed();
            }
            if start.elapsed() > deadline {
                panic!(
                    "{link} not {state} within {deadline:?}; last status {s:#?}\nagent log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn all_up(&self) {
        for l in ["bb0", "wl0", "mb0"] {
            self.wait_state(l, LinkState::Up, Duration::from_secs(20), |_| {});
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn log_tail(&self) -> String {
        let t = self.log_text();
        let lines: Vec<&str> = t.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    pub fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("kill");
        assert!(ok.success());
    }

    pub fn pid_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Agent<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            eprintln!("--- agent log ---\n{}", self.log_tail());
        }
    }
}
