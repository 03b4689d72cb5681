//! Hooks: a configured command run on every link state change and every
//! failover, with the facts in `LINKWATCH_*` environment variables. Each run
//! is its own task with a timeout (the command is killed when it overruns),
//! so a hook that hangs or fails never delays probing or failover.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
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

/// Run the hook once and wait for it (or its timeout). Public for tests.
pub async fn run_one(cmd: &PathBuf, event: &HookEvent, timeout: Duration) -> Option<i32> {
    let mut c = tokio::process::Command::new(cmd);
    c.envs(event.env())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let child = match c.spawn() {
        Ok(c) => c,
        Err(e) => {
            warn!(hook = %cmd.display(), "cannot start hook: {e}");
            return None;
        }
    };
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => {
            if !out.status.success() {
                warn!(hook = %cmd.display(), status = %out.status,
                      stderr = %String::from_utf8_lossy(&out.stderr).trim(), "hook failed");
            } else {
                debug!(hook = %cmd.display(), "hook ran");
            }
            out.status.code()
        }
        Ok(Err(e)) => {
            warn!(hook = %cmd.display(), "hook wait failed: {e}");
            None
        }
        Err(_) => {
            // Dropping the future drops the child: kill_on_drop kills it.
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
