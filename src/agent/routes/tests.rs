//! Unit tests of the route planning and netlink helpers (`super`).

use super::kernel::{self, KernelDefault, defaults_in, learned_in, valid_ifname};
use super::*;
use proptest::prelude::*;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteType,
};
use std::net::Ipv4Addr;

fn gw(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

/// The family of a gateway; on-link routes in these tests are IPv4 unless
/// built with [`want6`].
fn family_of(gateway: Option<IpAddr>) -> Family {
    gateway.map_or(Family::V4, |g| Family::of(&g))
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn want(ifname: &str, gateway: Option<IpAddr>, metric: u32) -> WantedRoute {
    WantedRoute {
        ifname: ifname.into(),
        family: family_of(gateway),
        gateway,
        metric,
    }
}

/// An IPv6 on-link route.
fn want6(ifname: &str, metric: u32) -> WantedRoute {
    WantedRoute {
        ifname: ifname.into(),
        family: Family::V6,
        gateway: None,
        metric,
    }
}

fn own(ifname: &str, ifindex: u32, gateway: Option<IpAddr>, metric: u32) -> OwnRoute {
    OwnRoute {
        ifname: ifname.into(),
        ifindex,
        family: family_of(gateway),
        gateway,
        metric,
    }
}

/// Three links with IPv4 gateways: `bb0` 10.11.0.1, `wl0` 10.12.0.1,
/// `ppp0` on-link; only `bb0` has IPv6 (via fe80::1).
fn three(name: &str, family: Family) -> Option<Option<IpAddr>> {
    match (name, family) {
        ("bb0", Family::V4) => Some(gw("10.11.0.1")),
        ("wl0", Family::V4) => Some(gw("10.12.0.1")),
        ("ppp0", Family::V4) => Some(None),
        ("bb0", Family::V6) => Some(gw("fe80::1")),
        _ => None,
    }
}

/// [`three`] with IPv4 only.
fn three_v4(name: &str, family: Family) -> Option<Option<IpAddr>> {
    (family == Family::V4)
        .then(|| three(name, family))
        .flatten()
}

fn installed(w: &[WantedRoute]) -> Vec<OwnRoute> {
    w.iter()
        .enumerate()
        .map(|(i, r)| OwnRoute {
            ifname: r.ifname.clone(),
            ifindex: i as u32 + 2,
            family: r.family,
            gateway: r.gateway,
            metric: r.metric,
        })
        .collect()
}

type Entry = (String, Family, Option<IpAddr>, u32);

fn entry_of_own(r: &OwnRoute) -> Entry {
    (r.ifname.clone(), r.family, r.gateway, r.metric)
}

/// Run `ops` on a simulated main table holding the own routes `have`,
/// checking after each step: an add never meets a route of the same family
/// and metric, a delete finds its route, and per family, once `want` has
/// routes of that family, there is always at least one own route of it.
/// Returns the table after each step.
fn simulate(have: &[OwnRoute], want: &[WantedRoute], ops: &[RouteOp]) -> Vec<Vec<Entry>> {
    let mut table: Vec<Entry> = have.iter().map(entry_of_own).collect();
    let mut steps: Vec<Vec<Entry>> = Vec::new();
    for op in ops {
        let before = table.clone();
        match op {
            RouteOp::Add(r) => {
                assert!(
                    table
                        .iter()
                        .all(|(_, f, _, m)| *f != r.family || *m != r.metric),
                    "`{op}` meets a route of the same metric in {table:?}"
                );
                table.push((r.ifname.clone(), r.family, r.gateway, r.metric));
            }
            RouteOp::Delete(r) => {
                let key = entry_of_own(r);
                let pos = table
                    .iter()
                    .position(|e| *e == key)
                    .unwrap_or_else(|| panic!("`{op}`: no such route in {table:?}"));
                table.remove(pos);
            }
        }
        for family in Family::BOTH {
            let had = before.iter().any(|e| e.1 == family);
            let wanted = want.iter().any(|w| w.family == family);
            if wanted && had {
                assert!(
                    table.iter().any(|e| e.1 == family),
                    "no {family} default route after `{op}`"
                );
            }
        }
        steps.push(table.clone());
    }
    let mut end = table.clone();
    end.sort_by_key(|e| (e.1, e.3));
    let mut expected: Vec<Entry> = want
        .iter()
        .map(|r| (r.ifname.clone(), r.family, r.gateway, r.metric))
        .collect();
    expected.sort_by_key(|e| (e.1, e.3));
    assert_eq!(end, expected, "ops {ops:?} do not reach the wanted routes");
    steps
}

/// The link the kernel would use in `family`.
fn chosen(table: &[Entry], family: Family) -> Option<&str> {
    table
        .iter()
        .filter(|e| e.1 == family)
        .min_by_key(|e| e.3)
        .map(|e| e.0.as_str())
}

#[test]
fn wanted_orders_metrics() {
    let w = wanted(&names(&["wl0", "bb0", "ppp0"]), &three_v4, 10);
    assert_eq!(
        w,
        vec![
            want("wl0", gw("10.12.0.1"), 10),
            want("bb0", gw("10.11.0.1"), 20),
            want("ppp0", None, 30),
        ]
    );
    let w = wanted(&names(&["ppp0", "bb0"]), &three_v4, 50);
    assert_eq!(
        w,
        vec![want("ppp0", None, 50), want("bb0", gw("10.11.0.1"), 60)]
    );
    assert!(wanted(&[], &three_v4, 10).is_empty());
}

#[test]
fn wanted_skips_links_without_gateway() {
    // `wwan0` has no gateway and is not point-to-point: skipped, and the
    // next link takes its rank; a repeated name counts once.
    let w = wanted(
        &names(&["wwan0", "bb0", "wwan0", "bb0", "ppp0"]),
        &three_v4,
        10,
    );
    assert_eq!(
        w,
        vec![want("bb0", gw("10.11.0.1"), 10), want("ppp0", None, 20)]
    );
    assert!(wanted(&names(&["wwan0"]), &three_v4, 10).is_empty());
}

#[test]
fn plan_from_nothing_adds_three_chosen_first() {
    let w = wanted(&names(&["wl0", "bb0", "ppp0"]), &three_v4, 10);
    let ops = plan(&[], &w);
    assert_eq!(
        ops,
        vec![
            RouteOp::Add(w[0].clone()),
            RouteOp::Add(w[1].clone()),
            RouteOp::Add(w[2].clone()),
        ]
    );
    simulate(&[], &w, &ops);
}

#[test]
fn plan_identical_does_nothing() {
    let w = wanted(&names(&["bb0", "wl0", "ppp0"]), &three_v4, 10);
    assert!(plan(&installed(&w), &w).is_empty());
    // Order of the dump does not matter.
    let mut have = installed(&w);
    have.reverse();
    assert!(plan(&have, &w).is_empty());
    assert!(plan(&[], &[]).is_empty());
}

#[test]
fn plan_swaps_chosen_without_metric_clash() {
    let before = wanted(&names(&["bb0", "wl0", "ppp0"]), &three_v4, 10);
    let after = wanted(&names(&["wl0", "bb0", "ppp0"]), &three_v4, 10);
    let have = installed(&before);
    let ops = plan(&have, &after);
    let steps = simulate(&have, &after, &ops);
    // ppp0 keeps its route; the kernel uses wl0 after the first step.
    assert!(ops.iter().all(|op| !op.to_string().contains("ppp0")));
    assert_eq!(chosen(&steps[0], Family::V4), Some("wl0"), "{ops:?}");
    assert_eq!(ops.len(), 4, "{ops:?}");
    assert_eq!(
        ops[0].to_string(),
        "del default via 10.11.0.1 dev bb0 metric 10 proto 252"
    );
    assert_eq!(
        ops[1].to_string(),
        "add default via 10.12.0.1 dev wl0 metric 10 proto 252"
    );

    // The last link becomes the first.
    let after = wanted(&names(&["ppp0", "bb0", "wl0"]), &three_v4, 10);
    let ops = plan(&have, &after);
    let steps = simulate(&have, &after, &ops);
    assert_eq!(chosen(&steps[1], Family::V4), Some("ppp0"), "{ops:?}");
}

#[test]
fn plan_link_vanished() {
    let before = wanted(&names(&["bb0", "wl0", "ppp0"]), &three_v4, 10);
    let have = installed(&before);
    // wl0 is gone: ppp0 moves up to 20, wl0's route goes.
    let after = wanted(&names(&["bb0", "ppp0"]), &three_v4, 10);
    let ops = plan(&have, &after);
    simulate(&have, &after, &ops);
    assert!(!ops.iter().any(|op| op.to_string().contains("bb0")));
    assert!(ops.contains(&RouteOp::Delete(have[1].clone())));
    assert!(ops.contains(&RouteOp::Delete(have[2].clone())));
    assert!(ops.contains(&RouteOp::Add(want("ppp0", None, 20))));

    // The chosen link vanished.
    let after = wanted(&names(&["wl0", "ppp0"]), &three_v4, 10);
    let ops = plan(&have, &after);
    let steps = simulate(&have, &after, &ops);
    assert_eq!(chosen(&steps[0], Family::V4), Some("wl0"), "{ops:?}");

    // Nothing wanted any more: everything goes.
    let ops = plan(&have, &[]);
    assert_eq!(ops.len(), 3);
    assert!(ops.iter().all(|op| matches!(op, RouteOp::Delete(_))));
}

#[test]
fn plan_gateway_changed() {
    let have = vec![
        own("bb0", 2, gw("10.11.0.1"), 10),
        own("wl0", 3, gw("10.12.0.1"), 20),
    ];
    let want_ = vec![
        want("bb0", gw("10.11.0.1"), 10),
        want("wl0", gw("10.12.7.1"), 20),
    ];
    let ops = plan(&have, &want_);
    assert_eq!(
        ops,
        vec![
            RouteOp::Delete(have[1].clone()),
            RouteOp::Add(want_[1].clone())
        ]
    );
    simulate(&have, &want_, &ops);

    // The only route's gateway changes: bridged by a temporary route.
    let have = vec![own("bb0", 2, gw("10.11.0.1"), 10)];
    let want_ = vec![want("bb0", gw("10.11.9.1"), 10)];
    let ops = plan(&have, &want_);
    assert_eq!(ops.len(), 4, "{ops:?}");
    assert_eq!(
        ops[0].to_string(),
        "add default via 10.11.9.1 dev bb0 metric 11 proto 252"
    );
    simulate(&have, &want_, &ops);
}

#[test]
fn plan_removes_duplicates() {
    // Left over from a crash at other metrics, plus a repeat.
    let have = vec![
        own("bb0", 2, gw("10.11.0.1"), 10),
        own("bb0", 2, gw("10.11.0.1"), 40),
        own("wl0", 3, gw("10.12.0.1"), 20),
    ];
    let want_ = wanted(&names(&["bb0", "wl0"]), &three_v4, 10);
    let ops = plan(&have, &want_);
    assert_eq!(ops, vec![RouteOp::Delete(have[1].clone())]);
    simulate(&have, &want_, &ops);
}

#[test]
fn display_like_ip_route() {
    assert_eq!(
        RouteOp::Add(want("bb0", gw("10.11.0.1"), 10)).to_string(),
        "add default via 10.11.0.1 dev bb0 metric 10 proto 252"
    );
    assert_eq!(
        RouteOp::Delete(own("ppp0", 9, None, 30)).to_string(),
        "del default dev ppp0 metric 30 proto 252"
    );
    assert_eq!(
        RouteOp::Add(want("bb0", gw("fe80::1"), 10)).to_string(),
        "add ::/0 via fe80::1 dev bb0 metric 10 proto 252"
    );
    assert_eq!(
        RouteOp::Add(want6("ppp0", 20)).to_string(),
        "add ::/0 dev ppp0 metric 20 proto 252"
    );
}

#[test]
fn errors_say_what_and_why() {
    let e = RouteError::PermissionDenied {
        op: "add",
        what: "default via 10.11.0.1 dev bb0 metric 10".into(),
    };
    assert!(e.to_string().contains("needs CAP_NET_ADMIN"), "{e}");
    let e = RouteError::Route {
        op: "delete",
        route: kernel::describe(&want("bb0", gw("10.11.0.1"), 10)),
        source: rtnetlink::Error::RequestFailed,
    };
    assert!(
        e.to_string()
            .starts_with("cannot delete IPv4 default route via 10.11.0.1 dev bb0 metric 10: "),
        "{e}"
    );
    assert_eq!(
        kernel::describe(&want6("ppp0", 20)),
        "IPv6 default route dev ppp0 metric 20"
    );
    assert!(matches!(
        set_ignore_linkdown("../x"),
        Err(RouteError::BadInterfaceName(_))
    ));
    assert!(!valid_ifname(""));
    assert!(valid_ifname("eth0.100"));
}

#[test]
fn wanted_gives_each_family_its_own_ranks() {
    // bb0 is the only link with IPv6: it gets the first IPv6 metric even
    // where it is second for IPv4.
    let w = wanted(&names(&["wl0", "bb0", "ppp0"]), &three, 10);
    assert_eq!(
        w,
        vec![
            want("wl0", gw("10.12.0.1"), 10),
            want("bb0", gw("10.11.0.1"), 20),
            want("ppp0", None, 30),
            want("bb0", gw("fe80::1"), 10),
        ]
    );
    // A gateway of the other family is not used (nor is its rank).
    let crossed = |n: &str, f: Family| match (n, f) {
        ("bb0", Family::V6) => Some(gw("10.11.0.1")),
        ("wl0", Family::V6) => Some(gw("2001:db8:12::1")),
        ("bb0", Family::V4) => Some(gw("10.11.0.1")),
        _ => None,
    };
    assert_eq!(
        wanted(&names(&["bb0", "wl0"]), &crossed, 10),
        vec![
            want("bb0", gw("10.11.0.1"), 10),
            want("wl0", gw("2001:db8:12::1"), 10),
        ]
    );
    // An IPv6 on-link route.
    let onlink6 = |n: &str, f: Family| (n == "ppp0" && f == Family::V6).then_some(None);
    assert_eq!(
        wanted(&names(&["ppp0"]), &onlink6, 10),
        vec![want6("ppp0", 10)]
    );
}

#[test]
fn plan_fails_over_both_families_and_keeps_a_route_in_each() {
    let g = |v4: &'static str, v6: &'static str| {
        move |n: &str, f: Family| match (n, f) {
            ("bb0", Family::V4) => Some(gw(v4)),
            ("bb0", Family::V6) => Some(gw(v6)),
            ("wl0", Family::V4) => Some(gw("10.12.0.1")),
            ("wl0", Family::V6) => Some(gw("2001:db8:12::1")),
            _ => None,
        }
    };
    let gws = g("10.11.0.1", "2001:db8:11::1");
    let before = wanted(&names(&["bb0", "wl0"]), &gws, 10);
    let after = wanted(&names(&["wl0", "bb0"]), &gws, 10);
    assert_eq!(before.len(), 4);
    let have = installed(&before);
    let ops = plan(&have, &after);
    let steps = simulate(&have, &after, &ops);
    let last = steps.last().unwrap();
    assert_eq!(chosen(last, Family::V4), Some("wl0"));
    assert_eq!(chosen(last, Family::V6), Some("wl0"));
    // IPv4 first; each family moves on its own first step.
    let first_v6 = ops
        .iter()
        .position(|op| op.to_string().contains("::/0"))
        .unwrap();
    assert!(
        ops[..first_v6]
            .iter()
            .all(|op| !op.to_string().contains("::/0"))
    );
    assert_eq!(
        chosen(&steps[first_v6 + 1], Family::V6),
        Some("wl0"),
        "{ops:?}"
    );
    assert_eq!(
        ops[first_v6 + 1].to_string(),
        "add ::/0 via 2001:db8:12::1 dev wl0 metric 10 proto 252"
    );
    // Same metrics in both families never clash.
    assert!(plan(&installed(&after), &after).is_empty());
    // Only the IPv6 gateway of bb0 changes: IPv4 is left alone.
    let moved = wanted(&names(&["bb0", "wl0"]), &g("10.11.0.1", "fe80::1"), 10);
    let ops = plan(&have, &moved);
    assert!(
        ops.iter().all(|op| op.to_string().contains("::/0")),
        "{ops:?}"
    );
    simulate(&have, &moved, &ops);
    // Nothing wanted: both families go.
    assert_eq!(plan(&have, &[]).len(), 4);
}

#[test]
fn gateways_prefer_the_config_then_the_system_and_remember() {
    let mut g = Gateways::default();
    assert_eq!(g.hop("bb0", Family::V4), None);
    // PPP and raw-IP WWAN are on-link in IPv4 when nothing else is known.
    assert_eq!(g.hop("ppp0", Family::V4), Some(None));
    assert_eq!(g.hop("wwan0", Family::V4), Some(None));
    assert_eq!(g.hop("ppp0", Family::V6), None);

    g.learn("bb0", Family::V4, None, Some(gw("10.11.0.1")));
    g.learn("bb0", Family::V6, None, Some(gw("fe80::1")));
    assert_eq!(g.hop("bb0", Family::V4), Some(gw("10.11.0.1")));
    assert_eq!(g.hop("bb0", Family::V6), Some(gw("fe80::1")));
    // The system's route vanished for a while: the last gateway stays.
    g.learn("bb0", Family::V6, None, None);
    assert_eq!(g.hop("bb0", Family::V6), Some(gw("fe80::1")));
    // A configured gateway wins over the learned one; one of the wrong
    // family is ignored.
    g.learn("bb0", Family::V6, gw("2001:db8:11::1"), Some(gw("fe80::1")));
    assert_eq!(g.hop("bb0", Family::V6), Some(gw("2001:db8:11::1")));
    g.learn(
        "bb0",
        Family::V4,
        gw("2001:db8:11::9"),
        Some(gw("10.11.0.7")),
    );
    assert_eq!(g.hop("bb0", Family::V4), Some(gw("10.11.0.7")));
    // A learned on-link IPv6 route.
    g.learn("ppp0", Family::V6, None, Some(None));
    assert_eq!(g.hop("ppp0", Family::V6), Some(None));
    assert_eq!(
        g.wanted(&names(&["ppp0", "bb0"]), 10),
        vec![
            want("ppp0", None, 10),
            want("bb0", gw("10.11.0.7"), 20),
            want6("ppp0", 10),
            want("bb0", gw("2001:db8:11::1"), 20),
        ]
    );
}

fn message(
    family: AddressFamily,
    proto: RouteProtocol,
    attrs: Vec<RouteAttribute>,
) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family;
    m.header.table = RouteHeader::RT_TABLE_MAIN;
    m.header.kind = RouteType::Unicast;
    m.header.protocol = proto;
    m.attributes = attrs;
    m
}

#[test]
fn defaults_of_both_families_and_learned_gateways() {
    let v4 = |a: &str| RouteAttribute::Gateway(RouteAddress::Inet(a.parse().unwrap()));
    let v6 = |a: &str| RouteAttribute::Gateway(RouteAddress::Inet6(a.parse().unwrap()));
    let own = RouteProtocol::from(RTPROT_LINKWATCH);
    let dhcp = message(
        AddressFamily::Inet,
        RouteProtocol::Dhcp,
        vec![
            v4("10.11.0.1"),
            RouteAttribute::Oif(2),
            RouteAttribute::Priority(100),
        ],
    );
    let mine = message(
        AddressFamily::Inet,
        own,
        vec![
            v4("10.11.0.254"),
            RouteAttribute::Oif(2),
            RouteAttribute::Priority(10),
        ],
    );
    let ra = message(
        AddressFamily::Inet6,
        RouteProtocol::Ra,
        vec![
            v6("fe80::1"),
            RouteAttribute::Oif(2),
            RouteAttribute::Priority(1024),
        ],
    );
    let static6 = message(
        AddressFamily::Inet6,
        RouteProtocol::Static,
        vec![
            v6("2001:db8:11::1"),
            RouteAttribute::Oif(2),
            RouteAttribute::Priority(100),
        ],
    );
    let mine6 = message(
        AddressFamily::Inet6,
        own,
        vec![
            v6("2001:db8:11::1"),
            RouteAttribute::Oif(2),
            RouteAttribute::Priority(10),
        ],
    );
    let onlink6 = message(
        AddressFamily::Inet6,
        RouteProtocol::Boot,
        vec![RouteAttribute::Oif(7), RouteAttribute::Priority(100)],
    );
    let mut other_table = dhcp.clone();
    other_table.attributes.push(RouteAttribute::Table(1000));
    let mut subnet = ra.clone();
    subnet.header.destination_prefix_length = 64;

    let routes: Vec<KernelDefault> = [dhcp, mine, ra, static6, mine6, onlink6, other_table, subnet]
        .iter()
        .flat_map(defaults_in)
        .collect();
    assert_eq!(routes.len(), 6, "{routes:?}");
    assert_eq!(routes[1].protocol, RTPROT_LINKWATCH);
    assert_eq!(routes[4].family, Family::V6);
    let learned = learned_in(&routes);
    assert_eq!(learned.get(&(2, Family::V4)), Some(&gw("10.11.0.1")));
    // The lowest metric of the system's routes, never the agent's own.
    assert_eq!(learned.get(&(2, Family::V6)), Some(&gw("2001:db8:11::1")));
    assert_eq!(learned.get(&(7, Family::V6)), Some(&None));
    assert_eq!(learned.get(&(7, Family::V4)), None);
    assert_eq!(learned.len(), 3);
}

fn arb_route() -> impl Strategy<Value = (u8, bool, u8, bool)> {
    // (link 0..4, second gateway, metric slot 0..6, IPv6)
    (0u8..4, any::<bool>(), 0u8..6, any::<bool>())
}

proptest! {
    #[test]
    fn plan_always_reaches_want_safely(
        have in proptest::collection::vec(arb_route(), 0..8),
        order in proptest::collection::vec(0u8..4, 0..5),
        gws in proptest::collection::vec(any::<bool>(), 4),
        v6 in proptest::collection::vec(any::<bool>(), 4),
    ) {
        let name = |i: u8| format!("l{i}");
        let g = |i: u8, second: bool, family: Family| -> Option<IpAddr> {
            let last = if second { 2 } else { 1 };
            Some(match family {
                Family::V4 => IpAddr::V4(Ipv4Addr::new(10, 40 + i, 0, last)),
                Family::V6 => format!("2001:db8:{i}::{last}").parse().unwrap(),
            })
        };
        // The kernel holds at most one route per family and metric.
        let mut have_routes: Vec<OwnRoute> = Vec::new();
        for (l, second, slot, is_v6) in have {
            let family = if is_v6 { Family::V6 } else { Family::V4 };
            let metric = 10 + u32::from(slot) * 10;
            if have_routes.iter().all(|r| r.family != family || r.metric != metric) {
                have_routes.push(OwnRoute {
                    ifname: name(l),
                    ifindex: u32::from(l) + 2,
                    family,
                    gateway: g(l, second, family),
                    metric,
                });
            }
        }
        let order: Vec<String> = order.into_iter().map(name).collect();
        let gateways = |n: &str, family: Family| -> Option<Option<IpAddr>> {
            let i: u8 = n[1..].parse().unwrap();
            match (i, family) {
                (3, Family::V4) => Some(None),
                (_, Family::V6) if !v6[usize::from(i)] => None,
                _ => Some(g(i, gws[usize::from(i)], family)),
            }
        };
        let want_ = wanted(&order, &gateways, 10);
        let ops = plan(&have_routes, &want_);
        simulate(&have_routes, &want_, &ops);
        prop_assert!(plan(&installed(&want_), &want_).is_empty());
    }
}
