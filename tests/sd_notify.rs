//! The real binary under a stand-in for systemd: a unix datagram socket the
//! test binds and names in `NOTIFY_SOCKET`, with `WATCHDOG_USEC` set. The
//! agent (and the collector) must say READY=1 once started, ping WATCHDOG=1
//! regularly, and say STOPPING=1 on SIGTERM. No root needed; loopback only.
//! Also the log-level settings the agent honours (`log_level`, `RUST_LOG`).

use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

fn free_addr() -> std::net::SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Messages until `want` arrives (each datagram is one or more `KEY=VALUE` lines).
fn wait_for(sock: &UnixDatagram, want: &str, deadline: Duration, seen: &mut Vec<String>) {
    let end = Instant::now() + deadline;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        sock.set_read_timeout(Some(
            end.saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
        .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let hit = msg.lines().any(|l| l == want);
                seen.push(msg);
                if hit {
                    return;
                }
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                break;
            }
            Err(e) => panic!("notify socket: {e}"),
        }
    }
    panic!("no {want} within {deadline:?}; got {seen:?}");
}

fn spawn(dir: &Path, sock: &Path, args: &[&str]) -> Child {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env("NOTIFY_SOCKET", sock)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("log")).unwrap())
        .spawn()
        .unwrap()
}

/// READY=1 (with a STATUS= line), at least two WATCHDOG=1, then STOPPING=1
/// after SIGTERM, and a clean exit.
fn check_protocol(dir: &Path, sock_path: &Path, sock: &UnixDatagram, mut child: Child) {
    let mut seen = vec![];
    wait_for(sock, "READY=1", Duration::from_secs(20), &mut seen);
    assert!(
        seen.last()
            .unwrap()
            .lines()
            .any(|l| l.starts_with("STATUS=")),
        "a status line with READY: {seen:?}"
    );
    for _ in 0..2 {
        wait_for(sock, "WATCHDOG=1", Duration::from_secs(2), &mut seen);
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_for(sock, "STOPPING=1", Duration::from_secs(10), &mut seen);
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "{status}: {}",
        std::fs::read_to_string(dir.join("log")).unwrap_or_default()
    );
    let _ = sock_path;
}

#[test]
fn the_agent_speaks_systemds_notify_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nstatus_listen = \"{}\"\nlog_format = \"text\"\n\
             [discovery]\nenabled = false\n[failover]\nmode = \"observe\"\n\
             [upload]\nspool_path = \"{}\"\n",
            free_addr(),
            dir.path().join("spool.db").display()
        ),
    )
    .unwrap();
    let child = spawn(
        dir.path(),
        &sock_path,
        &["agent", "--config", config.to_str().unwrap()],
    );
    check_protocol(dir.path(), &sock_path, &sock, child);
}

#[cfg(feature = "collector")]
#[test]
fn the_collector_speaks_systemds_notify_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let config = dir.path().join("collector.toml");
    std::fs::write(
        &config,
        format!(
            "[collector]\nlisten = \"{}\"\ndatabase = \"sqlite://{}\"\nlog_format = \"text\"\n",
            free_addr(),
            dir.path().join("c.db").display()
        ),
    )
    .unwrap();
    let child = spawn(
        dir.path(),
        &sock_path,
        &["collector", "--config", config.to_str().unwrap()],
    );
    check_protocol(dir.path(), &sock_path, &sock, child);
}

/// The agent's log, started with `log_level = level` (and `RUST_LOG` when
/// given) and stopped with SIGTERM once it said READY=1.
fn agent_log(level: &str, rust_log: Option<&str>) -> String {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "[agent]\nstatus_listen = \"{}\"\nlog_format = \"text\"\nlog_level = \"{level}\"\n\
             [discovery]\nenabled = false\n[failover]\nmode = \"observe\"\n\
             [upload]\nspool_path = \"{}\"\n",
            free_addr(),
            dir.path().join("spool.db").display()
        ),
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["agent", "--config", config.to_str().unwrap()])
        .current_dir(dir.path())
        .env("NOTIFY_SOCKET", &sock_path)
        .env_remove("WATCHDOG_USEC")
        .env("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("log")).unwrap());
    if let Some(v) = rust_log {
        cmd.env("RUST_LOG", v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut seen = vec![];
    wait_for(&sock, "READY=1", Duration::from_secs(20), &mut seen);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(child.wait().unwrap().success());
    std::fs::read_to_string(dir.path().join("log")).unwrap()
}

/// `log_level` and `RUST_LOG` take the same settings in both builds: a level,
/// or `target=level` directives (RUST_LOG wins over the config).
#[test]
fn log_level_and_rust_log_choose_what_the_agent_logs() {
    let cases = [
        ("info", None, true),
        ("warn", None, false),
        ("warn,linkwatch::agent::run=info", None, true),
        ("warn", Some("linkwatch=info"), true),
        ("info", Some("warn"), false),
        ("info", Some("info,linkwatch::agent=error"), false),
        ("warn", Some("off,linkwatch::agent::run=debug"), true),
    ];
    for (level, rust_log, shown) in cases {
        let log = agent_log(level, rust_log);
        assert_eq!(
            log.contains("agent starting"),
            shown,
            "log_level = {level:?}, RUST_LOG = {rust_log:?}:\n{log}"
        );
    }
}
