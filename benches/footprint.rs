//! Footprint of the two builds side by side (root only: network-namespace
//! testbed). Prints figures, never pass/fail:
//! - size of the agent-only and the full `linkwatch` (release, stripped);
//! - RSS (current and peak, anonymous and file-backed) of both running the
//!   same config at the same time in the same device namespace: three links
//!   (broadband, Wi-Fi, mobile) at default probe settings, upload on to a
//!   collector on the namespace's loopback.
//!
//! The binaries come from `benches/footprint/build.sh` (target/footprint/
//! linkwatch-agent and linkwatch-full) or `LW_AGENT_BIN` / `LW_FULL_BIN`.
//!
//! `benches/footprint/build.sh && cargo bench --bench footprint -- [--secs S]` (default 120 s).

#[path = "../tests/common/mod.rs"]
mod common;

use common::{Testbed, testbed_available, wait_until};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

fn binary(var: &str, name: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("footprint").join(name)
}

fn proc_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn agent_config(dir: &Path, name: &str, status_port: u16, collector: &str) -> PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[agent]
device_name = "{name}"
status_listen = "127.0.0.1:{status_port}"
log_format = "text"
log_level = "warn"
[discovery]
enabled = false
[failover]
mode = "observe"
[upload]
collector_url = "http://{collector}"
token_file = "{token}"
spool_path = "{spool}"
upload_interval = "30s"
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
            token = dir.join(format!("{name}.token")).display(),
            spool = dir.join(format!("{name}.db")).display(),
        ),
    )
    .unwrap();
    path
}

fn spawn(tb: &Testbed, args: &[&str], log: &Path) -> Child {
    tb.exec_dev(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

fn main() {
    let secs: u64 = std::env::args()
        .skip_while(|a| a != "--secs")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let agent_bin = binary("LW_AGENT_BIN", "linkwatch-agent");
    let full_bin = binary("LW_FULL_BIN", "linkwatch-full");
    for b in [&agent_bin, &full_bin] {
        if !b.exists() {
            eprintln!(
                "footprint: {} missing: run benches/footprint/build.sh first (or set LW_AGENT_BIN and LW_FULL_BIN)",
                b.display()
            );
            std::process::exit(1);
        }
    }
    let size = |p: &Path| std::fs::metadata(p).unwrap().len();
    let (sa, sf) = (size(&agent_bin), size(&full_bin));
    println!(
        "binary size (release, stripped): agent-only {} | full {} | agent-only/full {:.2} (target agent-only <= 6 MB)",
        mb(sa / 1024),
        mb(sf / 1024),
        sa as f64 / sf as f64
    );
    if !testbed_available() {
        println!("footprint: RSS needs root and the network-namespace testbed: skipped");
        return;
    }
    let tb = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The collector (full build) on the device namespace's loopback.
    let collector_addr = "127.0.0.1:18480";
    let ccfg = d.join("collector.toml");
    std::fs::write(
        &ccfg,
        format!(
            "[collector]\nlisten = \"{collector_addr}\"\ndatabase = \"sqlite://{}\"\nlog_format = \"text\"\nlog_level = \"warn\"\n",
            d.join("collector.db").display()
        ),
    )
    .unwrap();
    let full = full_bin.to_str().unwrap();
    for name in ["agent-only", "full"] {
        let out = common::run(std::process::Command::new(full).args([
            "device",
            "add",
            name,
            "--output",
            d.join(format!("{name}.token")).to_str().unwrap(),
            "--config",
            ccfg.to_str().unwrap(),
        ]));
        assert!(out.status.success());
    }
    let mut collector = spawn(
        &tb,
        &[full, "collector", "--config", ccfg.to_str().unwrap()],
        &d.join("collector.log"),
    );
    wait_until(Duration::from_secs(20), "collector listening", || {
        tb.exec_dev([
            "python3",
            "-c",
            &format!(
                "import socket;socket.create_connection(('127.0.0.1',{}),1)",
                collector_addr.rsplit(':').next().unwrap()
            ),
        ])
        .status()
        .is_ok_and(|s| s.success())
    });
    let runs = [
        (
            "agent-only",
            agent_bin.to_str().unwrap().to_string(),
            19477u16,
        ),
        ("full", full.to_string(), 19478u16),
    ];
    let mut agents: Vec<(&str, Child, PathBuf)> = runs
        .iter()
        .map(|(name, bin, port)| {
            let cfg = agent_config(d, name, *port, collector_addr);
            let child = spawn(
                &tb,
                &[bin.as_str(), "agent", "--config", cfg.to_str().unwrap()],
                &d.join(format!("{name}.log")),
            );
            (*name, child, cfg)
        })
        .collect();
    // Both must be uploading: the collector has records of each.
    for (name, _, cfg) in &agents {
        wait_until(Duration::from_secs(90), "first upload", || {
            let out = tb
                .exec_dev([full, "status", "--json", "--config", cfg.to_str().unwrap()])
                .output()
                .unwrap();
            serde_json::from_slice::<serde_json::Value>(&out.stdout)
                .is_ok_and(|v| v["record"]["last_upload"].is_string())
        });
        eprintln!("footprint: {name} uploads");
    }
    std::thread::sleep(Duration::from_secs(secs));
    println!(
        "RSS after {secs} s, 3 links at default settings, upload on (target agent-only <= 8 MB):"
    );
    println!(
        "  {:<11} {:>9} {:>9} {:>9} {:>9}",
        "build", "RSS", "peak", "anon", "file"
    );
    let mut rss = vec![];
    for (name, child, _) in &agents {
        let pid = child.id();
        let r = proc_kb(pid, "VmRSS:");
        rss.push(r);
        println!(
            "  {:<11} {:>9} {:>9} {:>9} {:>9}",
            name,
            mb(r),
            mb(proc_kb(pid, "VmHWM:")),
            mb(proc_kb(pid, "RssAnon:")),
            mb(proc_kb(pid, "RssFile:"))
        );
    }
    println!(
        "  agent-only/full RSS {:.2}",
        rss[0] as f64 / rss[1].max(1) as f64
    );
    for (_, child, _) in agents.iter_mut() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = collector.kill();
    let _ = collector.wait();
}
