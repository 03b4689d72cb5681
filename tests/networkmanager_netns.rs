//! `failover.mode = "networkmanager"` against a real NetworkManager that manages the
//! testbed's three uplinks on its own private bus (see `tests/common/nm.rs`). Every check asks
//! the kernel which link carries internet traffic (`ip route get`, and a real HTTP request
//! from the device that the internet's server answers with the source address it saw) and
//! NetworkManager what its saved profiles say.

mod common;

use common::agent::{Agent, BIN};
use common::nm::{Connectivity, NmBed, NmOptions, nm_available};
use common::{Uplink, wait_until};
use linkwatch::wire::{AgentStatus, LinkState};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The agent's state file (beside its spool).
const STATE_FILE: &str = "networkmanager-changes.json";

fn config(mode: &str) -> String {
    format!(
        r#"presets = []
probes = [
  {{ type = "icmp", target = "192.0.2.1" }},
  {{ type = "icmp", target = "192.0.2.2" }},
  {{ type = "icmp", target = "203.0.113.10" }},
]

[agent]
status_listen = "127.0.0.1:9477"
log_format = "text"
log_level = "debug"

[discovery]
enabled = false

[health]
interval_standby = "1s"
interval_metered_standby = "1s"

[failover]
mode = "{mode}"
hold_down = "3s"

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

/// The agent on the laptop: in NetworkManager's mount namespace, on its bus.
fn start_agent<'a>(nm: &'a NmBed, mode: &str) -> Agent<'a> {
    let prefix = nm.agent_prefix();
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let bus = nm.bus_address();
    let agent = Agent::spawn_env(
        &nm.tb,
        &config(mode),
        &prefix,
        &[("DBUS_SYSTEM_BUS_ADDRESS", &bus)],
    );
    wait_until(Duration::from_secs(10), "agent status listener", || {
        agent.try_status().is_some()
    });
    agent
}

fn wait_mode(agent: &Agent, mode: &str) -> AgentStatus {
    let start = Instant::now();
    loop {
        let s = agent.status();
        if s.failover.mode == mode {
            return s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "mode not {mode}: {:#?}\nlog:\n{}",
            s.failover,
            agent.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The uplink a real, unbound HTTP request from the laptop leaves through.
fn http_via(nm: &NmBed) -> Option<String> {
    let out = nm
        .tb
        .exec_dev([
            "python3",
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://192.0.2.1/whoami', timeout=2).read().decode())",
        ])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let who = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Uplink::ALL
        .iter()
        .find(|u| u.dev_addr().to_string() == who)
        .map(|u| u.iface().to_string())
}

fn assert_traffic_via(nm: &NmBed, link: Uplink) {
    let mut last = None;
    wait_until(Duration::from_secs(5), "HTTP over the chosen link", || {
        last = http_via(nm);
        last.as_deref() == Some(link.iface())
    });
}

/// Every profile's keyfile, byte for byte.
fn profiles(nm: &NmBed) -> Vec<Vec<u8>> {
    Uplink::ALL
        .iter()
        .map(|l| std::fs::read(nm.profile_path(*l)).unwrap())
        .collect()
}

fn wait_routes(nm: &NmBed, want: &[(String, u32)], ipv6: bool, agent: &Agent) {
    let start = Instant::now();
    while nm.default_routes(ipv6) != want {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "default routes (IPv6 {ipv6}) not back: {:?}, want {want:?}\nlog:\n{}",
            nm.default_routes(ipv6),
            agent.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stop(agent: &mut Agent) {
    agent.signal("-TERM");
    let st = agent.wait_exit(Duration::from_secs(10));
    assert!(st.success(), "agent exit {st:?}\n{}", agent.log_tail());
}

#[test]
fn the_testbed_runs_a_real_networkmanager_that_owns_the_routes() {
    if !nm_available() {
        return;
    }
    let nm = NmBed::new(NmOptions::default());
    // Laptop metrics: bb0 at NetworkManager's default for its type, wl0 600, mb0 700.
    let routes = nm.default_routes(false);
    assert_eq!(
        routes,
        vec![
            ("bb0".to_string(), 100),
            ("mb0".to_string(), 700),
            ("wl0".to_string(), 600)
        ],
        "IPv4 default routes"
    );
    assert_eq!(nm.default_routes(true), routes, "IPv6 default routes");
    assert_eq!(nm.kernel_route(false), "bb0");
    assert_eq!(nm.kernel_route(true), "bb0");
    assert_eq!(nm.profile_metric(Uplink::Broadband), -1);
    let general = nm.nmcli(&["-t", "-f", "CONNECTIVITY", "general"]);
    assert_eq!(general.trim(), "full", "connectivity check");

    // A change applied to the device (not the profile) moves the kernel's route at once.
    let before = profiles(&nm);
    nm.nmcli(&["device", "modify", "bb0", "ipv4.route-metric", "650"]);
    nm.wait_kernel_route(Uplink::Wifi, Duration::from_secs(5), String::new);
    assert_eq!(nm.profile_metric(Uplink::Broadband), -1);
    assert_eq!(profiles(&nm), before);

    // Anyone but root is denied (auth-polkit=root-only).
    let out = nm
        .tb
        .exec_dev([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "nmcli",
            "device",
            "modify",
            "bb0",
            "ipv4.route-metric",
            "50",
        ])
        .env("DBUS_SYSTEM_BUS_ADDRESS", nm.bus_address())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not authorized"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_cut_upstream_moves_the_route_through_networkmanager_and_a_clean_stop_leaves_nothing() {
    if !nm_available() {
        return;
    }
    let nm = NmBed::new(NmOptions::default());
    let routes4 = nm.default_routes(false);
    let routes6 = nm.default_routes(true);
    let saved = profiles(&nm);
    let mut agent = start_agent(&nm, "auto");
    agent.all_up();
    let s = wait_mode(&agent, "networkmanager");
    assert!(
        s.failover
            .mode_reason
            .starts_with("auto: NetworkManager 1.")
            && s.failover
                .mode_reason
                .contains("connectivity checked every 5m at http://probe.test/generate_204"),
        "{}",
        s.failover.mode_reason
    );
    // Nothing changed while every link works.
    assert_eq!(nm.default_routes(false), routes4);
    assert_eq!(nm.kernel_route(false), "bb0");

    // `validate` and `status` say which mode applies and why.
    let v = String::from_utf8_lossy(&agent.cli(&["validate"]).stdout).to_string();
    assert!(
        v.contains("failover: networkmanager (auto: NetworkManager 1."),
        "{v}"
    );
    assert!(
        v.contains("bb0: managed by NetworkManager, connection `lw-bb0`, route metric 100 (NetworkManager's default)"),
        "{v}"
    );

    nm.tb.cut_upstream(Uplink::Broadband);
    let took = nm.wait_kernel_route(Uplink::Wifi, Duration::from_secs(10), || agent.log_tail());
    eprintln!("silent cut under NetworkManager: kernel route on wl0 after {took:?}");
    assert_eq!(nm.kernel_route(true), "wl0", "IPv6 follows");
    assert_traffic_via(&nm, Uplink::Wifi);
    // Only the applied connection changed: the saved profiles are as the officer left them.
    assert_eq!(profiles(&nm), saved);
    assert_eq!(nm.profile_metric(Uplink::Broadband), -1);
    let state = agent.dir.path().join(STATE_FILE);
    assert!(state.exists(), "what was changed is written down");
    assert_eq!(agent.status().failover.chosen.as_deref(), Some("wl0"));
    // Down, so behind both working links (wl0 600, mb0 700): shown once the
    // round that set it has ended (the kernel route may move first).
    let start = Instant::now();
    loop {
        let bb0 = agent
            .status()
            .failover
            .networkmanager
            .and_then(|n| n.links.into_iter().find(|l| l.name == "bb0"))
            .expect("bb0 in NetworkManager's status");
        if bb0.metric_v4 == Some(701) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "bb0's metric not shown as 701 within 10 s: {bb0:?}\n{}",
            agent.log_tail()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let text = String::from_utf8_lossy(&agent.cli(&["status"]).stdout).to_string();
    assert!(text.contains("route: wl0 (networkmanager mode)"), "{text}");
    assert!(text.contains("bb0: connection lw-bb0"), "{text}");

    // Heal: back to bb0 only after the hold-down.
    nm.tb.heal_upstream(Uplink::Broadband);
    agent.wait_state("bb0", LinkState::Up, Duration::from_secs(15), |_| {});
    let up_at = Instant::now();
    assert_eq!(nm.kernel_route(false), "wl0", "before the hold-down");
    nm.wait_kernel_route(Uplink::Broadband, Duration::from_secs(15), || {
        agent.log_tail()
    });
    let waited = up_at.elapsed();
    eprintln!("fail-back under NetworkManager after {waited:?} (hold-down 3 s)");
    assert!(
        waited >= Duration::from_millis(2500),
        "failed back after {waited:?}, before the 3 s hold-down"
    );
    assert_traffic_via(&nm, Uplink::Broadband);
    assert_eq!(agent.status().failover.cause, "fail-back");

    // Cut again, then stop cleanly while bb0 is demoted: everything as before.
    nm.tb.cut_upstream(Uplink::Broadband);
    nm.wait_kernel_route(Uplink::Wifi, Duration::from_secs(10), || agent.log_tail());
    stop(&mut agent);
    assert!(
        agent.log_text().contains("putting back the route metrics"),
        "{}",
        agent.log_tail()
    );
    assert!(!state.exists(), "state file removed");
    // NetworkManager still penalises bb0 (its own check fails), so compare the settings'
    // metrics after healing: exactly the ones before the agent ran.
    nm.tb.heal_upstream(Uplink::Broadband);
    let _ = nm.try_nmcli(&["networking", "connectivity", "check"]);
    wait_routes(&nm, &routes4, false, &agent);
    wait_routes(&nm, &routes6, true, &agent);
    assert_eq!(profiles(&nm), saved);
}

#[test]
fn with_connectivity_checking_off_the_metrics_alone_move_the_route_and_a_crash_is_undone() {
    if !nm_available() {
        return;
    }
    let nm = NmBed::new(NmOptions {
        connectivity: Connectivity::Off,
        ..NmOptions::default()
    });
    let routes4 = nm.default_routes(false);
    let routes6 = nm.default_routes(true);
    let mut agent = start_agent(&nm, "networkmanager");
    agent.all_up();
    let s = wait_mode(&agent, "networkmanager");
    assert!(
        s.failover.mode_reason.contains("connectivity checking off"),
        "{}",
        s.failover.mode_reason
    );
    nm.tb.cut_upstream(Uplink::Broadband);
    nm.wait_kernel_route(Uplink::Wifi, Duration::from_secs(10), || agent.log_tail());
    assert_traffic_via(&nm, Uplink::Wifi);
    assert_eq!(nm.route_metric(Uplink::Broadband, false), Some(701));

    // Killed: the change stays, and so does the note of it.
    agent.signal("-KILL");
    agent.wait_exit(Duration::from_secs(5));
    let state = agent.dir.path().join(STATE_FILE);
    assert!(state.exists());
    assert_eq!(nm.route_metric(Uplink::Broadband, false), Some(701));

    // The next start undoes it, whatever the mode: here `observe`, which changes nothing else.
    std::fs::write(
        &agent.config,
        std::fs::read_to_string(&agent.config)
            .unwrap()
            .replace("mode = \"networkmanager\"", "mode = \"observe\""),
    )
    .unwrap();
    agent.restart();
    wait_routes(&nm, &routes4, false, &agent);
    wait_routes(&nm, &routes6, true, &agent);
    wait_until(Duration::from_secs(5), "state file removed", || {
        !state.exists()
    });
    assert!(
        agent.log_text().contains("left by an earlier run"),
        "{}",
        agent.log_tail()
    );
    // Observing: the cut bb0 is down, and nothing moves the route any more.
    agent.wait_state("bb0", LinkState::Down, Duration::from_secs(15), |_| {});
    assert_eq!(agent.status().failover.mode, "observe");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(nm.kernel_route(false), "bb0");
}

#[test]
fn without_networkmanager_or_its_permission_the_agent_says_why_and_keeps_measuring() {
    if !nm_available() || !common::require_tool("setpriv") {
        return;
    }
    let nm = NmBed::new(NmOptions::default());

    // Permission: the agent as an unprivileged user with only CAP_NET_RAW (for its probes).
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let cfg_path = dir.path().join("agent.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "{}\n[upload]\nspool_path = \"{}\"\n",
            config("networkmanager"),
            dir.path().join("spool.db").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = dir.path().join("agent.log");
    let mut child = nm
        .tb
        .exec_dev([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=+net_raw",
            "--ambient-caps=+net_raw",
            BIN,
            "agent",
            "--config",
            cfg_path.to_str().unwrap(),
        ])
        .env("DBUS_SYSTEM_BUS_ADDRESS", nm.bus_address())
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let status = || -> Option<AgentStatus> {
        let out = nm
            .tb
            .exec_dev([
                BIN,
                "status",
                "--json",
                "--config",
                cfg_path.to_str().unwrap(),
            ])
            .output()
            .ok()?;
        serde_json::from_slice(&out.stdout).ok()
    };
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut last = None;
    let ok = (0..300).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        last = status();
        last.as_ref().is_some_and(|s| {
            s.links.len() == 3
                && s.links.iter().all(|l| l.state == LinkState::Up)
                && s.failover
                    .networkmanager
                    .as_ref()
                    .is_some_and(|n| n.error.is_some())
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "last status {last:#?}\nlog:\n{}", log_text());
    let s = last.unwrap();
    assert_eq!(s.failover.mode, "observe");
    let err = s.failover.networkmanager.unwrap().error.unwrap();
    assert!(
        err.contains("does not let this agent (uid 65534) control the network")
            && err.contains("run the agent as root")
            && err.contains("polkit"),
        "{err}"
    );
    assert!(
        log_text().contains("does not let this agent"),
        "{}",
        log_text()
    );
    assert_eq!(nm.kernel_route(false), "bb0");

    // NetworkManager not running (its links stay configured): observe, the error names the
    // fix, every link is measured; and once it runs again the agent uses it.
    nm.stop_nm();
    let agent = {
        let bus = nm.bus_address();
        let a = Agent::spawn_env(
            &nm.tb,
            &config("networkmanager"),
            &[],
            &[("DBUS_SYSTEM_BUS_ADDRESS", &bus)],
        );
        wait_until(Duration::from_secs(10), "agent status listener", || {
            a.try_status().is_some()
        });
        a
    };
    agent.all_up();
    let s = wait_mode(&agent, "observe");
    let err = s
        .failover
        .networkmanager
        .as_ref()
        .and_then(|n| n.error.clone())
        .unwrap_or_default();
    assert!(
        err.contains("NetworkManager is not running")
            && err.contains("systemctl start NetworkManager"),
        "{:#?}",
        s.failover
    );
    let text = String::from_utf8_lossy(&agent.cli(&["status"]).stdout).to_string();
    assert!(
        text.contains("error: NetworkManager is not running"),
        "{text}"
    );
    nm.start_nm();
    nm.wait_activated();
    wait_mode(&agent, "networkmanager");
    drop(agent);

    // No bus at all.
    let agent = Agent::spawn_env(
        &nm.tb,
        &config("networkmanager"),
        &[],
        &[(
            "DBUS_SYSTEM_BUS_ADDRESS",
            "unix:path=/nonexistent/linkwatch-test-bus",
        )],
    );
    wait_until(Duration::from_secs(10), "agent status listener", || {
        agent.try_status().is_some()
    });
    agent.all_up();
    let s = wait_mode(&agent, "observe");
    let err = s
        .failover
        .networkmanager
        .as_ref()
        .and_then(|n| n.error.clone())
        .unwrap_or_default();
    assert!(
        err.contains(
            "cannot reach the D-Bus system bus at unix:path=/nonexistent/linkwatch-test-bus"
        ) && err.contains("systemctl start dbus"),
        "{err}"
    );
}
