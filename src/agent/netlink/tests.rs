//! Unit tests of the netlink helpers (`super`).

use super::*;
use rtnetlink::packet_route::route::{RouteNextHop, RouteProtocol};

fn r(ifname: &str, ifindex: u32, metric: u32, ipv6: bool) -> DefaultRoute {
    DefaultRoute {
        ifname: ifname.into(),
        ifindex,
        metric,
        gateway: None,
        ipv6,
    }
}

fn all(_: &str) -> bool {
    true
}

#[test]
fn active_link_empty_and_no_carrier() {
    assert_eq!(active_link(&[], &all), None);
    let routes = [r("eth0", 2, 100, false), r("wwan0", 5, 300, true)];
    assert_eq!(active_link(&routes, &|_| false), None);
}

#[test]
fn active_link_lowest_metric_wins() {
    let routes = [
        r("wwan0", 5, 300, false),
        r("eth0", 2, 100, false),
        r("wlan0", 3, 200, false),
    ];
    assert_eq!(active_link(&routes, &all).as_deref(), Some("eth0"));
    // Order of the input does not matter.
    let mut rev = routes.to_vec();
    rev.reverse();
    assert_eq!(active_link(&rev, &all).as_deref(), Some("eth0"));
}

#[test]
fn active_link_skips_links_without_carrier() {
    let routes = [
        r("eth0", 2, 100, false),
        r("wlan0", 3, 200, false),
        r("wwan0", 5, 300, false),
    ];
    assert_eq!(
        active_link(&routes, &|n| n != "eth0").as_deref(),
        Some("wlan0")
    );
    assert_eq!(
        active_link(&routes, &|n| n == "wwan0").as_deref(),
        Some("wwan0")
    );
}

#[test]
fn active_link_ties_go_to_lowest_index() {
    let routes = [r("eth1", 7, 100, false), r("eth0", 4, 100, false)];
    assert_eq!(active_link(&routes, &all).as_deref(), Some("eth0"));
    // Metric 0 (no priority given) beats any explicit metric.
    let routes = [r("eth1", 7, 0, false), r("eth0", 4, 1, false)];
    assert_eq!(active_link(&routes, &all).as_deref(), Some("eth1"));
}

#[test]
fn active_link_prefers_ipv4_even_with_higher_metric() {
    let routes = [r("eth0", 2, 1024, true), r("wwan0", 5, 700, false)];
    assert_eq!(active_link(&routes, &all).as_deref(), Some("wwan0"));
}

#[test]
fn active_link_falls_back_to_ipv6() {
    let routes = [
        r("eth0", 2, 100, false),
        r("wlan0", 3, 1024, true),
        r("wwan0", 5, 256, true),
    ];
    // eth0 has no carrier: no IPv4 route qualifies.
    assert_eq!(
        active_link(&routes, &|n| n != "eth0").as_deref(),
        Some("wwan0")
    );
    // IPv6 route without carrier is skipped too.
    assert_eq!(
        active_link(&routes, &|n| n == "wlan0").as_deref(),
        Some("wlan0")
    );
}

#[test]
fn active_link_one_link_many_routes() {
    // The same link with an IPv4 and an IPv6 route, plus a second link.
    let routes = [
        r("eth0", 2, 100, false),
        r("eth0", 2, 100, true),
        r("ppp0", 9, 50, false),
    ];
    assert_eq!(active_link(&routes, &all).as_deref(), Some("ppp0"));
    assert_eq!(
        active_link(&routes, &|n| n == "eth0").as_deref(),
        Some("eth0")
    );
}

/// The hops of `msg` as `(ifindex, metric, gateway, ipv6)`.
fn defaults_in(msg: &RouteMessage) -> Vec<(u32, u32, Option<IpAddr>, bool)> {
    default_hops(msg)
        .into_iter()
        .map(|h| (h.ifindex, h.metric, h.gateway, h.ipv6))
        .collect()
}

fn route_msg(
    family: AddressFamily,
    dst_len: u8,
    table: u8,
    attrs: Vec<RouteAttribute>,
) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = family;
    m.header.destination_prefix_length = dst_len;
    m.header.table = table;
    m.header.kind = RouteType::Unicast;
    m.header.protocol = RouteProtocol::Static;
    m.attributes = attrs;
    m
}

#[test]
fn defaults_in_plain_multipath_and_filtered() {
    let gw: Ipv4Addr = "10.77.0.2".parse().unwrap();
    let main = RouteHeader::RT_TABLE_MAIN;
    let plain = route_msg(
        AddressFamily::Inet,
        0,
        main,
        vec![
            RouteAttribute::Gateway(RouteAddress::Inet(gw)),
            RouteAttribute::Oif(3),
            RouteAttribute::Priority(100),
        ],
    );
    assert_eq!(
        defaults_in(&plain),
        vec![(3, 100, Some(IpAddr::V4(gw)), false)]
    );

    let mut hop = RouteNextHop::default();
    hop.interface_index = 7;
    hop.attributes = vec![RouteAttribute::Gateway(RouteAddress::Inet6(
        "2001:db8::1".parse().unwrap(),
    ))];
    let multi = route_msg(
        AddressFamily::Inet6,
        0,
        main,
        vec![RouteAttribute::MultiPath(vec![hop])],
    );
    assert_eq!(
        defaults_in(&multi),
        vec![(7, 0, Some("2001:db8::1".parse().unwrap()), true)]
    );

    // Not a default route, another table, or a table given by attribute.
    let subnet = route_msg(AddressFamily::Inet, 24, main, vec![RouteAttribute::Oif(3)]);
    assert!(defaults_in(&subnet).is_empty());
    let other = route_msg(AddressFamily::Inet, 0, 100, vec![RouteAttribute::Oif(3)]);
    assert!(defaults_in(&other).is_empty());
    let big = route_msg(
        AddressFamily::Inet,
        0,
        main,
        vec![RouteAttribute::Table(1000), RouteAttribute::Oif(3)],
    );
    assert!(defaults_in(&big).is_empty());
    let mut unreachable = route_msg(AddressFamily::Inet6, 0, main, vec![RouteAttribute::Oif(1)]);
    unreachable.header.kind = RouteType::Unreachable;
    assert!(defaults_in(&unreachable).is_empty());
}

#[test]
fn carrier_rules() {
    let mut m = LinkMessage::default();
    m.attributes.push(LinkAttribute::OperState(State::Up));
    assert!(carrier_of(&m));
    for s in [
        State::Down,
        State::LowerLayerDown,
        State::NotPresent,
        State::Dormant,
    ] {
        m.attributes = vec![LinkAttribute::OperState(s)];
        m.header.flags = LinkFlags::LowerUp | LinkFlags::Up;
        assert!(!carrier_of(&m), "{s:?}");
    }
    m.attributes = vec![LinkAttribute::OperState(State::Unknown)];
    m.header.flags = LinkFlags::Up;
    assert!(!carrier_of(&m));
    m.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
    assert!(carrier_of(&m));
}

#[test]
fn global_ipv6_rules() {
    let addr = |s: &str| vec![AddressAttribute::Address(s.parse().unwrap())];
    assert!(is_usable_global_v6(
        AddressScope::Universe,
        &addr("2001:db8::5")
    ));
    assert!(!is_usable_global_v6(AddressScope::Link, &addr("fe80::1")));
    assert!(!is_usable_global_v6(
        AddressScope::Universe,
        &addr("fd12:3456::1")
    ));
    let mut tentative = addr("2001:db8::5");
    tentative.push(AddressAttribute::Flags(AddressFlags::Tentative));
    assert!(!is_usable_global_v6(AddressScope::Universe, &tentative));
}

#[test]
fn translate_dedups_and_names_removals() {
    let mut known = HashMap::new();
    let mut link = LinkMessage::default();
    link.header.index = 4;
    link.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
    link.attributes = vec![
        LinkAttribute::IfName("eth0".into()),
        LinkAttribute::OperState(State::Up),
    ];
    let up = LinkEvent::Changed {
        name: "eth0".into(),
        index: 4,
        carrier: true,
    };
    assert_eq!(
        translate(RouteNetlinkMessage::NewLink(link.clone()), &mut known),
        vec![up]
    );
    assert!(translate(RouteNetlinkMessage::NewLink(link.clone()), &mut known).is_empty());
    link.attributes[1] = LinkAttribute::OperState(State::LowerLayerDown);
    assert_eq!(
        translate(RouteNetlinkMessage::NewLink(link.clone()), &mut known),
        vec![LinkEvent::Changed {
            name: "eth0".into(),
            index: 4,
            carrier: false
        }]
    );
    let mut del = LinkMessage::default();
    del.header.index = 4;
    assert_eq!(
        translate(RouteNetlinkMessage::DelLink(del), &mut known),
        vec![LinkEvent::Removed {
            name: "eth0".into(),
            index: 4
        }]
    );
    assert!(known.is_empty());

    let subnet = route_msg(AddressFamily::Inet, 24, 254, vec![]);
    assert!(translate(RouteNetlinkMessage::NewRoute(subnet), &mut known).is_empty());
    let default = route_msg(AddressFamily::Inet, 0, 254, vec![]);
    assert_eq!(
        translate(RouteNetlinkMessage::DelRoute(default), &mut known),
        vec![LinkEvent::RoutesChanged]
    );
}
