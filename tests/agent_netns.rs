//! The agent for real, in network namespaces the tests create: a device with
//! three uplinks (broadband, Wi-Fi, mobile) through three ISPs to an
//! "internet" serving ICMP, DNS and HTTP on documentation addresses. The
//! agent runs inside the device namespace; the tests read its state through
//! `linkwatch status --json` exactly as IT staff would, and break the network
//! underneath it.

mod common;

use common::agent::Agent;
use common::{PortalMode, Testbed, Uplink, testbed_available, wait_until};
use linkwatch::wire::{AgentStatus, LinkState};
use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_linkwatch");

fn link_probes() -> String {
    r#"probes = [
  { type = "icmp", target = "192.0.2.1" },
  { type = "icmp", target = "192.0.2.2" },
  { type = "icmp", target = "203.0.113.10" },
  { type = "dns", server = "198.51.100.53:53", name = "probe.test" },
  { type = "http", url = "http://192.0.2.1/generate_204", expect_status = 204, captive = true },
]"#
    .to_string()
}

/// The agent's config for the testbed: defaults everywhere except faster
/// standby and application rates, so tests finish quickly.
fn config(extra_health: &str) -> String {
    let probes = link_probes();
    format!(
        r#"presets = []
{probes}

[agent]
status_listen = "127.0.0.1:9477"
log_format = "text"
log_level = "debug"

[discovery]
enabled = false

[health]
interval_standby = "1s"
interval_metered_standby = "1s"
app_interval_active = "1s"
app_interval_standby = "1s"
app_interval_metered_standby = "1s"
{extra_health}

[[link]]
name = "bb0"
kind = "broadband"

[[link]]
name = "wl0"
kind = "wifi"

[[link]]
name = "mb0"
kind = "mobile"
"#
    )
}

fn others_stay_up(except: &'static str) -> impl FnMut(&AgentStatus) {
    move |s: &AgentStatus| {
        for l in &s.links {
            if l.name != except {
                assert!(
                    l.state.is_online(),
                    "{} went {} ({:?}) while only {except} was broken",
                    l.name,
                    l.state,
                    l.reason
                );
            }
        }
    }
}

#[test]
fn silent_upstream_cut_marks_only_that_link_down_and_heal_brings_it_back() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config(""));
    agent.all_up();
    let s = agent.status();
    assert!(s.online);
    let bb = s.links.iter().find(|l| l.name == "bb0").unwrap();
    assert!(bb.active, "bb0 has the lowest metric: {s:?}");
    assert!(bb.rtt_ms.is_some() && bb.loss_pct == Some(0.0), "{bb:?}");

    tb.cut_upstream(Uplink::Broadband);
    // Carrier stays up: only probes can tell.
    assert_eq!(tb.carrier(Uplink::Broadband), Some(true));
    let took = agent.wait_state(
        "bb0",
        LinkState::Down,
        Duration::from_secs(10),
        others_stay_up("bb0"),
    );
    assert_eq!(agent.state("bb0").1.as_deref(), Some("probes"));
    eprintln!("silent cut detected in {took:?}");
    assert!(
        agent.status().online,
        "wl0 and mb0 still reach the internet"
    );

    tb.heal_upstream(Uplink::Broadband);
    agent.wait_state(
        "bb0",
        LinkState::Up,
        Duration::from_secs(15),
        others_stay_up("bb0"),
    );
}

#[test]
fn carrier_loss_is_down_at_once_and_restore_recovers() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config(""));
    agent.all_up();
    tb.drop_carrier(Uplink::Wifi);
    let took = agent.wait_state(
        "wl0",
        LinkState::Down,
        Duration::from_secs(2),
        others_stay_up("wl0"),
    );
    assert_eq!(agent.state("wl0").1.as_deref(), Some("carrier"));
    eprintln!("carrier loss seen in status after {took:?}");
    tb.restore_carrier(Uplink::Wifi);
    agent.wait_state(
        "wl0",
        LinkState::Up,
        Duration::from_secs(15),
        others_stay_up("wl0"),
    );
}

#[test]
fn twenty_percent_random_loss_never_marks_the_link_down() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config(""));
    agent.all_up();
    tb.set_loss(Uplink::Broadband, 20);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(40) {
        let s = agent.status();
        for l in &s.links {
            assert!(
                l.state.is_online(),
                "{} went {} ({:?}) under 20% loss; log:\n{}",
                l.name,
                l.state,
                l.reason,
                agent.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let bb = agent
        .status()
        .links
        .into_iter()
        .find(|l| l.name == "bb0")
        .unwrap();
    let loss = bb.loss_pct.expect("loss measured");
    assert!(loss > 8.0 && loss < 32.0, "measured loss {loss}%");
    tb.clear_loss(Uplink::Broadband);
}

#[test]
fn captive_portal_makes_the_link_degraded_with_reason_captive() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config(""));
    agent.all_up();
    for mode in [PortalMode::Redirect, PortalMode::LoginPage] {
        tb.captive(Uplink::Wifi, Some(mode));
        agent.wait_state(
            "wl0",
            LinkState::Degraded,
            Duration::from_secs(10),
            others_stay_up("wl0"),
        );
        assert_eq!(agent.state("wl0").1.as_deref(), Some("captive"), "{mode:?}");
        assert!(
            agent.status().online,
            "a captive link still counts as reachable"
        );
        tb.captive(Uplink::Wifi, None);
        agent.wait_state("wl0", LinkState::Up, Duration::from_secs(10), |_| {});
    }
}

#[test]
fn unplugged_modem_is_absent_and_replug_is_picked_up_without_restart() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config(""));
    agent.all_up();
    tb.remove_link(Uplink::Mobile);
    agent.wait_state(
        "mb0",
        LinkState::Absent,
        Duration::from_secs(3),
        others_stay_up("mb0"),
    );
    tb.add_link(Uplink::Mobile);
    agent.wait_state(
        "mb0",
        LinkState::Up,
        Duration::from_secs(20),
        others_stay_up("mb0"),
    );
}

#[test]
fn all_links_cut_is_offline_and_check_says_why() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("agent.toml");
    std::fs::File::create(&cfg)
        .unwrap()
        .write_all(config("").as_bytes())
        .unwrap();
    let check = |json: bool| {
        let mut args = vec![
            BIN,
            "check",
            "--timeout",
            "1s",
            "--config",
            cfg.to_str().unwrap(),
        ];
        if json {
            args.push("--json");
        }
        tb.exec_dev(args).stdin(Stdio::null()).output().unwrap()
    };
    let out = check(false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("device: ONLINE"), "{text}");
    for l in ["bb0", "wl0", "mb0"] {
        assert!(text.contains(&format!("{l} (")), "{text}");
    }

    tb.captive(Uplink::Wifi, Some(PortalMode::Redirect));
    tb.cut_upstream(Uplink::Broadband);
    tb.drop_carrier(Uplink::Mobile);
    let out = check(true);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["online"], true, "wifi still reaches the internet: {v:#}");
    let link = |n: &str| {
        v["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(link("bb0")["reachable"], false);
    assert_eq!(link("mb0")["carrier"], false);
    let wl = link("wl0");
    assert_eq!(wl["reachable"], true);
    assert!(wl["degraded_by"].to_string().contains("captive"), "{wl:#}");

    tb.cut_upstream(Uplink::Wifi);
    let out = check(false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("OFFLINE"), "{text}");
    assert!(text.contains("no answer within the timeout"), "{text}");
}

#[test]
fn agent_reloads_on_sighup_refuses_bad_config_and_stops_cleanly() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let mut agent = Agent::start(&tb, &config(""));
    agent.all_up();

    // Metrics are served next to the status.
    let out = tb
        .exec_dev([
            "python3",
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:9477/metrics').read().decode())",
        ])
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&out.stdout);
    for name in [
        "linkwatch_link_state{",
        "linkwatch_probe_rtt_seconds_bucket{",
        "linkwatch_link_loss_ratio{",
        "linkwatch_link_transitions_total{",
        "linkwatch_device_online 1",
    ] {
        assert!(metrics.contains(name), "{name} missing from\n{metrics}");
    }
    // Label values are spelled as `status` spells them.
    assert!(metrics.contains("state=\"up\"} 1"), "{metrics}");
    assert!(!metrics.contains("state=\"Up\""), "{metrics}");

    // A broken config is refused and the old one kept.
    std::fs::write(&agent.config, "[health]\ndown_after = 0\n").unwrap();
    agent.signal("-HUP");
    wait_until(Duration::from_secs(5), "reload refusal logged", || {
        agent.log_text().contains("NOT reloaded")
    });
    assert!(agent.log_text().contains("health.down_after"));
    assert!(agent.pid_running());
    assert!(agent.status().online);

    // A good config drops the mobile link.
    let cfg = config("").replace("[[link]]\nname = \"mb0\"\nkind = \"mobile\"\n", "");
    std::fs::write(&agent.config, cfg).unwrap();
    agent.signal("-HUP");
    wait_until(Duration::from_secs(5), "mb0 dropped after reload", || {
        agent.status().links.iter().all(|l| l.name != "mb0")
    });

    agent.signal("-TERM");
    let mut child = agent.child.take().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "agent did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit {status:?}");
    assert!(agent.log_text().contains("agent stopped cleanly"));
}

#[test]
fn probe_without_permission_is_named_and_other_links_keep_being_measured() {
    if !testbed_available() {
        return;
    }
    if !common::require_tool("setpriv") {
        return;
    }
    let tb = Testbed::new();
    // No unprivileged ICMP in the device namespace, and the agent without CAP_NET_RAW.
    common::run(&mut tb.exec_dev(["sysctl", "-q", "-w", "net.ipv4.ping_group_range=1 0"]));
    let cfg = config("")
        .replace(
            "[[link]]\nname = \"wl0\"\nkind = \"wifi\"\n",
            "[[link]]\nname = \"wl0\"\nkind = \"wifi\"\nprobes = [ { type = \"icmp\", target = \"192.0.2.1\" }, { type = \"tcp\", target = \"192.0.2.1:80\" } ]\n",
        )
        .replace("[[link]]\nname = \"mb0\"\nkind = \"mobile\"\n", "");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    let cfg = format!(
        "{cfg}\n[upload]\nspool_path = \"{}\"\n",
        dir.path().join("spool.db").display()
    );
    std::fs::write(&path, &cfg).unwrap();
    let log = dir.path().join("agent.log");
    let mut child = tb
        .exec_dev([
            "setpriv",
            "--bounding-set=-net_raw",
            "--inh-caps=-net_raw",
            BIN,
            "agent",
            "--config",
            path.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = || -> Option<AgentStatus> {
        let out = tb
            .exec_dev([BIN, "status", "--json", "--config", path.to_str().unwrap()])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    };
    let find = |s: &AgentStatus, n: &str| s.links.iter().find(|l| l.name == n).cloned();
    let link = |s: &AgentStatus, n: &str| find(s, n).unwrap();
    let mut last = None;
    let ok = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        last = status();
        // A status taken while the agent starts may not list every link yet.
        last.as_ref().is_some_and(|s| {
            find(s, "wl0").is_some_and(|l| l.state == LinkState::Up)
                && find(s, "bb0").is_some_and(|l| l.reason.as_deref() == Some("permission"))
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(ok, "last status {last:#?}\nlog:\n{log}");
    let s = last.unwrap();
    let bb = link(&s, "bb0");
    assert_eq!(bb.state, LinkState::Down);
    assert!(
        bb.warnings.iter().any(|w| w.contains("CAP_NET_RAW")),
        "{bb:#?}"
    );
    let wl = link(&s, "wl0");
    assert!(
        wl.warnings.iter().any(|w| w.contains("not permitted")),
        "{wl:#?}"
    );
    assert!(log.contains("CAP_NET_RAW"), "the log says it too:\n{log}");
}

#[test]
fn declared_interface_that_does_not_exist_is_absent_with_a_warning() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let cfg = config("").replace("name = \"mb0\"", "name = \"wwan7\"");
    let agent = Agent::start(&tb, &cfg);
    agent.wait_state("bb0", LinkState::Up, Duration::from_secs(10), |_| {});
    let s = agent.status();
    let l = s.links.iter().find(|l| l.name == "wwan7").unwrap();
    assert_eq!(l.state, LinkState::Absent);
    assert!(
        l.warnings.iter().any(|w| w.contains("does not exist")),
        "{l:#?}"
    );
    assert!(agent.log_text().contains("interface does not exist"));
}
