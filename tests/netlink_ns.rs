//! The netlink module for real, inside a throw-away network namespace
//! `lwnl-<pid>`: snapshots of links and default routes, the active link, and
//! the watcher's carrier-loss latency. Needs root (skipped otherwise); only
//! 10.x addresses, and no traffic leaves the namespace.

use linkwatch::agent::netlink::{
    LinkEvent, active_link, default_routes, has_global_ipv6, interfaces, watch,
};
mod common;

use common::netns::Netns;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Receive events until one matches, or fail at the deadline.
async fn wait_for(
    rx: &mut mpsc::UnboundedReceiver<LinkEvent>,
    deadline: Duration,
    what: &str,
    want: impl Fn(&LinkEvent) -> bool,
) -> Duration {
    let start = Instant::now();
    loop {
        let left = deadline
            .checked_sub(start.elapsed())
            .unwrap_or_else(|| panic!("no {what} within {deadline:?}"));
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(ev)) if want(&ev) => return start.elapsed(),
            Ok(Some(_)) => {}
            Ok(None) => panic!("watcher stopped before {what}"),
            Err(_) => panic!("no {what} within {deadline:?}"),
        }
    }
}

#[test]
fn netlink_in_a_namespace() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root (creates a network namespace)");
        return;
    }
    let name = format!("lwnl-{}", std::process::id());
    let ns = match Netns::create(&name) {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("skipped: cannot create network namespace {name}: {e}");
            return;
        }
    };
    ns.ip("link set lo up");
    ns.ip("link add a0 type veth peer name a1");
    ns.ip("link add b0 type veth peer name b1");
    ns.ip("addr add 10.77.0.1/24 dev a0");
    ns.ip("addr add 10.77.0.2/24 dev a1");
    ns.ip("addr add 10.78.0.1/24 dev b0");
    ns.ip("addr add 10.78.0.2/24 dev b1");
    for l in ["a0", "a1", "b0", "b1"] {
        ns.ip(&format!("link set {l} up"));
    }
    ns.ip("route add default via 10.77.0.2 dev a0 metric 100");
    ns.ip("route add default via 10.78.0.2 dev b0 metric 200");

    let inside = Netns(ns.0.clone());
    ns.run_inside(move || scenario(inside));
}

async fn scenario(ns: Netns) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watcher = tokio::spawn(watch(tx));

    // Prove the watcher is subscribed before relying on it: an address change
    // must come through.
    ns.ip("addr add 10.79.0.1/32 dev lo");
    wait_for(&mut rx, Duration::from_secs(2), "AddressesChanged", |e| {
        matches!(e, LinkEvent::AddressesChanged { .. })
    })
    .await;

    // Carrier up is reported by the kernel's linkwatch with up to a second of
    // delay: poll the snapshot until both links show it.
    let start = Instant::now();
    let links = loop {
        let links = interfaces().await.expect("interfaces");
        let up = |n: &str| links.iter().any(|i| i.name == n && i.carrier && i.admin_up);
        if up("a0") && up("b0") {
            break links;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "a0 and b0 never got carrier: {links:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let a0 = links.iter().find(|i| i.name == "a0").expect("a0 listed");
    let lo = links.iter().find(|i| i.name == "lo").expect("lo listed");
    assert!(
        lo.carrier,
        "lo: oper state unknown with LOWER_UP counts as carrier"
    );

    let routes = default_routes().await.expect("default_routes");
    let mut v4: Vec<(String, u32)> = routes
        .iter()
        .filter(|r| !r.ipv6)
        .map(|r| (r.ifname.clone(), r.metric))
        .collect();
    v4.sort();
    assert_eq!(
        v4,
        vec![("a0".into(), 100), ("b0".into(), 200)],
        "{routes:?}"
    );
    let via_a0 = routes.iter().find(|r| r.ifname == "a0").unwrap();
    assert_eq!(via_a0.gateway, Some("10.77.0.2".parse().unwrap()));
    assert_eq!(via_a0.ifindex, a0.index);

    let carrier = |n: &str| links.iter().any(|i| i.name == n && i.carrier);
    assert_eq!(active_link(&routes, &carrier).as_deref(), Some("a0"));

    assert!(!has_global_ipv6(a0.index).await.expect("has_global_ipv6"));
    ns.ip("-6 addr add 2001:db8:77::1/64 dev a0 nodad");
    assert!(has_global_ipv6(a0.index).await.expect("has_global_ipv6"));

    // The peer goes down: a0 loses carrier; the watcher must say so fast.
    let t0 = Instant::now();
    ns.ip("link set a1 down");
    let ip_took = t0.elapsed();
    wait_for(
        &mut rx,
        Duration::from_secs(1),
        "carrier loss on a0",
        |e| matches!(e, LinkEvent::Changed { name, carrier: false, .. } if name == "a0"),
    )
    .await;
    eprintln!(
        "carrier loss on a0 reached the receiver {:?} after `ip link set a1 down` started (the command itself took {ip_took:?})",
        t0.elapsed()
    );

    // With a0 down, the active link moves to b0.
    let links = interfaces().await.expect("interfaces");
    let routes = default_routes().await.expect("default_routes");
    let carrier = |n: &str| links.iter().any(|i| i.name == n && i.carrier);
    assert!(!carrier("a0"));
    assert_eq!(active_link(&routes, &carrier).as_deref(), Some("b0"));

    // A removed link is reported by name.
    ns.ip("link del b0");
    wait_for(
        &mut rx,
        Duration::from_secs(1),
        "removal of b0",
        |e| matches!(e, LinkEvent::Removed { name, .. } if name == "b0"),
    )
    .await;

    // The watcher returns when the receiver goes away.
    drop(rx);
    tokio::time::timeout(Duration::from_secs(1), watcher)
        .await
        .expect("watcher returns once the receiver is dropped")
        .expect("watcher task")
        .expect("watcher result");
}
