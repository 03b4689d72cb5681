//! A bare throw-away network namespace for tests that drive the library's
//! netlink code directly: created with `ip netns add`, configured with
//! `ip -n`, entered by one thread of its own, deleted on drop. [`run_in`]
//! enters any namespace (a testbed's device namespace, say) the same way.

use nix::sched::{CloneFlags, setns};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Deletes the namespace when dropped, also when the test fails.
pub struct Netns(pub String);

impl Netns {
    pub fn create(name: &str) -> Result<Netns, String> {
        let out = Command::new("ip")
            .args(["netns", "add", name])
            .output()
            .map_err(|e| format!("cannot run ip: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Netns(name.to_string()))
    }

    /// Run `ip -n <ns> <args>` and return its output, panicking with its
    /// error output on failure.
    pub fn ip(&self, args: &str) -> String {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.0)
            .args(args.split_whitespace())
            .output()
            .expect("run ip");
        assert!(
            out.status.success(),
            "ip -n {} {args}: {}",
            self.0,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Run `scenario` on a thread that entered the namespace, in a
    /// current-thread runtime; the test's other threads stay where they are.
    /// Panics in the scenario are re-raised here.
    pub fn run_inside<T: Send + 'static, F>(
        &self,
        scenario: impl FnOnce() -> F + Send + 'static,
    ) -> T
    where
        F: std::future::Future<Output = T>,
    {
        run_in(Path::new("/run/netns").join(&self.0), scenario)
    }
}

/// Run `scenario` on a thread that entered the network namespace of the
/// file `path` (`/run/netns/NAME`), in a current-thread runtime. Panics in
/// the scenario are re-raised here.
pub fn run_in<T: Send + 'static, F>(
    path: PathBuf,
    scenario: impl FnOnce() -> F + Send + 'static,
) -> T
where
    F: std::future::Future<Output = T>,
{
    let result = std::thread::spawn(move || {
        let file = std::fs::File::open(&path).expect("open namespace file");
        setns(&file, CloneFlags::CLONE_NEWNET).expect("setns");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(scenario())
    })
    .join();
    match result {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
