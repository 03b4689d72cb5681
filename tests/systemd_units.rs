//! The systemd units in `systemd/` as systemd itself reads them:
//! `systemd-analyze verify` in a throwaway root holding the units, the real
//! binary at /usr/bin/linkwatch and the machine's own system units (no unit is
//! installed on the machine), with and without the routes-mode drop-in; and
//! `systemd-analyze security` scores. Skips when systemd-analyze is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");
const UNITS: [&str; 2] = ["linkwatch-agent.service", "linkwatch-collector.service"];

fn analyze() -> Option<PathBuf> {
    ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn system_units() -> Option<PathBuf> {
    ["/usr/lib/systemd/system", "/lib/systemd/system"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.join("sysinit.target").exists())
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let ty = e.file_type().unwrap();
        let dest = to.join(e.file_name());
        if ty.is_symlink() {
            let _ = std::os::unix::fs::symlink(std::fs::read_link(e.path()).unwrap(), &dest);
        } else if ty.is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// A root with the machine's system units, ours, the binary and kill(1).
fn throwaway_root(with_routes: bool) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    let units = r.join("usr/lib/systemd/system");
    copy_dir(&system_units().unwrap(), &units);
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    for u in UNITS {
        std::fs::copy(ours.join(u), units.join(u)).unwrap();
    }
    if with_routes {
        let d = r.join("etc/systemd/system/linkwatch-agent.service.d");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(
            ours.join("linkwatch-agent.service.d/routes.conf"),
            d.join("routes.conf"),
        )
        .unwrap();
    }
    std::fs::create_dir_all(r.join("usr/bin")).unwrap();
    std::os::unix::fs::symlink("usr/bin", r.join("bin")).unwrap();
    if std::fs::hard_link(BIN, r.join("usr/bin/linkwatch")).is_err() {
        std::fs::copy(BIN, r.join("usr/bin/linkwatch")).unwrap();
    }
    let kill = ["/usr/bin/kill", "/bin/kill"]
        .iter()
        .find(|p| Path::new(p).exists())
        .expect("kill(1)");
    std::fs::copy(kill, r.join("usr/bin/kill")).unwrap();
    std::fs::create_dir_all(r.join("etc/linkwatch")).unwrap();
    root
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let (Some(sa), Some(_)) = (analyze(), system_units()) else {
        eprintln!(
            "SKIP: systemd-analyze or the system units missing (install the systemd package)"
        );
        return;
    };
    for routes in [false, true] {
        let root = throwaway_root(routes);
        let out = Command::new(&sa)
            .arg("verify")
            .arg("--man=no")
            .arg(format!("--root={}", root.path().display()))
            .args(UNITS)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        // Only our units' complaints count (the machine's own may have some).
        let ours: Vec<&str> = err.lines().filter(|l| l.contains("linkwatch")).collect();
        assert!(
            out.status.success() && ours.is_empty(),
            "routes drop-in {routes}: {}\n{err}",
            out.status
        );
    }
    // A broken unit is caught: the test can fail.
    let root = throwaway_root(false);
    let unit = root
        .path()
        .join("usr/lib/systemd/system/linkwatch-agent.service");
    let text = std::fs::read_to_string(&unit).unwrap();
    std::fs::write(&unit, text.replace("WatchdogSec=", "WatchdogSecs=")).unwrap();
    let out = Command::new(&sa)
        .arg("verify")
        .arg("--man=no")
        .arg(format!("--root={}", root.path().display()))
        .arg(UNITS[0])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("WatchdogSecs"),
        "{out:?}"
    );
}

#[test]
fn units_are_hardened_and_capabilities_minimal() {
    let Some(sa) = analyze() else {
        eprintln!("SKIP: systemd-analyze missing (install the systemd package)");
        return;
    };
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd");
    let agent = std::fs::read_to_string(ours.join(UNITS[0])).unwrap();
    let routes =
        std::fs::read_to_string(ours.join("linkwatch-agent.service.d/routes.conf")).unwrap();
    let collector = std::fs::read_to_string(ours.join(UNITS[1])).unwrap();
    for text in [&agent, &collector] {
        for line in [
            "Type=notify",
            "WatchdogSec=",
            "Restart=on-failure",
            "StateDirectory=",
            "ConfigurationDirectory=linkwatch",
            "ProtectSystem=strict",
            "ProtectHome=yes",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "RestrictAddressFamilies=",
            "SystemCallFilter=@system-service",
        ] {
            assert!(text.lines().any(|l| l.starts_with(line)), "{line} missing");
        }
    }
    // The agent is a dynamic user; the collector a static one the package makes
    // (packaging/sysusers.d), so that operators can share its database.
    assert!(
        agent.contains("\nDynamicUser=yes\n"),
        "agent: DynamicUser=yes"
    );
    assert!(
        !collector.contains("\nDynamicUser=yes"),
        "collector: static user"
    );
    assert!(collector.contains("\nUser=linkwatch-collector\n"));
    let sysusers = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/sysusers.d/linkwatch-collector.conf"),
    )
    .unwrap();
    assert!(
        sysusers
            .lines()
            .any(|l| l.starts_with("u linkwatch-collector "))
    );
    assert!(
        agent.contains("\nLoadCredential=token:"),
        "token as a credential"
    );
    assert!(agent.contains("\nExecReload=/bin/kill -HUP $MAINPID"));
    assert!(agent.contains("\nAmbientCapabilities=CAP_NET_RAW\n"));
    assert!(agent.contains("\nCapabilityBoundingSet=CAP_NET_RAW\n"));
    assert!(
        !agent.contains("CAP_NET_ADMIN\n"),
        "CAP_NET_ADMIN only in the drop-in"
    );
    assert!(routes.contains("AmbientCapabilities=CAP_NET_ADMIN"));
    assert!(
        collector.contains("\nCapabilityBoundingSet=\n"),
        "no capability"
    );

    // The exposure scores the README quotes (lower is better; 10 is none).
    let Some(_) = system_units() else { return };
    for routes in [false, true] {
        let root = throwaway_root(routes);
        for unit in UNITS {
            let out = Command::new(&sa)
                .args(["security", "--offline=yes", "--no-pager"])
                .arg(format!("--root={}", root.path().display()))
                .arg(unit)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let score: f64 = text
                .lines()
                .find_map(|l| l.split("exposure level for ").nth(1))
                .and_then(|l| l.split(": ").nth(1))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no score in {text}"));
            eprintln!("{unit} (routes drop-in {routes}): exposure {score}");
            assert!(score <= 3.0, "{unit}: exposure {score}\n{text}");
        }
    }
}
