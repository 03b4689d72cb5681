//! Hooks: a configured command run on every link state change and every
//! failover, with the facts in `LINKWATCH_*` environment variables. Each run
//! is its own task with a timeout, so a hook that hangs or fails never delays
//! probing or failover. Every run gets a process group of its own; when it
//! overruns, the whole group is killed, so the programs the hook started
//! (a `curl`, a `sleep`, a subshell) go with it.

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::ChildStderr;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

/// What happened, for the hook's environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookEvent {
    /// `LINKWATCH_EVENT=link`
    Link {
        link: String,
        kind: String,
        old_state: String,
        new_state: String,
        reason: String,
        active: Option<String>,
    },
    /// `LINKWATCH_EVENT=failover`
    Failover {
        from: Option<String>,
        to: Option<String>,
        cause: String,
        reason: String,
    },
}

impl HookEvent {
    /// The environment variables the hook receives.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let opt = |o: &Option<String>| o.clone().unwrap_or_default();
        match self {
            HookEvent::Link {
                link,
                kind,
                old_state,
                new_state,
                reason,
                active,
            } => vec![
                ("LINKWATCH_EVENT", "link".into()),
                ("LINKWATCH_LINK", link.clone()),
                ("LINKWATCH_KIND", kind.clone()),
                ("LINKWATCH_OLD_STATE", old_state.clone()),
                ("LINKWATCH_NEW_STATE", new_state.clone()),
                ("LINKWATCH_REASON", reason.clone()),
                ("LINKWATCH_ACTIVE", opt(active)),
            ],
            HookEvent::Failover {
                from,
                to,
                cause,
                reason,
            } => vec![
                ("LINKWATCH_EVENT", "failover".into()),
                ("LINKWATCH_OLD_ACTIVE", opt(from)),
                ("LINKWATCH_ACTIVE", opt(to)),
                ("LINKWATCH_LINK", opt(to)),
                ("LINKWATCH_CAUSE", cause.clone()),
                ("LINKWATCH_REASON", reason.clone()),
            ],
        }
    }
}

/// Runs the hook command, at most a few at a time.
#[derive(Clone)]
pub struct Hooks {
    command: Option<PathBuf>,
    timeout: Duration,
    slots: Arc<Semaphore>,
}

impl Hooks {
    pub fn new(command: Option<PathBuf>, timeout: Duration) -> Self {
        Hooks {
            command,
            timeout,
            slots: Arc::new(Semaphore::new(4)),
        }
    }

    /// Start the hook for `event` in the background; returns at once.
    pub fn fire(&self, event: HookEvent) {
        let Some(cmd) = self.command.clone() else {
            return;
        };
        let timeout = self.timeout;
        let slots = self.slots.clone();
        tokio::spawn(async move {
            let Ok(_permit) = slots.acquire_owned().await else {
                return;
            };
            run_one(&cmd, &event, timeout).await;
        });
    }
}

/// At most this much of a hook's error output is kept for the log.
const STDERR_LIMIT: usize = 4096;

/// After the hook exited, how long its error output may still take to end
/// (a program it left running in the background may hold the pipe open).
const STDERR_GRACE: Duration = Duration::from_millis(100);

/// Read from `stderr` into `buf` (up to [`STDERR_LIMIT`]); pends forever once
/// the pipe is closed or there is none, so it can sit in a `select!`.
async fn read_some(stderr: &mut Option<ChildStderr>, buf: &mut Vec<u8>) {
    let Some(pipe) = stderr.as_mut() else {
        return std::future::pending().await;
    };
    let mut chunk = [0u8; 512];
    match pipe.read(&mut chunk).await {
        Ok(0) | Err(_) => *stderr = None,
        Ok(n) => {
            let room = STDERR_LIMIT.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..n.min(room)]);
        }
    }
}

/// SIGKILL to every process of group `pgid` (the hook and what it started).
fn kill_group(pgid: u32) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    // ESRCH (the group is already gone) is what was wanted.
    if let Err(e) = killpg(Pid::from_raw(pgid), Signal::SIGKILL)
        && e != nix::errno::Errno::ESRCH
    {
        warn!(pgid, "cannot kill the hook's process group: {e}");
    }
}

/// Run the hook once and wait for it (or its timeout). Public for tests.
pub async fn run_one(cmd: &PathBuf, event: &HookEvent, timeout: Duration) -> Option<i32> {
    let mut c = tokio::process::Command::new(cmd);
    c.envs(event.env())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        // A group of its own (pgid = the hook's pid), killed as a whole on timeout.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match c.spawn() {
        Ok(c) => c,
        Err(e) => {
            warn!(hook = %cmd.display(), "cannot start hook: {e}");
            return None;
        }
    };
    let pgid = child.id();
    let mut stderr = child.stderr.take();
    let mut err = Vec::new();
    let waited = tokio::time::timeout(timeout, async {
        loop {
            tokio::select! {
                status = child.wait() => break status,
                () = read_some(&mut stderr, &mut err) => {}
            }
        }
    })
    .await;
    match waited {
        Ok(Ok(status)) => {
            // What the hook wrote before it ended; a program it left running
            // may keep the pipe open, so do not wait for the end of it.
            let _ = tokio::time::timeout(STDERR_GRACE, async {
                while stderr.is_some() {
                    read_some(&mut stderr, &mut err).await;
                }
            })
            .await;
            if !status.success() {
                warn!(hook = %cmd.display(), status = %status,
                      stderr = %String::from_utf8_lossy(&err).trim(), "hook failed");
            } else {
                debug!(hook = %cmd.display(), "hook ran");
            }
            status.code()
        }
        Ok(Err(e)) => {
            warn!(hook = %cmd.display(), "hook wait failed: {e}");
            None
        }
        Err(_) => {
            if let Some(pgid) = pgid {
                kill_group(pgid);
            }
            // Reap the hook itself (killed with its group above).
            let _ = child.kill().await;
            warn!(hook = %cmd.display(), timeout = ?timeout, "hook timed out and was killed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &std::path::Path, body: &str) -> PathBuf {
        let p = dir.join("hook.sh");
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn link_event() -> HookEvent {
        HookEvent::Link {
            link: "bb0".into(),
            kind: "broadband".into(),
            old_state: "up".into(),
            new_state: "down".into(),
            reason: "probes".into(),
            active: Some("wl0".into()),
        }
    }

    #[tokio::test]
    async fn hook_receives_the_documented_variables() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("env.txt");
        let cmd = script(
            dir.path(),
            &format!("env | grep ^LINKWATCH_ | sort > {}", out.display()),
        );
        let code = run_one(&cmd, &link_event(), Duration::from_secs(5)).await;
        assert_eq!(code, Some(0));
        let env = std::fs::read_to_string(&out).unwrap();
        for line in [
            "LINKWATCH_EVENT=link",
            "LINKWATCH_LINK=bb0",
            "LINKWATCH_KIND=broadband",
            "LINKWATCH_OLD_STATE=up",
            "LINKWATCH_NEW_STATE=down",
            "LINKWATCH_REASON=probes",
            "LINKWATCH_ACTIVE=wl0",
        ] {
            assert!(env.contains(line), "{line} missing in\n{env}");
        }
    }

    #[tokio::test]
    async fn a_hanging_hook_is_killed_after_its_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("finished");
        let cmd = script(dir.path(), &format!("sleep 30; touch {}", marker.display()));
        let start = std::time::Instant::now();
        let code = run_one(&cmd, &link_event(), Duration::from_millis(200)).await;
        assert_eq!(code, None);
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!marker.exists());
    }

    /// Is process `pid` gone (or a zombie nobody reaped yet)?
    fn gone(pid: u32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => true,
            // "pid (comm) S ...": the state follows the last ')'.
            Ok(stat) => stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
        }
    }

    #[tokio::test]
    async fn a_timed_out_hook_takes_the_programs_it_started_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("written-later");
        let pidfile = dir.path().join("grandchild.pid");
        // The hook starts a grandchild that would write the marker after
        // 1.5 s, then hangs itself.
        let cmd = script(
            dir.path(),
            &format!(
                "sh -c 'echo $$ > {pid}; sleep 1.5; touch {marker}' &\nsleep 30",
                pid = pidfile.display(),
                marker = marker.display()
            ),
        );
        let start = std::time::Instant::now();
        let code = run_one(&cmd, &link_event(), Duration::from_millis(500)).await;
        assert_eq!(code, None);
        let gc: u32 = std::fs::read_to_string(&pidfile)
            .expect("the grandchild wrote its pid")
            .trim()
            .parse()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !gone(gc) {
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild {gc} still runs after the hook was killed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Until well past the moment it would have written it: no marker.
        while start.elapsed() < Duration::from_millis(2500) {
            assert!(!marker.exists(), "the grandchild wrote its marker");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(!marker.exists());
    }

    #[tokio::test]
    async fn a_hook_that_leaves_a_program_running_is_not_a_timeout() {
        let dir = tempfile::tempdir().unwrap();
        // The background program keeps the hook's stderr open.
        let cmd = script(dir.path(), "sleep 3 &\necho done >&2\nexit 4");
        let start = std::time::Instant::now();
        let code = run_one(&cmd, &link_event(), Duration::from_secs(2)).await;
        assert_eq!(code, Some(4));
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test]
    async fn a_failing_or_missing_hook_is_reported_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let cmd = script(dir.path(), "exit 3");
        assert_eq!(
            run_one(&cmd, &link_event(), Duration::from_secs(5)).await,
            Some(3)
        );
        let missing = dir.path().join("nope");
        assert_eq!(
            run_one(&missing, &link_event(), Duration::from_secs(5)).await,
            None
        );
    }
}
