//! The `whatsapp` preset end to end, pointed at stand-ins inside the testbed
//! with `[preset.whatsapp]`: the testbed's dnsmasq answers `chat.example.net`
//! and `web.example.com`
//! with documentation addresses, a TCP listener stands in on port 5222 and
//! an HTTPS server with a certificate of the test's own CA (trusted through
//! `probe_defaults.ca_file`). `probe_defaults.nameservers` sends the
//! preset's DNS check and every name lookup to the test's resolver; a guard
//! in the device namespace counts (and drops) anything the agent sends
//! outside the documentation ranges, and the test asserts it stays zero.
//! Needs root (skipped otherwise).

mod common;

use common::agent::Agent;
use common::tls::{TestCa, Validity};
use common::*;
use linkwatch::wire::LinkState;
use std::net::SocketAddr;
use std::time::Duration;

/// Where the stand-ins live (inet's spare addresses).
fn chat() -> SocketAddr {
    SocketAddr::new(spare_addr(0).into(), 5222)
}
fn web() -> SocketAddr {
    SocketAddr::new(spare_addr(1).into(), 443)
}
/// An HTTPS server for web.example.com whose certificate comes from a CA
/// nobody trusts (as a TLS-intercepting middlebox would present).
fn impostor() -> SocketAddr {
    SocketAddr::new(spare_addr(2).into(), 443)
}

fn good_names(tb: &Testbed) {
    tb.set_hosts(&[
        ("chat.example.net", chat().ip()),
        ("web.example.com", web().ip()),
    ]);
}

/// Drop and count what the device would send outside the testbed's ranges.
const GUARD: &str = r#"table inet lw_guard {
  chain out {
    type filter hook output priority filter; policy accept;
    ip daddr != { 10.0.0.0/8, 127.0.0.0/8, 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 } counter drop
    ip6 daddr != { ::1, 2001:db8::/32, fe80::/10, ff02::/16 } counter drop
  }
}"#;

fn guard_counts(tb: &Testbed) -> Vec<u64> {
    let out = run(&mut tb.exec_dev(["nft", "-j", "list", "table", "inet", "lw_guard"]));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("nft JSON");
    v["nftables"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o.get("rule"))
        .flat_map(|r| r["expr"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.get("counter").map(|c| c["packets"].as_u64().unwrap()))
        .collect()
}

fn config(ca_file: &std::path::Path) -> String {
    format!(
        r#"presets = ["whatsapp"]
probes = [
  {{ type = "icmp", target = "192.0.2.1" }},
  {{ type = "icmp", target = "192.0.2.2" }},
  {{ type = "icmp", target = "203.0.113.10" }},
]

[agent]
log_format = "text"
log_level = "debug"

[discovery]
enabled = false

[health]
app_interval_active = "1s"
app_interval_standby = "1s"
app_interval_metered_standby = "1s"

[probe_defaults]
nameservers = ["{DNS_SERVER}"]
ca_file = "{}"

[preset.whatsapp]
chat_host = "chat.example.net"
web_url = "https://web.example.com/"

[[link]]
name = "bb0"
kind = "broadband"
"#,
        ca_file.display()
    )
}

/// `linkwatch check --json`: bb0's failed application checks, as
/// `probe (reason)`.
fn degraded_by(agent: &Agent) -> Vec<String> {
    let out = agent.cli(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check --json ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let bb = &v["links"][0];
    assert_eq!(bb["name"], "bb0");
    let mut by: Vec<String> = bb["degraded_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect();
    by.sort();
    by
}

/// Wait until bb0 is `state` with `reason`.
fn wait_for(agent: &Agent, state: LinkState, reason: Option<&str>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (s, r) = agent.state("bb0");
        if s == state && r.as_deref() == reason {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "bb0 not {state} ({reason:?}) in time: {s} ({r:?})\nlog:\n{}",
            agent.log_tail()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn whatsapp_preset_passes_against_stand_ins_and_names_each_failure() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("linkwatch test CA");
    let ca_file = ca.write(dir.path(), "ca");
    let cert = ca.server_cert(dir.path(), "web", &["web.example.com"], Validity::Current);
    let stranger = TestCa::new("a CA nobody trusts");
    let fake = stranger.server_cert(dir.path(), "fake", &["web.example.com"], Validity::Current);
    tb.serve_http(&[
        (chat(), None),
        (web(), Some(&cert)),
        (impostor(), Some(&fake)),
    ]);
    good_names(&tb);
    run(&mut tb.exec_dev(["nft", GUARD]));

    let agent = Agent::start(&tb, &config(&ca_file));
    // The preset's probes as planned: its DNS check asks the test's resolver.
    let text = String::from_utf8_lossy(&agent.cli(&["check"]).stdout).to_string();
    assert!(
        text.contains(&format!("dns chat.example.net @{DNS_SERVER}:53")),
        "{text}"
    );
    // No DNS check asks any other resolver (the preset's own public one).
    let ours = format!("@{DNS_SERVER}:53");
    assert!(
        text.lines()
            .filter(|l| l.contains("dns ") && l.contains(" @"))
            .all(|l| l.contains(&ours)),
        "{text}"
    );

    // Everything answers: the preset passes.
    wait_for(&agent, LinkState::Up, None);
    assert_eq!(degraded_by(&agent), Vec::<String>::new());

    // Each stand-in fails in turn; the link is degraded with the reason that
    // says which, `check` names the probe, and it recovers.
    let dns_probe = format!("dns chat.example.net @{DNS_SERVER}:53 (dns)");
    let tcp_probe = |why: &str| format!("tcp chat.example.net:5222 ({why})");
    let web_probe = |why: &str| format!("http https://web.example.com/ ({why})");

    // The resolver no longer knows chat.example.net (NXDOMAIN): the DNS check
    // fails, and so does the TCP check's lookup.
    tb.set_hosts(&[("web.example.com", web().ip())]);
    wait_for(&agent, LinkState::Degraded, Some("dns"));
    assert_eq!(degraded_by(&agent), vec![dns_probe, tcp_probe("dns")]);
    good_names(&tb);
    wait_for(&agent, LinkState::Up, None);

    // The chat port refuses connections.
    tb.refuse_tcp(chat());
    wait_for(&agent, LinkState::Degraded, Some("app-network"));
    assert_eq!(degraded_by(&agent), vec![tcp_probe("network")]);
    tb.accept_tcp(chat());
    wait_for(&agent, LinkState::Up, None);

    // web.example.com answers with a certificate of an unknown CA.
    tb.set_hosts(&[
        ("chat.example.net", chat().ip()),
        ("web.example.com", impostor().ip()),
    ]);
    wait_for(&agent, LinkState::Degraded, Some("tls-cert"));
    assert_eq!(degraded_by(&agent), vec![web_probe("tls-cert")]);
    let out = String::from_utf8_lossy(&agent.cli(&["check"]).stdout).to_string();
    assert!(out.contains("unknown certificate authority"), "{out}");
    good_names(&tb);
    wait_for(&agent, LinkState::Up, None);

    // The web endpoint is down.
    tb.refuse_tcp(web());
    wait_for(&agent, LinkState::Degraded, Some("app-network"));
    assert_eq!(degraded_by(&agent), vec![web_probe("network")]);
    tb.accept_tcp(web());
    wait_for(&agent, LinkState::Up, None);

    // The answers came from the test's resolver, and nothing was sent
    // outside the testbed's documentation ranges.
    let log = std::fs::read_to_string(tb.log_dir().join("dnsmasq.log")).unwrap();
    for name in ["chat.example.net", "web.example.com"] {
        let q = format!("query[A] {name} from {}", Uplink::Broadband.dev_addr());
        assert!(log.contains(&q), "no `{q}` in the dnsmasq log");
    }
    let counts = guard_counts(&tb);
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert_eq!(
        counts,
        vec![0, 0],
        "packets to addresses outside the testbed"
    );
}
