//! Failover for real: the agent in `routes` mode on a gateway namespace with
//! three uplinks. Every check asks the kernel (`ip route get`) and sends a real
//! HTTP request from the gateway, unbound, to see which uplink carries it
//! (the internet's server answers with the source address it saw).

mod common;

use common::agent::{Agent, BIN};
use common::{Testbed, Uplink, testbed_available, wait_until};
use linkwatch::wire::LinkState;
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn config(mode: &str, extra_failover: &str) -> String {
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
{extra_failover}

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

/// The interface the kernel would use for internet traffic.
fn kernel_route(tb: &Testbed) -> String {
    let out = common::run(&mut tb.exec_dev(["ip", "-j", "route", "get", "192.0.2.1"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j route get");
    v[0]["dev"].as_str().unwrap_or_default().to_string()
}

/// The uplink a real, unbound HTTP request from the gateway leaves through.
fn http_via(tb: &Testbed) -> Option<String> {
    let out = tb
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

fn own_routes(tb: &Testbed) -> Vec<String> {
    let out = common::run(&mut tb.exec_dev(["ip", "route", "show", "default", "proto", "252"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn wait_route(tb: &Testbed, agent: &Agent, link: &str, deadline: Duration) -> Duration {
    let start = Instant::now();
    while kernel_route(tb) != link {
        assert!(
            start.elapsed() < deadline,
            "route not on {link} within {deadline:?}: {}; routes {:?}\nlog:\n{}",
            kernel_route(tb),
            own_routes(tb),
            agent.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

fn assert_traffic_via(tb: &Testbed, link: &str) {
    let mut last = None;
    wait_until(Duration::from_secs(5), "HTTP over the chosen link", || {
        last = http_via(tb);
        last.as_deref() == Some(link)
    });
}

#[test]
fn silent_cut_moves_traffic_and_heal_moves_it_back_only_after_the_hold_down() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config("routes", ""));
    agent.all_up();
    wait_route(&tb, &agent, "bb0", Duration::from_secs(5));
    assert_eq!(own_routes(&tb).len(), 3, "{:?}", own_routes(&tb));
    assert_traffic_via(&tb, "bb0");

    tb.cut_upstream(Uplink::Broadband);
    let took = wait_route(&tb, &agent, "wl0", Duration::from_secs(10));
    eprintln!("silent cut: route moved after {took:?}");
    assert_traffic_via(&tb, "wl0");
    let s = agent.status();
    assert_eq!(s.failover.chosen.as_deref(), Some("wl0"));
    assert_eq!(s.failover.cause, "current-down");

    tb.heal_upstream(Uplink::Broadband);
    agent.wait_state("bb0", LinkState::Up, Duration::from_secs(15), |_| {});
    let up_at = Instant::now();
    // While bb0 waits out its hold-down, traffic stays on wl0 and status says why.
    let s = agent.status();
    assert_eq!(kernel_route(&tb), "wl0");
    assert_eq!(
        s.failover.pending.as_ref().map(|p| p.0.as_str()),
        Some("bb0"),
        "{:#?}",
        s.failover
    );
    wait_route(&tb, &agent, "bb0", Duration::from_secs(10));
    let waited = up_at.elapsed();
    assert!(
        waited >= Duration::from_millis(2500),
        "failed back after {waited:?}, before the 3 s hold-down"
    );
    assert_traffic_via(&tb, "bb0");
    assert_eq!(agent.status().failover.cause, "fail-back");
    assert_eq!(
        own_routes(&tb).len(),
        3,
        "no duplicates: {:?}",
        own_routes(&tb)
    );
}

#[test]
fn carrier_loss_on_the_active_link_moves_at_once() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config("routes", ""));
    agent.all_up();
    wait_route(&tb, &agent, "bb0", Duration::from_secs(5));
    let start = Instant::now();
    tb.drop_carrier(Uplink::Broadband);
    wait_route(&tb, &agent, "wl0", Duration::from_secs(2));
    eprintln!("carrier loss: route moved after {:?}", start.elapsed());
    assert_traffic_via(&tb, "wl0");
    wait_until(Duration::from_secs(2), "policy chose wl0", || {
        agent.status().failover.chosen.as_deref() == Some("wl0")
    });
}

#[test]
fn twenty_percent_loss_on_the_active_link_causes_no_failover() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config("routes", ""));
    agent.all_up();
    wait_route(&tb, &agent, "bb0", Duration::from_secs(5));
    let before = agent.status().failover.switches;
    tb.set_loss(Uplink::Broadband, 20);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        assert_eq!(kernel_route(&tb), "bb0", "log:\n{}", agent.log_tail());
        std::thread::sleep(Duration::from_millis(250));
    }
    let s = agent.status();
    let bb = s.links.iter().find(|l| l.name == "bb0").unwrap();
    assert_ne!(bb.state, LinkState::Down);
    assert_eq!(s.failover.switches, before, "{:#?}", s.failover);
}

#[test]
fn a_flapping_primary_gets_a_growing_hold_down() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config("routes", ""));
    agent.all_up();
    wait_route(&tb, &agent, "bb0", Duration::from_secs(5));
    let mut waits = vec![];
    for _ in 0..3 {
        tb.drop_carrier(Uplink::Broadband);
        wait_route(&tb, &agent, "wl0", Duration::from_secs(3));
        tb.restore_carrier(Uplink::Broadband);
        agent.wait_state("bb0", LinkState::Up, Duration::from_secs(15), |_| {});
        let up = Instant::now();
        wait_route(&tb, &agent, "bb0", Duration::from_secs(40));
        waits.push(up.elapsed());
    }
    eprintln!("fail-back waits while flapping: {waits:?}");
    assert!(waits[0] >= Duration::from_millis(2500), "{waits:?}");
    assert!(
        waits[1] >= Duration::from_millis(5500),
        "hold-down doubles: {waits:?}"
    );
    assert!(
        waits[2] >= Duration::from_millis(11000),
        "and doubles again: {waits:?}"
    );
}

#[test]
fn a_route_deleted_behind_the_agents_back_is_repaired() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config("routes", ""));
    agent.all_up();
    wait_route(&tb, &agent, "bb0", Duration::from_secs(5));
    // As a DHCP renew does: the interface's routes go away.
    common::run(&mut tb.exec_dev(["ip", "route", "flush", "dev", "bb0", "proto", "252"]));
    wait_until(Duration::from_secs(3), "own route repaired", || {
        own_routes(&tb).iter().any(|r| r.contains("dev bb0"))
    });
    assert_eq!(own_routes(&tb).len(), 3);
    assert_eq!(kernel_route(&tb), "bb0");
}

#[test]
fn sigkill_then_restart_leaves_no_duplicate_routes_and_sigterm_restores_the_table() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let dhcp_before = {
        let out = common::run(&mut tb.exec_dev(["ip", "route", "show", "default"]));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let mut agent = Agent::start(&tb, &config("routes", ""));
    agent.all_up();
    wait_route(&tb, &agent, "bb0", Duration::from_secs(5));
    agent.signal("-KILL");
    agent.wait_exit(Duration::from_secs(5));
    assert_eq!(own_routes(&tb).len(), 3, "routes stay after a crash");
    agent.restart();
    agent.all_up();
    wait_until(Duration::from_secs(5), "three own routes", || {
        own_routes(&tb).len() == 3
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        own_routes(&tb).len(),
        3,
        "no duplicates: {:?}",
        own_routes(&tb)
    );
    assert_eq!(kernel_route(&tb), "bb0");

    agent.signal("-TERM");
    let st = agent.wait_exit(Duration::from_secs(5));
    assert!(st.success());
    assert!(own_routes(&tb).is_empty(), "{:?}", own_routes(&tb));
    let out = common::run(&mut tb.exec_dev(["ip", "route", "show", "default"]));
    assert_eq!(String::from_utf8_lossy(&out.stdout), dhcp_before);
}

/// The interface the kernel would use for IPv6 internet traffic.
fn kernel_route6(tb: &Testbed) -> String {
    let out = common::run(&mut tb.exec_dev(["ip", "-j", "-6", "route", "get", "2001:db8:ff::1"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("ip -j route get");
    v[0]["dev"].as_str().unwrap_or_default().to_string()
}

fn own_routes6(tb: &Testbed) -> Vec<String> {
    let out =
        common::run(&mut tb.exec_dev(["ip", "-6", "route", "show", "default", "proto", "252"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn defaults(tb: &Testbed, family: &str) -> String {
    let out = common::run(&mut tb.exec_dev(["ip", family, "route", "show", "default"]));
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The uplink a real, unbound IPv6 HTTP request from the gateway leaves through.
fn http6_via(tb: &Testbed) -> Option<String> {
    let out = tb
        .exec_dev([
            "python3",
            "-c",
            "import urllib.request;print(urllib.request.urlopen('http://[2001:db8:ff::1]/whoami', timeout=2).read().decode())",
        ])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let who = String::from_utf8_lossy(&out.stdout).trim().to_string();
    Uplink::ALL
        .iter()
        .find(|u| u.dev_addr6().to_string() == who)
        .map(|u| u.iface().to_string())
}

fn wait_both(tb: &Testbed, agent: &Agent, link: &str) -> Duration {
    let start = Instant::now();
    wait_route(tb, agent, link, Duration::from_secs(10));
    while kernel_route6(tb) != link {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "IPv6 route not on {link}: {}; own {:?}\nlog:\n{}",
            kernel_route6(tb),
            own_routes6(tb),
            agent.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut last = None;
    wait_until(
        Duration::from_secs(5),
        "IPv4 and IPv6 traffic on the chosen link",
        || {
            last = http6_via(tb);
            http_via(tb).as_deref() == Some(link) && last.as_deref() == Some(link)
        },
    );
    start.elapsed()
}

#[test]
fn failover_moves_the_ipv4_and_the_ipv6_default_route() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let (before4, before6) = (defaults(&tb, "-4"), defaults(&tb, "-6"));
    let mut agent = Agent::start(&tb, &config("routes", ""));
    agent.all_up();
    wait_both(&tb, &agent, "bb0");
    // One own IPv6 route per link, via the gateway the system's route names,
    // metrics in preference order.
    let mut own6 = own_routes6(&tb);
    own6.sort();
    for (link, metric) in [
        (Uplink::Broadband, 10),
        (Uplink::Wifi, 20),
        (Uplink::Mobile, 30),
    ] {
        let want = format!(
            "default via {} dev {} metric {metric}",
            link.gateway6(),
            link.iface()
        );
        assert!(
            own6.iter().any(|r| r.starts_with(&want)),
            "{want} in {own6:?}"
        );
    }
    assert_eq!(own6.len(), 3, "{own6:?}");

    // A silent cut leaves the system's routes in place: only the agent moves
    // IPv6 traffic, together with IPv4.
    tb.cut_upstream(Uplink::Broadband);
    let took = wait_both(&tb, &agent, "wl0");
    eprintln!("silent cut: IPv4 and IPv6 on wl0 after {took:?}");
    tb.heal_upstream(Uplink::Broadband);
    wait_both(&tb, &agent, "bb0");

    // After a crash the leftovers are cleared and set up again, no duplicates.
    agent.signal("-KILL");
    agent.wait_exit(Duration::from_secs(5));
    assert_eq!(own_routes6(&tb).len(), 3, "routes stay after a crash");
    agent.restart();
    agent.all_up();
    wait_until(
        Duration::from_secs(5),
        "three own routes per family",
        || own_routes(&tb).len() == 3 && own_routes6(&tb).len() == 3,
    );
    // Whichever link answers first is chosen at once; broadband, first in
    // rank, takes over when its first round is in (a wait, not an assert:
    // the routes exist as soon as the first choice is made).
    wait_both(&tb, &agent, "bb0");
    assert_eq!(own_routes6(&tb).len(), 3, "no duplicates after the move");

    // A clean stop gives both tables back as the system set them.
    agent.signal("-TERM");
    assert!(agent.wait_exit(Duration::from_secs(5)).success());
    assert!(own_routes6(&tb).is_empty(), "{:?}", own_routes6(&tb));
    assert_eq!(defaults(&tb, "-4"), before4);
    assert_eq!(defaults(&tb, "-6"), before6);
}

#[test]
fn observe_mode_never_touches_routes() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config("observe", ""));
    agent.all_up();
    tb.cut_upstream(Uplink::Broadband);
    agent.wait_state("bb0", LinkState::Down, Duration::from_secs(10), |_| {});
    wait_until(Duration::from_secs(3), "policy reports its choice", || {
        agent.status().failover.chosen.as_deref() == Some("wl0")
    });
    assert!(own_routes(&tb).is_empty());
    assert_eq!(
        kernel_route(&tb),
        "bb0",
        "observe mode leaves the kernel's choice"
    );
    assert_eq!(agent.status().failover.mode, "observe");
}

#[test]
fn hooks_receive_the_documented_variables_and_a_hanging_hook_does_not_block() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    // Hooks run concurrently: each run writes its own file (a temporary
    // name first, renamed when complete), so every file is one whole block.
    let events = dir.path().join("events");
    std::fs::create_dir(&events).unwrap();
    let hook = dir.path().join("hook.sh");
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\nt=$(mktemp {d}/.tmp.XXXXXX)\nenv | grep ^LINKWATCH_ | sort > \"$t\"\n\
             mv \"$t\" \"$t.event\"\n\
             [ \"$LINKWATCH_EVENT\" = link ] && sleep 60\nexit 0\n",
            d = events.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let extra = format!("hook = \"{}\"\nhook_timeout = \"1s\"", hook.display());
    let agent = Agent::start(&tb, &config("routes", &extra));
    agent.all_up();
    wait_route(&tb, &agent, "bb0", Duration::from_secs(5));
    tb.cut_upstream(Uplink::Broadband);
    // Link hooks hang for 60 s and are killed after 1 s; failover goes on.
    wait_route(&tb, &agent, "wl0", Duration::from_secs(10));
    // Every finished hook run's block.
    let blocks = || -> Vec<String> {
        std::fs::read_dir(&events)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "event"))
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    };
    let find = |want: &[&str]| {
        blocks()
            .into_iter()
            .find(|b| want.iter().all(|w| b.lines().any(|l| l == *w)))
    };
    let mut failover = None;
    wait_until(Duration::from_secs(5), "failover hook ran", || {
        failover = find(&["LINKWATCH_EVENT=failover", "LINKWATCH_ACTIVE=wl0"]);
        failover.is_some()
    });
    let failover = failover.unwrap();
    for v in [
        "LINKWATCH_OLD_ACTIVE=bb0",
        "LINKWATCH_CAUSE=current-down",
        "LINKWATCH_LINK=wl0",
    ] {
        assert!(failover.lines().any(|l| l == v), "{v} in {failover}");
    }
    assert!(
        failover.lines().any(|l| l.starts_with("LINKWATCH_REASON=")),
        "LINKWATCH_REASON in {failover}"
    );
    let mut link = None;
    wait_until(Duration::from_secs(5), "bb0's link hook ran", || {
        link = find(&["LINKWATCH_LINK=bb0", "LINKWATCH_NEW_STATE=down"]);
        link.is_some()
    });
    let link = link.unwrap();
    for v in [
        "LINKWATCH_EVENT=link",
        "LINKWATCH_KIND=broadband",
        "LINKWATCH_OLD_STATE=up",
        "LINKWATCH_REASON=probes",
    ] {
        assert!(link.lines().any(|l| l == v), "{v} in {link}");
    }
    wait_until(Duration::from_secs(5), "timeout logged", || {
        agent.log_text().contains("hook timed out and was killed")
    });
}

#[test]
fn prefer_moves_the_route_and_auto_gives_it_back() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config("routes", ""));
    agent.all_up();
    wait_route(&tb, &agent, "bb0", Duration::from_secs(5));
    let out = agent.cli(&["prefer", "mb0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_route(&tb, &agent, "mb0", Duration::from_secs(3));
    assert_traffic_via(&tb, "mb0");
    let s = agent.status();
    assert_eq!(s.failover.preferred.as_deref(), Some("mb0"));
    assert_eq!(s.failover.cause, "manual");
    let table = String::from_utf8_lossy(&agent.cli(&["status"]).stdout).to_string();
    assert!(table.contains("manual preference: mb0"), "{table}");

    let out = agent.cli(&["prefer", "nosuch0"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown link `nosuch0`"));

    let out = agent.cli(&["prefer", "--auto"]);
    assert!(out.status.success());
    wait_route(&tb, &agent, "bb0", Duration::from_secs(3));
    assert_eq!(agent.status().failover.preferred, None);
}

#[test]
fn routes_mode_without_cap_net_admin_refuses_to_start() {
    if !testbed_available() || !common::require_tool("setpriv") {
        return;
    }
    let tb = Testbed::new();
    let mut agent = Agent::spawn_with(
        &tb,
        &config("routes", ""),
        &[
            "setpriv",
            "--bounding-set=-net_admin",
            "--inh-caps=-net_admin",
        ],
    );
    let st = agent.wait_exit(Duration::from_secs(5));
    assert_eq!(st.code(), Some(2));
    assert!(
        agent.log_text().contains("CAP_NET_ADMIN"),
        "{}",
        agent.log_text()
    );
    assert!(own_routes(&tb).is_empty());
}

#[test]
fn conflicting_priorities_and_unknown_links_are_refused() {
    // No namespace needed: the config is refused before anything starts.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.toml");
    let check = |text: &str, key: &str| {
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new(BIN)
            .args(["validate", "--config", path.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("`{key}`")), "want {key}: {err}");
    };
    let base = config("routes", "");
    check(
        &base
            .replace(
                "name = \"wl0\"\nkind = \"wifi\"",
                "name = \"wl0\"\nkind = \"wifi\"\npriority = 5",
            )
            .replace(
                "name = \"bb0\"\nkind = \"broadband\"",
                "name = \"bb0\"\nkind = \"broadband\"\npriority = 5",
            ),
        "link[1].priority",
    );
    check(
        &config("routes", "manage = [\"bb0\", \"eth7\"]"),
        "failover.manage[1]",
    );
    check(&config("routes", "prefer = \"eth7\""), "failover.prefer");
    std::fs::write(&path, config("bogus", "")).unwrap();
    let out = std::process::Command::new(BIN)
        .args(["validate", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("bogus") && err.contains("routes"), "{err}");
}

#[test]
fn dry_run_logs_route_changes_and_makes_none() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let agent = Agent::start(&tb, &config("routes", "dry_run = true"));
    agent.all_up();
    tb.cut_upstream(Uplink::Broadband);
    wait_until(Duration::from_secs(10), "policy moved to wl0", || {
        agent.status().failover.chosen.as_deref() == Some("wl0")
    });
    wait_until(Duration::from_secs(5), "dry-run log", || {
        agent.log_text().contains("dry run: would change route")
    });
    assert!(own_routes(&tb).is_empty(), "{:?}", own_routes(&tb));
    assert_eq!(kernel_route(&tb), "bb0", "the kernel's table is untouched");
}

#[test]
fn failover_flushes_the_old_links_tracked_flows() {
    if !testbed_available() || !common::require_tool("conntrack") {
        return;
    }
    let tb = Testbed::new();
    // Make the device namespace track connections, as a NAT gateway does.
    common::run(&mut tb.exec_dev(["nft", "add", "table", "inet", "lwct"]));
    common::run(&mut tb.exec_dev([
        "nft",
        "add chain inet lwct out { type filter hook output priority 0; }",
    ]));
    common::run(&mut tb.exec_dev(["nft", "add rule inet lwct out ct state new counter"]));
    let agent = Agent::start(&tb, &config("routes", "conntrack_flush = \"on-failover\""));
    agent.all_up();
    wait_route(&tb, &agent, "bb0", Duration::from_secs(5));
    // A flow of the officer's, leaving through bb0.
    common::run(&mut tb.exec_dev([
        "python3",
        "-c",
        "import socket;socket.socket(socket.AF_INET,socket.SOCK_DGRAM).sendto(b'x',('192.0.2.1',9))",
    ]));
    let flows = || {
        let out = common::run(&mut tb.exec_dev(["conntrack", "-L", "-p", "udp"]));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("src=10.11.0.2") && l.contains("dport=9 "))
            .count()
    };
    assert_eq!(flows(), 1, "the flow is tracked");
    tb.cut_upstream(Uplink::Broadband);
    wait_route(&tb, &agent, "wl0", Duration::from_secs(10));
    wait_until(Duration::from_secs(5), "old link's flow flushed", || {
        flows() == 0
    });
    wait_until(Duration::from_secs(5), "flush logged", || {
        agent.log_text().contains("connection tracking flushed")
    });
}
