//! The probes against real sockets, offline: every packet goes to loopback
//! (127.0.0.0/8, ::1) through the interface `lo`. An in-process HTTP server
//! (axum) and a local dnsmasq stand in for the internet. That a probe really
//! leaves through the bound interface and no other is covered by the
//! network-namespace testbed.

use linkwatch::agent::probe::dns::{self, NameServers};
use linkwatch::agent::probe::icmp::IcmpProber;
use linkwatch::agent::probe::{ProbeFailure, ProbeOutcome, http, tcp};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(3);
const NO_IFACE: &str = "nonexistent0";

fn failure(o: &ProbeOutcome) -> &ProbeFailure {
    o.result.as_ref().expect_err("expected the probe to fail")
}

fn assert_ok(o: &ProbeOutcome, what: &str) {
    assert!(o.is_ok(), "{what}: {:?}", o.result);
    assert!(o.bytes > 0, "{what}: no bytes counted");
}

// ---------------------------------------------------------------- ICMP

/// ICMP needs CAP_NET_RAW (raw socket) or our group in ping_group_range
/// (datagram socket). Says why when it cannot run.
fn icmp_allowed() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_net_raw = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << 13) != 0);
    if cap_net_raw {
        return true;
    }
    let gid = std::fs::metadata("/proc/self")
        .map(|m| m.gid())
        .unwrap_or(u32::MAX);
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let mut it = range
        .split_whitespace()
        .filter_map(|w| w.parse::<u32>().ok());
    if let (Some(lo), Some(hi)) = (it.next(), it.next())
        && lo <= gid
        && gid <= hi
    {
        return true;
    }
    eprintln!(
        "SKIP: ICMP probes need CAP_NET_RAW or gid {gid} in net.ipv4.ping_group_range ({})",
        range.trim()
    );
    false
}

fn lo_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/net/if_inet6")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("00000000000000000000000000000001") && l.ends_with(" lo"))
}

#[tokio::test]
async fn icmp_to_loopback_through_lo_answers() {
    if !icmp_allowed() {
        return;
    }
    let p = IcmpProber::default();
    let o = p.probe("lo", IpAddr::V4(Ipv4Addr::LOCALHOST), T).await;
    assert_ok(&o, "icmp 127.0.0.1 via lo");
    // 2 * (IPv4 20 + ICMP 8 + payload 8)
    assert_eq!(o.bytes, 72);
    let rtt = o.result.unwrap();
    assert!(rtt < T, "rtt {rtt:?}");

    // Any 127/8 address answers on lo, through the same cached socket.
    let o = p.probe("lo", "127.0.0.2".parse().unwrap(), T).await;
    assert_ok(&o, "icmp 127.0.0.2 via lo");
    assert_eq!(p.cached_clients(), 1);

    let big = IcmpProber::with_payload(56);
    let o = big.probe("lo", IpAddr::V4(Ipv4Addr::LOCALHOST), T).await;
    assert_ok(&o, "icmp 56-byte payload");
    assert_eq!(o.bytes, 2 * (20 + 8 + 56));
}

#[tokio::test]
async fn icmp_v6_to_loopback_through_lo_answers() {
    if !icmp_allowed() {
        return;
    }
    if !lo_has_ipv6() {
        eprintln!("SKIP: ::1 is not configured on lo");
        return;
    }
    let p = IcmpProber::default();
    let o = p.probe("lo", IpAddr::V6(Ipv6Addr::LOCALHOST), T).await;
    assert_ok(&o, "icmp ::1 via lo");
    assert_eq!(o.bytes, 2 * (40 + 8 + 8));
}

#[tokio::test]
async fn concurrent_pings_on_one_prober_all_get_their_reply() {
    if !icmp_allowed() {
        return;
    }
    let p = IcmpProber::default();
    let target = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let outcomes = futures::future::join_all((0..20).map(|_| p.probe("lo", target, T))).await;
    for (i, o) in outcomes.iter().enumerate() {
        assert!(o.is_ok(), "ping {i}: {:?}", o.result);
    }
    assert_eq!(p.cached_clients(), 1);
}

#[tokio::test]
async fn icmp_through_a_missing_interface_says_so_and_caches_nothing() {
    if !icmp_allowed() {
        return;
    }
    let p = IcmpProber::default();
    let o = p.probe(NO_IFACE, IpAddr::V4(Ipv4Addr::LOCALHOST), T).await;
    assert_eq!(failure(&o), &ProbeFailure::NoSuchInterface);
    assert_eq!(o.bytes, 0);
    assert_eq!(p.cached_clients(), 0);
    // An empty name would unbind the socket: refused before any socket.
    let o = p.probe("", IpAddr::V4(Ipv4Addr::LOCALHOST), T).await;
    assert_eq!(failure(&o), &ProbeFailure::NoSuchInterface);
    // The same prober still works through a real interface.
    let o = p.probe("lo", IpAddr::V4(Ipv4Addr::LOCALHOST), T).await;
    assert_ok(&o, "icmp after a failure");
}

// ---------------------------------------------------------------- HTTP

async fn start_http() -> SocketAddr {
    use axum::Router;
    use axum::http::{StatusCode, header};
    use axum::response::Html;
    use axum::routing::get;

    let app = Router::new()
        .route("/generate_204", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/portal",
            get(|| async {
                (
                    StatusCode::FOUND,
                    [(header::LOCATION, "http://127.0.0.1/login")],
                )
            }),
        )
        .route("/login-page", get(|| async { Html("<html>login</html>") }))
        .route("/ok", get(|| async { "hello world" }))
        .route("/empty-200", get(|| async { StatusCode::OK }))
        .route(
            "/auth",
            get(|| async { StatusCode::NETWORK_AUTHENTICATION_REQUIRED }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                StatusCode::NO_CONTENT
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

#[tokio::test]
async fn http_expected_204_is_ok() {
    let addr = start_http().await;
    let url = format!("http://{addr}/generate_204");
    let o = http::probe("lo", &url, 204, None, true, T).await;
    assert_ok(&o, "204");
    // Handshake, request and headers at least.
    assert!(o.bytes > 400, "bytes {}", o.bytes);
}

#[tokio::test]
async fn http_redirect_instead_of_204_is_a_captive_portal() {
    let addr = start_http().await;
    let url = format!("http://{addr}/portal");
    let o = http::probe("lo", &url, 204, None, true, T).await;
    assert_eq!(
        failure(&o),
        &ProbeFailure::Captive {
            detail: "redirect to http://127.0.0.1/login".into()
        }
    );
    assert_eq!(failure(&o).reason_word(), "captive");
}

#[tokio::test]
async fn http_login_page_instead_of_204_is_a_captive_portal() {
    let addr = start_http().await;
    let url = format!("http://{addr}/login-page");
    let o = http::probe("lo", &url, 204, None, true, T).await;
    assert_eq!(
        failure(&o),
        &ProbeFailure::Captive {
            detail: "login page instead of 204".into()
        }
    );
    // Without captive detection the same answer is just a wrong status.
    let o = http::probe("lo", &url, 204, None, false, T).await;
    assert_eq!(
        failure(&o),
        &ProbeFailure::BadStatus {
            got: 200,
            expected: 204
        }
    );
}

#[tokio::test]
async fn http_511_is_a_captive_portal_and_empty_200_is_not() {
    let addr = start_http().await;
    let o = http::probe("lo", &format!("http://{addr}/auth"), 204, None, true, T).await;
    assert!(
        matches!(failure(&o), ProbeFailure::Captive { .. }),
        "{:?}",
        o.result
    );
    let o = http::probe(
        "lo",
        &format!("http://{addr}/empty-200"),
        204,
        None,
        true,
        T,
    )
    .await;
    assert_ok(&o, "empty 200 for 204");
}

#[tokio::test]
async fn http_body_is_checked_on_the_expected_status() {
    let addr = start_http().await;
    let url = format!("http://{addr}/ok");
    let o = http::probe("lo", &url, 200, Some("world"), false, T).await;
    assert_ok(&o, "body contains world");
    let o = http::probe("lo", &url, 200, Some("nope"), false, T).await;
    assert_eq!(failure(&o), &ProbeFailure::BodyMismatch);
}

#[tokio::test]
async fn http_wrong_status_without_captive_is_bad_status() {
    let addr = start_http().await;
    let o = http::probe("lo", &format!("http://{addr}/portal"), 204, None, false, T).await;
    assert_eq!(
        failure(&o),
        &ProbeFailure::BadStatus {
            got: 302,
            expected: 204
        }
    );
    let o = http::probe("lo", &format!("http://{addr}/missing"), 200, None, false, T).await;
    assert_eq!(
        failure(&o),
        &ProbeFailure::BadStatus {
            got: 404,
            expected: 200
        }
    );
    // A redirect that is expected is not followed and is fine.
    let o = http::probe("lo", &format!("http://{addr}/portal"), 302, None, true, T).await;
    assert_ok(&o, "expected 302");
}

#[tokio::test]
async fn http_slow_server_times_out() {
    let addr = start_http().await;
    let started = Instant::now();
    let o = http::probe(
        "lo",
        &format!("http://{addr}/slow"),
        204,
        None,
        true,
        Duration::from_millis(500),
    )
    .await;
    assert_eq!(failure(&o), &ProbeFailure::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn http_through_a_missing_interface_or_to_a_closed_port_fails() {
    let addr = start_http().await;
    let o = http::probe(
        NO_IFACE,
        &format!("http://{addr}/generate_204"),
        204,
        None,
        true,
        T,
    )
    .await;
    assert_eq!(failure(&o), &ProbeFailure::NoSuchInterface);

    let closed = closed_port().await;
    let o = http::probe("lo", &format!("http://{closed}/"), 204, None, true, T).await;
    assert_eq!(
        failure(&o),
        &ProbeFailure::Network("connection refused".into())
    );
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_network_failure() {
    let addr = start_http().await;
    let o = http::probe(
        "lo",
        &format!("https://{addr}/generate_204"),
        204,
        None,
        true,
        T,
    )
    .await;
    match failure(&o) {
        ProbeFailure::Network(s) => assert!(!s.is_empty()),
        other => panic!("{other:?}"),
    }
    assert_eq!(failure(&o).reason_word(), "network");
}

// ---------------------------------------------------------------- TCP

/// A loopback port nobody listens on (bound, then released).
async fn closed_port() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

#[tokio::test]
async fn tcp_connect_to_a_listener_is_ok() {
    let addr = start_http().await;
    let o = tcp::probe("lo", &addr.to_string(), T).await;
    assert_ok(&o, "tcp to the HTTP listener");
    assert_eq!(o.bytes, 6 * 52);
}

#[tokio::test]
async fn tcp_to_a_closed_port_is_refused() {
    let addr = closed_port().await;
    let o = tcp::probe("lo", &addr.to_string(), T).await;
    assert_eq!(
        failure(&o),
        &ProbeFailure::Network("connection refused".into())
    );
    assert_eq!(failure(&o).reason_word(), "network");
}

#[tokio::test]
async fn tcp_through_a_missing_interface_or_with_a_bad_target_fails() {
    let addr = start_http().await;
    let o = tcp::probe(NO_IFACE, &addr.to_string(), T).await;
    assert_eq!(failure(&o), &ProbeFailure::NoSuchInterface);
    let o = tcp::probe("lo", "no-port-here", T).await;
    assert!(matches!(failure(&o), ProbeFailure::Network(_)));
}

// ---------------------------------------------------------------- DNS

const DNSMASQ: &str = "/usr/sbin/dnsmasq";

/// A dnsmasq answering on 127.0.0.1:<port>, killed when dropped.
struct Dnsmasq {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free for both UDP and TCP on 127.0.0.1 right now.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A minimal DNS query for `name` type A, id 0x4c57.
fn raw_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x4c, 0x57, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Start dnsmasq, or say why the test is skipped.
async fn start_dnsmasq() -> Option<Dnsmasq> {
    if !Path::new(DNSMASQ).exists() {
        eprintln!("SKIP: {DNSMASQ} is not installed; the DNS probe tests need it");
        return None;
    }
    for _attempt in 0..5 {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(DNSMASQ)
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                &format!("--port={port}"),
                &format!("--pid-file={}", dir.path().join("dnsmasq.pid").display()),
                "--address=/probe.test/192.0.2.10",
                // Answer AAAA for probe.test locally (no records) instead of
                // refusing it for want of an upstream server.
                "--local=/probe.test/",
                "--address=/tcp.test/127.0.0.1",
                "--address=/gone.test/",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                eprintln!("SKIP: cannot start {DNSMASQ}: {e}");
                return None;
            }
        };
        let mut d = Dnsmasq {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        };
        if wait_until_answering(&mut d).await {
            return Some(d);
        }
        // Lost a race for the port, or it died: try another port.
    }
    panic!("dnsmasq did not start answering");
}

async fn wait_until_answering(d: &mut Dnsmasq) -> bool {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let query = raw_query("probe.test");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 512];
    while Instant::now() < deadline {
        if let Ok(Some(_)) = d.child.try_wait() {
            return false;
        }
        sock.send_to(&query, d.addr).await.unwrap();
        if let Ok(Ok((n, _))) =
            tokio::time::timeout(Duration::from_millis(200), sock.recv_from(&mut buf)).await
            && n >= 12
            && buf[0..2] == query[0..2]
        {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn dns_probe_through_lo_to_a_local_server() {
    let Some(d) = start_dnsmasq().await else {
        return;
    };

    let o = dns::probe("lo", &d.addr, "probe.test", false, T).await;
    assert_ok(&o, "A probe.test");

    // dnsmasq without upstream servers refuses names it does not know.
    let o = dns::probe("lo", &d.addr, "missing.test", false, T).await;
    match failure(&o) {
        ProbeFailure::DnsNoAnswer(s) => assert!(s.contains("Refused"), "{s}"),
        other => panic!("missing.test: {other:?}"),
    }
    assert_eq!(failure(&o).reason_word(), "dns");

    // A name that does not exist.
    let o = dns::probe("lo", &d.addr, "gone.test", false, T).await;
    match failure(&o) {
        ProbeFailure::DnsNoAnswer(s) => assert!(s.contains("NXDOMAIN"), "{s}"),
        other => panic!("gone.test: {other:?}"),
    }

    // A name with an A record but no AAAA.
    let o = dns::probe("lo", &d.addr, "probe.test", true, T).await;
    assert_eq!(
        failure(&o),
        &ProbeFailure::DnsNoAnswer("no AAAA records".into())
    );

    let o = dns::probe(NO_IFACE, &d.addr, "probe.test", false, T).await;
    assert_eq!(failure(&o), &ProbeFailure::NoSuchInterface);
}

#[tokio::test]
async fn dns_probe_to_a_silent_server_times_out() {
    // A bound UDP socket that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let started = Instant::now();
    let o = dns::probe("lo", &addr, "probe.test", false, Duration::from_millis(500)).await;
    assert_eq!(failure(&o), &ProbeFailure::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(o.bytes > 0);
}

#[tokio::test]
async fn dns_probes_leave_no_tasks_behind() {
    let Some(d) = start_dnsmasq().await else {
        return;
    };
    let metrics = tokio::runtime::Handle::current().metrics();
    // Warm up, then count.
    let _ = dns::probe("lo", &d.addr, "probe.test", false, T).await;
    tokio::task::yield_now().await;
    let before = metrics.num_alive_tasks();
    for _ in 0..20 {
        let o = dns::probe("lo", &d.addr, "probe.test", false, T).await;
        assert_ok(&o, "repeated probe");
    }
    // Aborted tasks finish on their next poll: give them a moment.
    let deadline = Instant::now() + Duration::from_secs(2);
    while metrics.num_alive_tasks() > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        metrics.num_alive_tasks() <= before,
        "tasks before {before}, after {}",
        metrics.num_alive_tasks()
    );
}

#[tokio::test]
async fn names_in_tcp_and_http_targets_resolve_through_the_link() {
    let Some(d) = start_dnsmasq().await else {
        return;
    };
    let http_addr = start_http().await;
    let ns = NameServers::Given(vec![d.addr]);
    let port = http_addr.port();

    let o = tcp::probe_with("lo", &format!("tcp.test:{port}"), &ns, T).await;
    assert_ok(&o, "tcp by name");
    // The lookup is counted too.
    assert!(o.bytes > 6 * 52, "bytes {}", o.bytes);

    let o = tcp::probe_with("lo", &format!("gone.test:{port}"), &ns, T).await;
    assert!(
        matches!(failure(&o), ProbeFailure::Resolve(_)),
        "{:?}",
        o.result
    );

    let url = format!("http://tcp.test:{port}/generate_204");
    let o = http::probe_with("lo", &url, 204, None, true, &ns, T).await;
    assert_ok(&o, "http by name");

    let url = format!("http://gone.test:{port}/generate_204");
    let o = http::probe_with("lo", &url, 204, None, true, &ns, T).await;
    assert!(
        matches!(failure(&o), ProbeFailure::Resolve(_)),
        "{:?}",
        o.result
    );

    // A loopback nameserver cannot be reached through another interface.
    let o = tcp::probe_with("eth0", &format!("tcp.test:{port}"), &ns, T).await;
    assert!(
        matches!(
            failure(&o),
            ProbeFailure::Resolve(_) | ProbeFailure::NoSuchInterface
        ),
        "{:?}",
        o.result
    );
}
