//! Proves the network-namespace testbed in tests/common works: reachability through each link,
//! every fault it can inject, parallel instances and cleanup. Skips cleanly without root or
//! without the tools (ip, nft, dnsmasq, python3, ping, sysctl).

mod common;

use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(2);
const TARGET: std::net::Ipv4Addr = ICMP_TARGETS[0];
const GEN204: &str = "http://192.0.2.1/generate_204";

fn sysfs(tb: &Testbed, path: &str) -> String {
    let out = run(&mut tb.exec_dev(["cat", path]));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn testbed_reachability_and_faults() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let names = tb.netns_names();
    assert!(names.iter().all(|n| n.len() <= 15), "{names:?}");
    assert_eq!(
        tb.netns_path(),
        std::path::Path::new("/run/netns").join(tb.dev_netns())
    );

    // Everything works through every link.
    for link in Uplink::ALL {
        for target in ICMP_TARGETS {
            assert!(tb.ping(link, target), "ping {target} via {link:?}");
        }
        assert_eq!(
            tb.dns_query(link, "probe.test", T).unwrap(),
            vec![PROBE_ADDR]
        );
        assert_eq!(
            tb.dns_query(link, "www.probe.test", T).unwrap(),
            vec![PROBE_ADDR]
        );
        for server in HTTP_SERVERS {
            let r = tb
                .http_get(link, &format!("http://{server}/generate_204"), T)
                .unwrap();
            assert_eq!((r.status, r.body.as_str()), (204, ""), "via {link:?}");
            let r = tb.http_get(link, &format!("http://{server}/"), T).unwrap();
            assert_eq!((r.status, r.body.as_str()), (200, "linkwatch testbed"));
            let r = tb
                .http_get(link, &format!("http://{server}/nope"), T)
                .unwrap();
            assert_eq!(r.status, 404);
        }
        assert_eq!(tb.carrier(link), Some(true));
        assert_eq!(tb.operstate(link).as_deref(), Some("up"));
    }
    // The plain `ping -c1 -W1 -I bb0` command line of the brief, via exec_dev.
    run(&mut tb.exec_dev(["ping", "-n", "-c1", "-W1", "-I", "bb0", "192.0.2.1"]));
    // Unprivileged ICMP sockets are allowed in the device namespace.
    assert_eq!(
        sysfs(&tb, "/proc/sys/net/ipv4/ping_group_range"),
        "0\t2147483647"
    );
    // Default routes with the documented metrics.
    let routes =
        String::from_utf8_lossy(&run(&mut tb.exec_dev(["ip", "route", "show", "default"])).stdout)
            .to_string();
    for link in Uplink::ALL {
        let want = format!(
            "default via {} dev {} metric {}",
            link.gateway(),
            link.iface(),
            link.metric()
        );
        assert!(routes.contains(&want), "missing `{want}` in\n{routes}");
    }

    // Silent upstream cut: no internet through bb0, carrier stays.
    tb.cut_upstream(Uplink::Broadband);
    assert!(!tb.ping(Uplink::Broadband, TARGET));
    assert!(
        tb.dns_query(Uplink::Broadband, "probe.test", Duration::from_millis(500))
            .is_err()
    );
    assert!(tb.ping(Uplink::Wifi, TARGET));
    assert!(
        tb.ping(Uplink::Broadband, Uplink::Broadband.gateway()),
        "the ISP itself still answers"
    );
    assert_eq!(sysfs(&tb, "/sys/class/net/bb0/carrier"), "1");
    tb.heal_upstream(Uplink::Broadband);
    assert!(tb.ping(Uplink::Broadband, TARGET));
    tb.heal_upstream(Uplink::Broadband); // idempotent

    // Carrier loss.
    tb.drop_carrier(Uplink::Broadband);
    assert_eq!(sysfs(&tb, "/sys/class/net/bb0/carrier"), "0");
    let state = sysfs(&tb, "/sys/class/net/bb0/operstate");
    assert!(
        state == "down" || state == "lowerlayerdown",
        "operstate {state}"
    );
    assert!(!tb.ping(Uplink::Broadband, TARGET));
    assert!(tb.ping(Uplink::Mobile, TARGET));
    tb.restore_carrier(Uplink::Broadband);
    assert_eq!(sysfs(&tb, "/sys/class/net/bb0/operstate"), "up");
    assert!(tb.ping(Uplink::Broadband, TARGET));

    // Captive portal on wifi.
    for (mode, status) in [(PortalMode::Redirect, 302), (PortalMode::LoginPage, 200)] {
        tb.captive(Uplink::Wifi, Some(mode));
        let r = tb.http_get(Uplink::Wifi, GEN204, T).unwrap();
        assert_eq!(r.status, status, "{mode:?}: {r:?}");
        match mode {
            PortalMode::Redirect => {
                assert_eq!(r.location.as_deref(), Some("http://portal.isp2.test/login"))
            }
            PortalMode::LoginPage => assert!(r.body.contains("<form"), "{r:?}"),
        }
        // Any destination on port 80 is intercepted; other links are not.
        assert_eq!(
            tb.http_get(Uplink::Wifi, "http://203.0.113.10/", T)
                .unwrap()
                .status,
            status
        );
        assert_eq!(
            tb.http_get(Uplink::Broadband, GEN204, T).unwrap().status,
            204
        );
        // DNS and ICMP still pass, as behind a real portal.
        assert!(tb.ping(Uplink::Wifi, TARGET));
        assert!(tb.dns_query(Uplink::Wifi, "probe.test", T).is_ok());
    }
    tb.captive(Uplink::Wifi, None);
    assert_eq!(tb.http_get(Uplink::Wifi, GEN204, T).unwrap().status, 204);

    // One-way random loss on mobile.
    tb.set_loss(Uplink::Mobile, 50);
    let received = tb.ping_count(Uplink::Mobile, TARGET, 40, Duration::from_millis(10));
    eprintln!("50% loss: {received}/40 answered");
    assert!(
        received > 0 && received < 40,
        "{received}/40 answered at 50% loss"
    );
    tb.set_loss(Uplink::Mobile, 100);
    assert_eq!(
        tb.ping_count(Uplink::Mobile, TARGET, 5, Duration::from_millis(10)),
        0
    );
    tb.clear_loss(Uplink::Mobile);
    assert_eq!(
        tb.ping_count(Uplink::Mobile, TARGET, 10, Duration::from_millis(10)),
        10
    );

    // Modem unplugged and plugged in again.
    tb.remove_link(Uplink::Mobile);
    assert!(!tb.link_present(Uplink::Mobile));
    assert!(
        !run(&mut tb.exec_dev(["ls", "/sys/class/net"]))
            .stdout
            .windows(3)
            .any(|w| w == b"mb0")
    );
    assert_eq!(tb.carrier(Uplink::Mobile), None);
    assert!(tb.ping(Uplink::Broadband, TARGET));
    tb.add_link(Uplink::Mobile);
    assert!(tb.link_present(Uplink::Mobile));
    assert!(tb.ping(Uplink::Mobile, TARGET));
    assert_eq!(tb.http_get(Uplink::Mobile, GEN204, T).unwrap().status, 204);

    // Drop deletes every namespace.
    drop(tb);
    let left = netns_list();
    for n in &names {
        assert!(
            !left.contains(n),
            "namespace {n} still there after drop: {left:?}"
        );
    }
}

/// IPv6 through every link, the hosts file, extra (TLS) servers and refused services.
#[test]
fn testbed_ipv6_names_and_extra_servers() {
    if !testbed_available() {
        return;
    }
    let tb = Testbed::new();
    let v6 = |a: std::net::Ipv6Addr| std::net::IpAddr::V6(a);
    for link in Uplink::ALL {
        for target in ICMP_TARGETS_V6 {
            assert!(tb.ping_ip(link, v6(target)), "ping {target} via {link:?}");
        }
        let dns6 = v6(DNS_SERVER_V6);
        assert_eq!(
            tb.dns_query_at(link, dns6, "probe.test", true, T).unwrap(),
            vec![v6(PROBE_ADDR_V6)]
        );
        // v6only.test: an AAAA, and an empty answer (not an error) for A.
        assert_eq!(
            tb.dns_query_at(link, dns6, V6_ONLY_NAME, true, T).unwrap(),
            vec![v6(PROBE_ADDR_V6)]
        );
        assert_eq!(
            tb.dns_query_at(link, dns6, V6_ONLY_NAME, false, T).unwrap(),
            Vec::<std::net::IpAddr>::new()
        );
        for server in HTTP_SERVERS_V6 {
            let r = tb
                .http_get(link, &format!("http://[{server}]/whoami"), T)
                .unwrap();
            // The request left through this link: the server saw its address.
            assert_eq!(
                (r.status, r.body.as_str()),
                (200, link.dev_addr6().to_string().as_str())
            );
        }
    }
    let routes = String::from_utf8_lossy(
        &run(&mut tb.exec_dev(["ip", "-6", "route", "show", "default"])).stdout,
    )
    .to_string();
    for link in Uplink::ALL {
        let want = format!(
            "default via {} dev {} metric {}",
            link.gateway6(),
            link.iface(),
            link.metric()
        );
        assert!(routes.contains(&want), "missing `{want}` in\n{routes}");
    }
    // A silent cut stops IPv6 too.
    tb.cut_upstream(Uplink::Wifi);
    assert!(!tb.ping_ip(Uplink::Wifi, v6(ICMP_TARGETS_V6[0])));
    assert!(tb.ping_ip(Uplink::Mobile, v6(ICMP_TARGETS_V6[0])));
    tb.heal_upstream(Uplink::Wifi);

    // Names from the hosts file, replaced as a whole; others in the domain do not exist.
    let dns = std::net::IpAddr::V4(DNS_SERVER);
    tb.set_hosts(&[("chat.example.net", spare_addr(0).into())]);
    assert_eq!(
        tb.dns_query_at(Uplink::Broadband, dns, "chat.example.net", false, T)
            .unwrap(),
        vec![std::net::IpAddr::V4(spare_addr(0))]
    );
    let nx = tb.dns_query_at(Uplink::Broadband, dns, "web.example.com", false, T);
    assert!(nx.unwrap_err().contains("rcode Some(3)"));
    tb.set_hosts(&[("web.example.com", spare_addr(1).into())]);
    assert!(
        tb.dns_query_at(Uplink::Broadband, dns, "chat.example.net", false, T)
            .is_err()
    );

    // An extra plain server on a spare address, refused and accepted again.
    let svc = std::net::SocketAddr::from((spare_addr(2), 5222));
    let svc6 = std::net::SocketAddr::from((spare_addr_v6(2), 5222));
    tb.serve_http(&[(svc, None), (svc6, None)]);
    let url = format!("http://{svc}/generate_204");
    let url6 = format!("http://{svc6}/generate_204");
    assert_eq!(tb.http_get(Uplink::Wifi, &url, T).unwrap().status, 204);
    assert_eq!(tb.http_get(Uplink::Wifi, &url6, T).unwrap().status, 204);
    tb.refuse_tcp(svc);
    let err = tb.http_get(Uplink::Wifi, &url, T).unwrap_err();
    assert!(err.contains("ConnectionRefused"), "{err}");
    assert_eq!(tb.http_get(Uplink::Wifi, &url6, T).unwrap().status, 204);
    tb.accept_tcp(svc);
    assert_eq!(tb.http_get(Uplink::Wifi, &url, T).unwrap().status, 204);
}

/// Two testbeds at once (and in parallel with the test above): distinct names, isolated faults.
#[test]
fn two_testbeds_in_parallel() {
    if !testbed_available() {
        return;
    }
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(Testbed::new);
        let b = s.spawn(Testbed::new);
        (a.join().unwrap(), b.join().unwrap())
    });
    let (na, nb) = (a.netns_names(), b.netns_names());
    assert!(na.iter().all(|n| !nb.contains(n)), "{na:?} vs {nb:?}");

    a.cut_upstream(Uplink::Broadband);
    b.captive(Uplink::Broadband, Some(PortalMode::Redirect));
    assert!(!a.ping(Uplink::Broadband, TARGET));
    assert!(b.ping(Uplink::Broadband, TARGET));
    assert_eq!(a.http_get(Uplink::Wifi, GEN204, T).unwrap().status, 204);
    let r = b.http_get(Uplink::Broadband, GEN204, T).unwrap();
    assert_eq!(
        (r.status, r.location.as_deref()),
        (302, Some("http://portal.isp1.test/login"))
    );

    drop(a);
    drop(b);
    let left = netns_list();
    assert!(
        na.iter().chain(&nb).all(|n| !left.contains(n)),
        "left: {left:?}"
    );
}

/// A panicking test still removes its namespaces.
#[test]
fn cleanup_on_panic() {
    if !testbed_available() {
        return;
    }
    let names = std::sync::Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        let tb = Testbed::new();
        *names.lock().unwrap() = tb.netns_names();
        tb.cut_upstream(Uplink::Wifi);
        panic!("deliberate panic with a live testbed");
    });
    assert!(result.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 5);
    let left = netns_list();
    assert!(names.iter().all(|n| !left.contains(n)), "left: {left:?}");
}
