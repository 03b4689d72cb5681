//! Unit tests of the route planning and netlink helpers (`super`).

use super::*;
use proptest::prelude::*;

fn gw(s: &str) -> Option<Ipv4Addr> {
    Some(s.parse().unwrap())
}

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn want(ifname: &str, gateway: Option<Ipv4Addr>, metric: u32) -> WantedRoute {
    WantedRoute {
        ifname: ifname.into(),
        gateway,
        metric,
    }
}

fn own(ifname: &str, ifindex: u32, gateway: Option<Ipv4Addr>, metric: u32) -> OwnRoute {
    OwnRoute {
        ifname: ifname.into(),
        ifindex,
        gateway,
        metric,
    }
}

/// Three links with gateways: `bb0` 10.11.0.1, `wl0` 10.12.0.1, `ppp0` on-link.
fn three(name: &str) -> Option<Option<Ipv4Addr>> {
    match name {
        "bb0" => Some(gw("10.11.0.1")),
        "wl0" => Some(gw("10.12.0.1")),
        "ppp0" => Some(None),
        _ => None,
    }
}

fn installed(w: &[WantedRoute]) -> Vec<OwnRoute> {
    w.iter()
        .enumerate()
        .map(|(i, r)| own(&r.ifname, i as u32 + 2, r.gateway, r.metric))
        .collect()
}

/// Run `ops` on a simulated main table holding the own routes `have`,
/// checking after each step: an add never meets a route of the same
/// metric, a delete finds its route, and once `want` is not empty there
/// is always at least one own route. Returns the table after each step.
fn simulate(
    have: &[OwnRoute],
    want: &[WantedRoute],
    ops: &[RouteOp],
) -> Vec<Vec<(String, Option<Ipv4Addr>, u32)>> {
    let mut table: Vec<(String, Option<Ipv4Addr>, u32)> = have
        .iter()
        .map(|r| (r.ifname.clone(), r.gateway, r.metric))
        .collect();
    let mut steps = Vec::new();
    for op in ops {
        match op {
            RouteOp::Add(r) => {
                assert!(
                    table.iter().all(|(_, _, m)| *m != r.metric),
                    "`{op}` meets a route of the same metric in {table:?}"
                );
                table.push((r.ifname.clone(), r.gateway, r.metric));
            }
            RouteOp::Delete(r) => {
                let key = (r.ifname.clone(), r.gateway, r.metric);
                let pos = table
                    .iter()
                    .position(|e| *e == key)
                    .unwrap_or_else(|| panic!("`{op}`: no such route in {table:?}"));
                table.remove(pos);
            }
        }
        if !want.is_empty()
            && steps
                .last()
                .map_or(!have.is_empty(), |t: &Vec<_>| !t.is_empty())
        {
            assert!(!table.is_empty(), "no default route after `{op}`");
        }
        steps.push(table.clone());
    }
    let mut end = table.clone();
    end.sort_by_key(|e| e.2);
    let mut expected: Vec<_> = want
        .iter()
        .map(|r| (r.ifname.clone(), r.gateway, r.metric))
        .collect();
    expected.sort_by_key(|e| e.2);
    assert_eq!(end, expected, "ops {ops:?} do not reach the wanted routes");
    steps
}

fn chosen(table: &[(String, Option<Ipv4Addr>, u32)]) -> Option<&str> {
    table.iter().min_by_key(|e| e.2).map(|e| e.0.as_str())
}

#[test]
fn wanted_orders_metrics() {
    let w = wanted(&names(&["wl0", "bb0", "ppp0"]), &three, 10);
    assert_eq!(
        w,
        vec![
            want("wl0", gw("10.12.0.1"), 10),
            want("bb0", gw("10.11.0.1"), 20),
            want("ppp0", None, 30),
        ]
    );
    let w = wanted(&names(&["ppp0", "bb0"]), &three, 50);
    assert_eq!(
        w,
        vec![want("ppp0", None, 50), want("bb0", gw("10.11.0.1"), 60)]
    );
    assert!(wanted(&[], &three, 10).is_empty());
}

#[test]
fn wanted_skips_links_without_gateway() {
    // `wwan0` has no gateway and is not point-to-point: skipped, and the
    // next link takes its rank; a repeated name counts once.
    let w = wanted(
        &names(&["wwan0", "bb0", "wwan0", "bb0", "ppp0"]),
        &three,
        10,
    );
    assert_eq!(
        w,
        vec![want("bb0", gw("10.11.0.1"), 10), want("ppp0", None, 20)]
    );
    assert!(wanted(&names(&["wwan0"]), &three, 10).is_empty());
}

#[test]
fn plan_from_nothing_adds_three_chosen_first() {
    let w = wanted(&names(&["wl0", "bb0", "ppp0"]), &three, 10);
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
    let w = wanted(&names(&["bb0", "wl0", "ppp0"]), &three, 10);
    assert!(plan(&installed(&w), &w).is_empty());
    // Order of the dump does not matter.
    let mut have = installed(&w);
    have.reverse();
    assert!(plan(&have, &w).is_empty());
    assert!(plan(&[], &[]).is_empty());
}

#[test]
fn plan_swaps_chosen_without_metric_clash() {
    let before = wanted(&names(&["bb0", "wl0", "ppp0"]), &three, 10);
    let after = wanted(&names(&["wl0", "bb0", "ppp0"]), &three, 10);
    let have = installed(&before);
    let ops = plan(&have, &after);
    let steps = simulate(&have, &after, &ops);
    // ppp0 keeps its route; the kernel uses wl0 after the first step.
    assert!(ops.iter().all(|op| !op.to_string().contains("ppp0")));
    assert_eq!(chosen(&steps[0]), Some("wl0"), "{ops:?}");
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
    let after = wanted(&names(&["ppp0", "bb0", "wl0"]), &three, 10);
    let ops = plan(&have, &after);
    let steps = simulate(&have, &after, &ops);
    assert_eq!(chosen(&steps[1]), Some("ppp0"), "{ops:?}");
}

#[test]
fn plan_link_vanished() {
    let before = wanted(&names(&["bb0", "wl0", "ppp0"]), &three, 10);
    let have = installed(&before);
    // wl0 is gone: ppp0 moves up to 20, wl0's route goes.
    let after = wanted(&names(&["bb0", "ppp0"]), &three, 10);
    let ops = plan(&have, &after);
    simulate(&have, &after, &ops);
    assert!(!ops.iter().any(|op| op.to_string().contains("bb0")));
    assert!(ops.contains(&RouteOp::Delete(have[1].clone())));
    assert!(ops.contains(&RouteOp::Delete(have[2].clone())));
    assert!(ops.contains(&RouteOp::Add(want("ppp0", None, 20))));

    // The chosen link vanished.
    let after = wanted(&names(&["wl0", "ppp0"]), &three, 10);
    let ops = plan(&have, &after);
    let steps = simulate(&have, &after, &ops);
    assert_eq!(chosen(&steps[0]), Some("wl0"), "{ops:?}");

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
    let want_ = wanted(&names(&["bb0", "wl0"]), &three, 10);
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
        ifname: "bb0".into(),
        gateway: gw("10.11.0.1"),
        metric: 10,
        source: rtnetlink::Error::RequestFailed,
    };
    assert!(
        e.to_string()
            .starts_with("cannot delete default route via 10.11.0.1 dev bb0 metric 10: "),
        "{e}"
    );
    assert!(matches!(
        set_ignore_linkdown("../x"),
        Err(RouteError::BadInterfaceName(_))
    ));
    assert!(!valid_ifname(""));
    assert!(valid_ifname("eth0.100"));
}

#[test]
fn v4_defaults_and_learned_gateway() {
    let mut dhcp = RouteMessage::default();
    dhcp.header.address_family = AddressFamily::Inet;
    dhcp.header.table = RouteHeader::RT_TABLE_MAIN;
    dhcp.header.kind = RouteType::Unicast;
    dhcp.header.protocol = RouteProtocol::Dhcp;
    dhcp.attributes = vec![
        RouteAttribute::Gateway(RouteAddress::Inet("10.11.0.1".parse().unwrap())),
        RouteAttribute::Oif(2),
        RouteAttribute::Priority(100),
    ];
    let mut mine = dhcp.clone();
    mine.header.protocol = RouteProtocol::from(RTPROT_LINKWATCH);
    mine.attributes = vec![
        RouteAttribute::Gateway(RouteAddress::Inet("10.11.0.254".parse().unwrap())),
        RouteAttribute::Oif(2),
        RouteAttribute::Priority(10),
    ];
    let mut other_table = dhcp.clone();
    other_table.attributes.push(RouteAttribute::Table(1000));
    let mut subnet = dhcp.clone();
    subnet.header.destination_prefix_length = 24;

    let routes: Vec<V4Default> = [dhcp, mine, other_table, subnet]
        .iter()
        .flat_map(v4_defaults_in)
        .collect();
    assert_eq!(routes.len(), 2, "{routes:?}");
    assert_eq!(routes[1].protocol, RTPROT_LINKWATCH);
    assert_eq!(learned_in(&routes, 2), gw("10.11.0.1"));
    assert_eq!(learned_in(&routes, 3), None);
}

fn arb_route() -> impl Strategy<Value = (u8, bool, u8)> {
    // (link 0..4, with gateway, metric slot 0..6)
    (0u8..4, any::<bool>(), 0u8..6)
}

proptest! {
    #[test]
    fn plan_always_reaches_want_safely(
        have in proptest::collection::vec(arb_route(), 0..5),
        order in proptest::collection::vec(0u8..4, 0..5),
        gws in proptest::collection::vec(any::<bool>(), 4),
    ) {
        let name = |i: u8| format!("l{i}");
        let g = |i: u8, second: bool| -> Option<Ipv4Addr> {
            Some(Ipv4Addr::new(10, 40 + i, 0, if second { 2 } else { 1 }))
        };
        // The kernel holds at most one route per metric.
        let mut have_routes: Vec<OwnRoute> = Vec::new();
        for (l, second, slot) in have {
            let metric = 10 + u32::from(slot) * 10;
            if have_routes.iter().all(|r| r.metric != metric) {
                have_routes.push(own(&name(l), u32::from(l) + 2, g(l, second), metric));
            }
        }
        let order: Vec<String> = order.into_iter().map(name).collect();
        let gateways = |n: &str| -> Option<Option<Ipv4Addr>> {
            let i: u8 = n[1..].parse().unwrap();
            match i {
                3 => Some(None),
                _ => Some(g(i, gws[usize::from(i)])),
            }
        };
        let want_ = wanted(&order, &gateways, 10);
        let ops = plan(&have_routes, &want_);
        simulate(&have_routes, &want_, &ops);
        prop_assert!(plan(&installed(&want_), &want_).is_empty());
    }
}
