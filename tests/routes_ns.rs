//! The agent's own default routes (`linkwatch::agent::routes`) for real,
//! inside a throw-away network namespace `lwrt<pid>` with three veth links,
//! "DHCP" IPv4 default routes and IPv6 ones as a router advertisement
//! leaves them (a link-local gateway): install, swap the chosen link in both
//! families, repair, remove. Needs root (skipped otherwise); only 10.x and
//! documentation addresses, and no traffic leaves the namespace.

mod common;

use common::netns::Netns;
use linkwatch::agent::routes::{
    Family, Gateways, RTPROT_LINKWATCH, RouteOp, WantedRoute, learned_gateways, own_routes,
    remove_all, set_ignore_linkdown, sync,
};
use serde_json::Value;
use std::net::IpAddr;
use std::process::Command;
use std::time::Instant;

/// What the tests read back from the namespace's routing table.
trait Routes {
    fn picks(&self) -> String;
    fn picks6(&self) -> String;
    fn defaults(&self) -> Vec<(String, String, u64, String)>;
    fn defaults6(&self) -> Vec<(String, String, u64, String)>;
    fn foreign(&self) -> Vec<(String, String, u64, String)>;
    fn foreign6(&self) -> Vec<(String, String, u64, String)>;
    fn own(&self) -> Vec<(String, String, u64)>;
    fn own6(&self) -> Vec<(String, String, u64)>;
}

/// `ip -j route show default` of one family as `(dev, gateway, metric,
/// protocol)`, sorted by metric.
fn parse_defaults(json: &str) -> Vec<(String, String, u64, String)> {
    let v: Value = serde_json::from_str(json).expect("route show JSON");
    let mut out: Vec<_> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["dev"].as_str().unwrap_or_default().to_string(),
                r["gateway"].as_str().unwrap_or_default().to_string(),
                r["metric"].as_u64().unwrap_or(0),
                r["protocol"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    out.sort_by_key(|r| r.2);
    out
}

fn mine(routes: Vec<(String, String, u64, String)>) -> Vec<(String, String, u64)> {
    let own = RTPROT_LINKWATCH.to_string();
    routes
        .into_iter()
        .filter(|r| r.3 == own)
        .map(|r| (r.0, r.1, r.2))
        .collect()
}

fn not_mine(routes: Vec<(String, String, u64, String)>) -> Vec<(String, String, u64, String)> {
    let own = RTPROT_LINKWATCH.to_string();
    routes.into_iter().filter(|r| r.3 != own).collect()
}

impl Routes for Netns {
    /// The interface the kernel sends 198.51.100.7 through.
    fn picks(&self) -> String {
        let v: Value =
            serde_json::from_str(&self.ip("-j route get 198.51.100.7")).expect("route get JSON");
        v[0]["dev"].as_str().expect("dev in route get").to_string()
    }

    /// The interface the kernel sends 2001:db8:ff::7 through.
    fn picks6(&self) -> String {
        let v: Value = serde_json::from_str(&self.ip("-j -6 route get 2001:db8:ff::7"))
            .expect("route get JSON");
        v[0]["dev"].as_str().expect("dev in route get").to_string()
    }

    fn defaults(&self) -> Vec<(String, String, u64, String)> {
        parse_defaults(&self.ip("-j -4 route show default"))
    }

    fn defaults6(&self) -> Vec<(String, String, u64, String)> {
        parse_defaults(&self.ip("-j -6 route show default"))
    }

    /// The default routes that are not the agent's.
    fn foreign(&self) -> Vec<(String, String, u64, String)> {
        not_mine(self.defaults())
    }

    fn foreign6(&self) -> Vec<(String, String, u64, String)> {
        not_mine(self.defaults6())
    }

    /// The agent's default routes as `(dev, gateway, metric)`.
    fn own(&self) -> Vec<(String, String, u64)> {
        mine(self.defaults())
    }

    fn own6(&self) -> Vec<(String, String, u64)> {
        mine(self.defaults6())
    }
}

fn own3(a: (&str, &str), b: (&str, &str), c: (&str, &str)) -> Vec<(String, String, u64)> {
    [(a, 10), (b, 20), (c, 30)]
        .into_iter()
        .map(|((dev, gw), m)| (dev.to_string(), gw.to_string(), m))
        .collect()
}

#[test]
fn own_default_routes_in_a_namespace() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: routes_ns needs root (creates a network namespace)");
        return;
    }
    let name = format!("lwrt{}", std::process::id());
    let ns = match Netns::create(&name) {
        Ok(ns) => ns,
        Err(e) => {
            eprintln!("skipped: cannot create network namespace {name}: {e}");
            return;
        }
    };
    ns.ip("link set lo up");
    for (i, metric) in [(1, 100), (2, 200), (3, 300)] {
        ns.ip(&format!("link add r{i} type veth peer name r{i}p"));
        ns.ip(&format!("addr add 10.3{i}.0.2/24 dev r{i}"));
        ns.ip(&format!("addr add 10.3{i}.0.1/24 dev r{i}p"));
        ns.ip(&format!("addr add 2001:db8:3{i}::2/64 dev r{i} nodad"));
        ns.ip(&format!("addr add fe80::3{i}:1/64 dev r{i}p nodad"));
        ns.ip(&format!("link set r{i} up"));
        ns.ip(&format!("link set r{i}p up"));
        ns.ip(&format!(
            "route add default via 10.3{i}.0.1 dev r{i} metric {metric}"
        ));
        // As a router advertisement leaves it: a link-local gateway, metric
        // 1024 and up (`ip route add` takes one route per metric).
        ns.ip(&format!(
            "-6 route add default via fe80::3{i}:1 dev r{i} proto ra metric 102{i}"
        ));
    }

    let inside = Netns(ns.0.clone());
    let inside = ns.run_inside(move || async move {
        scenario(&inside).await;
        inside
    });
    // Both handles name the same namespace: delete it once.
    std::mem::forget(inside);
}

async fn scenario(ns: &Netns) {
    let dhcp = ns.foreign();
    assert_eq!(dhcp.len(), 3, "{dhcp:?}");
    assert_eq!(ns.picks(), "r1");

    // Start: nothing left over to remove.
    assert_eq!(remove_all().await.expect("remove_all"), 0);
    assert!(own_routes().await.expect("own_routes").is_empty());

    // The gateways DHCP and the router advertisements gave each link.
    let links: Vec<String> = ["r1", "r2", "r3"].map(String::from).to_vec();
    let learned = learned_gateways().await.expect("learned_gateways");
    let gw = |s: &str| Some(s.parse::<IpAddr>().unwrap());
    assert_eq!(
        learned.get(&("r1".to_string(), Family::V4)),
        Some(&gw("10.31.0.1"))
    );
    assert_eq!(
        learned.get(&("r3".to_string(), Family::V6)),
        Some(&gw("fe80::33:1"))
    );
    assert_eq!(learned.len(), 6, "{learned:?}");
    let mut gws = Gateways::default();
    for l in &links {
        for f in Family::BOTH {
            gws.learn(l, f, None, learned.get(&(l.clone(), f)).copied());
        }
    }
    let order = |v: [&str; 3]| -> Vec<WantedRoute> {
        let v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        gws.wanted(&v, 10)
    };
    let dhcp6 = ns.foreign6();
    assert_eq!(dhcp6.len(), 3, "{dhcp6:?}");

    // Install: r2 chosen.
    let ops = sync(&order(["r2", "r1", "r3"])).await.expect("sync");
    assert_eq!(ops.len(), 6, "{ops:?}");
    assert_eq!(ns.picks(), "r2");
    assert_eq!(ns.picks6(), "r2");
    assert_eq!(
        ns.own6(),
        own3(
            ("r2", "fe80::32:1"),
            ("r1", "fe80::31:1"),
            ("r3", "fe80::33:1")
        )
    );
    assert_eq!(
        ns.own(),
        own3(
            ("r2", "10.32.0.1"),
            ("r1", "10.31.0.1"),
            ("r3", "10.33.0.1")
        )
    );
    assert_eq!(ns.foreign(), dhcp, "the DHCP routes are untouched");
    let mine = own_routes().await.expect("own_routes");
    assert_eq!(
        mine.iter()
            .map(|r| (r.ifname.as_str(), r.family, r.metric))
            .collect::<Vec<_>>(),
        vec![
            ("r2", Family::V4, 10),
            ("r1", Family::V4, 20),
            ("r3", Family::V4, 30),
            ("r2", Family::V6, 10),
            ("r1", Family::V6, 20),
            ("r3", Family::V6, 30),
        ]
    );
    assert!(mine.iter().all(|r| r.ifindex != 0));

    // Fail over to r3.
    let want = order(["r3", "r1", "r2"]);
    let t0 = Instant::now();
    let ops = sync(&want).await.expect("sync");
    let took = t0.elapsed();
    eprintln!(
        "sync swapping the chosen link r2 -> r3 took {took:?} ({} operations: {})",
        ops.len(),
        ops.iter()
            .map(RouteOp::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    assert_eq!(ns.picks(), "r3");
    assert_eq!(ns.picks6(), "r3");
    assert_eq!(
        ns.own(),
        own3(
            ("r3", "10.33.0.1"),
            ("r1", "10.31.0.1"),
            ("r2", "10.32.0.1")
        ),
        "exactly three own routes"
    );
    assert_eq!(
        ns.own6(),
        own3(
            ("r3", "fe80::33:1"),
            ("r1", "fe80::31:1"),
            ("r2", "fe80::32:1")
        ),
        "exactly three own IPv6 routes"
    );
    assert_eq!(ns.foreign(), dhcp, "the DHCP routes are untouched");
    assert_eq!(ns.foreign6(), dhcp6, "the RA routes are untouched");

    // Nothing to do when nothing changed.
    assert!(sync(&want).await.expect("sync").is_empty());

    // Someone deletes r3's own route: the next sync puts it back.
    ns.ip("route del default via 10.33.0.1 dev r3 proto 252 metric 10");
    assert_eq!(ns.picks(), "r1");
    let ops = sync(&want).await.expect("sync");
    assert_eq!(ops, vec![RouteOp::Add(want[0].clone())]);
    assert_eq!(ns.picks(), "r3");
    assert_eq!(ns.own().len(), 3);
    // The same for IPv6.
    ns.ip("-6 route del default via fe80::33:1 dev r3 proto 252 metric 10");
    assert_eq!(ns.picks6(), "r1");
    let ops = sync(&want).await.expect("sync");
    assert_eq!(ops, vec![RouteOp::Add(want[3].clone())]);
    assert_eq!(ns.picks6(), "r3");
    assert_eq!(ns.own6().len(), 3);

    // An on-link route (as for ppp): `default dev r3 scope link`.
    let onlink = vec![WantedRoute {
        ifname: "r3".into(),
        family: Family::V4,
        gateway: None,
        metric: 10,
    }];
    sync(&onlink).await.expect("sync on-link");
    assert_eq!(
        ns.own(),
        vec![("r3".to_string(), String::new(), 10)],
        "{}",
        ns.ip("route show default")
    );
    assert_eq!(ns.picks(), "r3");
    assert!(
        ns.own6().is_empty(),
        "the IPv6 routes went with the old wish"
    );
    sync(&want).await.expect("sync back");
    assert_eq!(ns.own().len(), 3);
    assert_eq!(ns.own6().len(), 3);

    // Clean stop: only the DHCP and RA routes are left, and r1 is used again.
    assert_eq!(remove_all().await.expect("remove_all"), 6);
    assert!(ns.own().is_empty());
    assert!(ns.own6().is_empty());
    assert_eq!(ns.foreign(), dhcp);
    assert_eq!(ns.defaults(), dhcp);
    assert_eq!(ns.defaults6(), dhcp6);
    assert_eq!(ns.picks(), "r1");
    assert_eq!(ns.picks6(), "r1");

    set_ignore_linkdown("r1").expect("set_ignore_linkdown");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "cat"])
        .arg("/proc/sys/net/ipv4/conf/r1/ignore_routes_with_linkdown")
        .output()
        .expect("run ip netns exec");
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    let out = Command::new("ip")
        .args(["netns", "exec", &ns.0, "cat"])
        .arg("/proc/sys/net/ipv6/conf/r1/ignore_routes_with_linkdown")
        .output()
        .expect("run ip netns exec");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
}
