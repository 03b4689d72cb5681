//! The probes across the network-namespace testbed, run by the library inside
//! the device namespace: IPv6 (ICMPv6, TCP, DNS over IPv6 with AAAA answers,
//! HTTP by literal and by name) through each link, and HTTPS against real
//! TLS servers with certificates the test makes (a private CA trusted through
//! `ca_file`; unknown CA, wrong name and expired certificates are failures
//! with reason `tls-cert`). Every address is in the documentation ranges
//! inside the testbed; needs root (skipped otherwise).

mod common;

use common::netns::run_in;
use common::tls::{TestCa, Validity};
use common::*;
use linkwatch::agent::probe::dns::{self, NameServers};
use linkwatch::agent::probe::http::{self, HttpCheck};
use linkwatch::agent::probe::icmp::IcmpProber;
use linkwatch::agent::probe::{ProbeFailure, ProbeOutcome, tcp};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(2);

fn ok(o: &ProbeOutcome, what: &str) {
    assert!(o.is_ok(), "{what}: {:?}", o.result);
    assert!(o.bytes > 0, "{what}: no bytes counted");
}

fn failed<'a>(o: &'a ProbeOutcome, what: &str) -> &'a ProbeFailure {
    o.result
        .as_ref()
        .err()
        .unwrap_or_else(|| panic!("{what}: expected a failure, got {:?}", o.result))
}

/// The IPv6 probes of one link, by literal address and by name.
async fn ipv6_probes(iface: &str, dev_addr6: String) -> Vec<(String, ProbeOutcome)> {
    let ns6 = NameServers::Given(vec![SocketAddr::new(DNS_SERVER_V6.into(), 53)]);
    let target = IpAddr::V6(ICMP_TARGETS_V6[0]);
    let mut out = vec![
        (
            "icmpv6".to_string(),
            IcmpProber::default().probe(iface, target, T).await,
        ),
        (
            "tcp literal".into(),
            tcp::probe(iface, &format!("[{}]:80", HTTP_SERVERS_V6[1]), T).await,
        ),
        (
            "tcp by name".into(),
            tcp::probe_with(iface, &format!("{V6_ONLY_NAME}:80"), &ns6, T).await,
        ),
        (
            "dns AAAA over IPv6".into(),
            dns::probe(
                iface,
                &SocketAddr::new(DNS_SERVER_V6.into(), 53),
                "probe.test",
                true,
                T,
            )
            .await,
        ),
    ];
    // The server answers with the client's address: the request left
    // through this link and no other.
    for (what, url) in [
        (
            "http literal",
            format!("http://[{}]/whoami", HTTP_SERVERS_V6[0]),
        ),
        ("http by name", format!("http://{V6_ONLY_NAME}/whoami")),
    ] {
        let c = HttpCheck {
            url: &url,
            expect_status: 200,
            body_contains: Some(&dev_addr6),
            captive: false,
            ca_file: None,
        };
        out.push((what.to_string(), http::check(iface, &c, &ns6, T).await));
    }
    out
}

#[test]
fn ipv6_probes_go_through_each_link_and_fail_when_its_upstream_is_cut() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    for link in Uplink::ALL {
        let outcomes = run_in(tb.netns_path(), move || {
            ipv6_probes(link.iface(), link.dev_addr6().to_string())
        });
        for (what, o) in &outcomes {
            ok(o, &format!("{what} via {}", link.iface()));
        }
        // ICMPv6: 2 * (IPv6 40 + ICMPv6 8 + payload 8).
        assert_eq!(outcomes[0].1.bytes, 2 * (40 + 8 + 8));
    }

    // The ISP of bb0 forwards nothing: every IPv6 probe through bb0 fails,
    // through wl0 they still work.
    tb.cut_upstream(Uplink::Broadband);
    let (bb, wl) = run_in(tb.netns_path(), || async {
        let short = Duration::from_millis(700);
        let target = IpAddr::V6(ICMP_TARGETS_V6[0]);
        let p = IcmpProber::default();
        let icmp = (
            p.probe("bb0", target, short).await,
            p.probe("wl0", target, short).await,
        );
        let bb = [
            icmp.0,
            tcp::probe("bb0", &format!("[{}]:80", HTTP_SERVERS_V6[0]), short).await,
            dns::probe(
                "bb0",
                &SocketAddr::new(DNS_SERVER_V6.into(), 53),
                "probe.test",
                true,
                short,
            )
            .await,
        ];
        (bb, icmp.1)
    });
    for o in &bb {
        assert_eq!(failed(o, "via bb0 after the cut"), &ProbeFailure::Timeout);
    }
    ok(&wl, "icmpv6 via wl0 during bb0's cut");
}

/// The TLS servers of the HTTPS test, all in inet:
/// - 192.0.2.1:443 and [2001:db8:ff::1]:443: `probe.test` and both
///   addresses, signed by the test's CA;
/// - spare 3 port 443: signed by a CA nobody trusts;
/// - spare 4 port 443: the test's CA, but for `other.test`;
/// - spare 5 port 443: the test's CA, expired.
struct TlsSetup {
    _dir: tempfile::TempDir,
    ca_file: PathBuf,
}

fn tls_setup(tb: &Testbed) -> TlsSetup {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = TestCa::new("linkwatch test government CA");
    let stranger = TestCa::new("a CA nobody trusts");
    let ca_file = ca.write(d, "ca");
    let v4 = PROBE_ADDR.to_string();
    let v6 = PROBE_ADDR_V6.to_string();
    let good = ca.server_cert(d, "good", &["probe.test", &v4, &v6], Validity::Current);
    let unknown = stranger.server_cert(
        d,
        "unknown",
        &[&spare_addr(3).to_string()],
        Validity::Current,
    );
    let wrong_name = ca.server_cert(d, "wrong-name", &["other.test"], Validity::Current);
    let expired = ca.server_cert(
        d,
        "expired",
        &[&spare_addr(5).to_string()],
        Validity::Expired,
    );
    tb.serve_http(&[
        (SocketAddr::new(PROBE_ADDR.into(), 443), Some(&good)),
        (SocketAddr::new(PROBE_ADDR_V6.into(), 443), Some(&good)),
        (SocketAddr::new(spare_addr(3).into(), 443), Some(&unknown)),
        (
            SocketAddr::new(spare_addr(4).into(), 443),
            Some(&wrong_name),
        ),
        (SocketAddr::new(spare_addr(5).into(), 443), Some(&expired)),
    ]);
    TlsSetup { _dir: dir, ca_file }
}

async fn https(iface: &str, url: String, ca_file: Option<PathBuf>) -> ProbeOutcome {
    let ns = NameServers::Given(vec![SocketAddr::new(DNS_SERVER.into(), 53)]);
    let c = HttpCheck {
        url: &url,
        expect_status: 200,
        body_contains: Some("linkwatch testbed"),
        captive: false,
        ca_file: ca_file.as_deref(),
    };
    http::check(iface, &c, &ns, T).await
}

#[test]
fn https_trusts_a_private_ca_from_ca_file_and_names_bad_certificates() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let setup = tls_setup(&tb);
    let ca = setup.ca_file.clone();
    let results = run_in(tb.netns_path(), move || async move {
        let mut r = Vec::new();
        for link in Uplink::ALL {
            let name = format!("https://probe.test/ via {}", link.iface());
            let o = https(link.iface(), "https://probe.test/".into(), Some(ca.clone())).await;
            r.push((name, o));
        }
        let url6 = format!("https://[{PROBE_ADDR_V6}]/");
        let o = https("wl0", url6, Some(ca.clone())).await;
        r.push(("https over IPv6 via wl0".into(), o));
        // Without the CA file the same server is not trusted.
        let o = https("bb0", "https://probe.test/".into(), None).await;
        r.push(("without ca_file".into(), o));
        for (what, spare) in [("unknown CA", 3), ("wrong name", 4), ("expired", 5)] {
            let url = format!("https://{}/", spare_addr(spare));
            let o = https("bb0", url, Some(ca.clone())).await;
            r.push((what.into(), o));
        }
        r
    });
    let outcome = |what: &str| {
        &results
            .iter()
            .find(|(w, _)| w == what)
            .unwrap_or_else(|| panic!("no {what}"))
            .1
    };
    for link in Uplink::ALL {
        ok(
            outcome(&format!("https://probe.test/ via {}", link.iface())),
            "trusted",
        );
    }
    ok(outcome("https over IPv6 via wl0"), "trusted over IPv6");
    let want = [
        ("without ca_file", "unknown certificate authority"),
        ("unknown CA", "unknown certificate authority"),
        (
            "wrong name",
            "not valid for 203.0.113.104: it names other.test",
        ),
        ("expired", "expired on 2021-01-01T00:00:00Z"),
    ];
    for (what, words) in want {
        let f = failed(outcome(what), what);
        assert_eq!(f.reason_word(), "tls-cert", "{what}: {f}");
        let text = f.to_string();
        assert!(text.contains(words), "{what}: {text}");
        // The handshake's bytes are counted.
        assert!(
            outcome(what).bytes > 1000,
            "{what}: {}",
            outcome(what).bytes
        );
    }
}
