//! Netlink (rtnetlink 0.24): interface and default-route snapshots, the
//! link/route/address event watcher, and the pure choice of the link the
//! kernel's default route uses ([`active_link`]).
//!
//! Each snapshot function opens its own short-lived netlink socket in the
//! caller's network namespace; [`watch`] keeps one multicast socket open.

use futures::stream::{StreamExt, TryStreamExt};
use rtnetlink::packet_core::NetlinkPayload;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressScope};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType, RouteVia,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::AsyncSocket;
use rtnetlink::{Handle, MulticastGroup, RouteMessageBuilder};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

/// A netlink operation that failed, with the object it was about where there is one.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a netlink socket to {op}: {source}")]
    Open {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("netlink request to {op} failed: {source}")]
    Request {
        op: &'static str,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("netlink request to {op} for {object} failed: {source}")]
    RequestOn {
        op: &'static str,
        object: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("the netlink socket used to {op} closed unexpectedly")]
    Closed { op: &'static str },
}

/// One interface as the kernel sees it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    pub name: String,
    pub index: u32,
    /// Operational state up (or unknown with the lower layer up).
    pub carrier: bool,
    /// Administratively up (`ip link set ... up`).
    pub admin_up: bool,
}

/// One default route (IPv4 `0.0.0.0/0` or IPv6 `::/0`) of the main table.
/// A multipath route gives one entry per next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    pub ifname: String,
    pub ifindex: u32,
    /// The route's priority (`metric`); 0 when the kernel reports none.
    pub metric: u32,
    pub gateway: Option<IpAddr>,
    pub ipv6: bool,
}

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// An interface appeared, was renamed, or its carrier changed (see
    /// [`IfaceInfo::carrier`]). Repeats of an unchanged state are not sent.
    Changed {
        name: String,
        index: u32,
        carrier: bool,
    },
    /// An interface disappeared.
    Removed { name: String, index: u32 },
    /// A default route (any table) was added or removed: read them again.
    /// The kernel drops routes on carrier loss without telling, so re-read
    /// on [`LinkEvent::Changed`] too.
    RoutesChanged,
    /// An address of this interface was added, removed or changed.
    AddressesChanged { index: u32 },
}

/// Aborts the spawned netlink connection task when dropped, so a snapshot
/// never leaks its socket.
pub(crate) struct ConnGuard(JoinHandle<()>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A short-lived rtnetlink connection (also used by [`super::routes`]).
pub(crate) fn open_connection() -> std::io::Result<(Handle, ConnGuard)> {
    let (conn, handle, _messages) = rtnetlink::new_connection()?;
    Ok((handle, ConnGuard(tokio::spawn(conn))))
}

fn connect(op: &'static str) -> Result<(Handle, ConnGuard), NetlinkError> {
    open_connection().map_err(|source| NetlinkError::Open { op, source })
}

/// Carrier from a link message: oper state Up; Unknown (drivers that do not
/// report an oper state, `lo`, some tun and PPP devices) falls back to the
/// `IFF_LOWER_UP` flag; everything else (Down, LowerLayerDown, NotPresent,
/// Dormant, Testing) is no carrier.
fn carrier_of(msg: &LinkMessage) -> bool {
    let oper = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::OperState(s) => Some(*s),
        _ => None,
    });
    match oper {
        Some(State::Up) => true,
        Some(State::Unknown) | None => msg.header.flags.contains(LinkFlags::LowerUp),
        Some(_) => false,
    }
}

fn name_of(msg: &LinkMessage) -> Option<String> {
    msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

fn info_of(msg: &LinkMessage) -> Option<IfaceInfo> {
    Some(IfaceInfo {
        name: name_of(msg)?,
        index: msg.header.index,
        carrier: carrier_of(msg),
        admin_up: msg.header.flags.contains(LinkFlags::Up),
    })
}

async fn dump_links(handle: &Handle) -> Result<Vec<IfaceInfo>, NetlinkError> {
    let mut links = handle.link().get().execute();
    let mut out = Vec::new();
    while let Some(msg) = links
        .try_next()
        .await
        .map_err(|source| NetlinkError::Request {
            op: "dump links",
            source,
        })?
    {
        out.extend(info_of(&msg));
    }
    out.sort_by_key(|i| i.index);
    Ok(out)
}

/// Every interface of the current network namespace, by index.
pub async fn interfaces() -> Result<Vec<IfaceInfo>, NetlinkError> {
    let (handle, _guard) = connect("dump links")?;
    dump_links(&handle).await
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn gateway_in(attrs: &[RouteAttribute]) -> Option<IpAddr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(g) => route_addr(g),
        RouteAttribute::Via(RouteVia::Inet(v4)) => Some(IpAddr::V4(*v4)),
        RouteAttribute::Via(RouteVia::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    })
}

/// The table a route is in (the `RTA_TABLE` attribute wins over the header's byte).
fn table_of(msg: &RouteMessage) -> u32 {
    msg.attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(msg.header.table))
}

fn is_default(msg: &RouteMessage) -> bool {
    msg.header.destination_prefix_length == 0 && msg.header.source_prefix_length == 0
}

/// The default routes in one dumped route message: `(ifindex, metric,
/// gateway, ipv6)` per next hop. Pure, so it is unit-tested.
fn defaults_in(msg: &RouteMessage) -> Vec<(u32, u32, Option<IpAddr>, bool)> {
    let ipv6 = match msg.header.address_family {
        AddressFamily::Inet => false,
        AddressFamily::Inet6 => true,
        _ => return Vec::new(),
    };
    if !is_default(msg)
        || msg.header.kind != RouteType::Unicast
        || table_of(msg) != u32::from(RouteHeader::RT_TABLE_MAIN)
    {
        return Vec::new();
    }
    let metric = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Priority(p) => Some(*p),
            _ => None,
        })
        .unwrap_or(0);
    let mut out = Vec::new();
    for a in &msg.attributes {
        match a {
            RouteAttribute::Oif(index) => {
                out.push((*index, metric, gateway_in(&msg.attributes), ipv6));
            }
            RouteAttribute::MultiPath(hops) => {
                for hop in hops {
                    out.push((
                        hop.interface_index,
                        metric,
                        gateway_in(&hop.attributes),
                        ipv6,
                    ));
                }
            }
            _ => {}
        }
    }
    out
}

/// The IPv4 and IPv6 default routes of the main table.
pub async fn default_routes() -> Result<Vec<DefaultRoute>, NetlinkError> {
    let op = "dump default routes";
    let (handle, _guard) = connect(op)?;
    let names: HashMap<u32, String> = dump_links(&handle)
        .await?
        .into_iter()
        .map(|i| (i.index, i.name))
        .collect();
    let mut out = Vec::new();
    for query in [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ] {
        let mut routes = handle.route().get(query).execute();
        while let Some(msg) = routes
            .try_next()
            .await
            .map_err(|source| NetlinkError::Request { op, source })?
        {
            for (ifindex, metric, gateway, ipv6) in defaults_in(&msg) {
                // A route whose interface vanished between the two dumps is stale.
                if let Some(name) = names.get(&ifindex) {
                    out.push(DefaultRoute {
                        ifname: name.clone(),
                        ifindex,
                        metric,
                        gateway,
                        ipv6,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Is this a usable global IPv6 address: scope universe, not a unique local
/// address (fc00::/7 reaches no internet), not tentative or failed DAD?
fn is_usable_global_v6(header_scope: AddressScope, attrs: &[AddressAttribute]) -> bool {
    if header_scope != AddressScope::Universe {
        return false;
    }
    let flags = attrs.iter().find_map(|a| match a {
        AddressAttribute::Flags(f) => Some(*f),
        _ => None,
    });
    if flags.is_some_and(|f| f.intersects(AddressFlags::Tentative | AddressFlags::Dadfailed)) {
        return false;
    }
    attrs.iter().any(|a| match a {
        AddressAttribute::Address(IpAddr::V6(v6)) | AddressAttribute::Local(IpAddr::V6(v6)) => {
            (v6.segments()[0] & 0xfe00) != 0xfc00
        }
        _ => false,
    })
}

/// Does interface `index` have a global IPv6 address (scope universe, not
/// ULA, DAD done)?
pub async fn has_global_ipv6(index: u32) -> Result<bool, NetlinkError> {
    let op = "dump addresses";
    let (handle, _guard) = connect(op)?;
    let mut addrs = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(msg) = addrs
        .try_next()
        .await
        .map_err(|source| NetlinkError::RequestOn {
            op,
            object: format!("interface index {index}"),
            source,
        })?
    {
        if msg.header.family == AddressFamily::Inet6
            && is_usable_global_v6(msg.header.scope, &msg.attributes)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The interface the kernel's default route goes through: among the IPv4
/// default routes whose interface has carrier, the lowest metric (ties: the
/// lowest interface index); the IPv6 routes the same way when no IPv4 one
/// qualifies. `None` when no default route has carrier.
pub fn active_link(routes: &[DefaultRoute], carrier: &dyn Fn(&str) -> bool) -> Option<String> {
    let best = |ipv6: bool| {
        routes
            .iter()
            .filter(|r| r.ipv6 == ipv6 && carrier(&r.ifname))
            .min_by_key(|r| (r.metric, r.ifindex))
    };
    best(false).or_else(|| best(true)).map(|r| r.ifname.clone())
}

/// Watch link, route and address changes of the current network namespace
/// and send them to `tx` until its receiver is dropped (then `Ok`).
///
/// Events are forwarded as they are read from the socket, no batching, so a
/// carrier loss reaches the receiver within milliseconds of the kernel's
/// notification. If the socket's buffer overflows (events lost), the watcher
/// resynchronises itself: it dumps the links, sends what changed, and sends
/// `RoutesChanged` and `AddressesChanged` for every interface.
pub async fn watch(tx: UnboundedSender<LinkEvent>) -> Result<(), NetlinkError> {
    let op = "watch links, routes and addresses";
    let (mut conn, _handle, mut messages) = rtnetlink::new_multicast_connection(&[
        MulticastGroup::Link,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv6Route,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
    ])
    .map_err(|source| NetlinkError::Open { op, source })?;
    // A bigger buffer makes overruns during event storms rarer. The kernel
    // caps it at net.core.rmem_max; a failure here is not fatal.
    let _ = conn.socket_mut().socket_mut().set_rx_buf_sz(1 << 20);

    let mut known: HashMap<u32, (String, bool)> = HashMap::new();
    // The connection future is polled here, in this task, rather than
    // spawned: it ends with the watcher and needs no runtime handle.
    let mut conn = std::pin::pin!(conn);
    loop {
        let msg = tokio::select! {
            biased;
            _ = tx.closed() => return Ok(()),
            m = messages.next() => m,
            _ = &mut conn => return Err(NetlinkError::Closed { op }),
        };
        let Some((msg, _addr)) = msg else {
            return Err(NetlinkError::Closed { op });
        };
        let events = match msg.payload {
            NetlinkPayload::InnerMessage(inner) => translate(inner, &mut known),
            NetlinkPayload::Overrun(_) => resync(&mut known).await?,
            _ => Vec::new(),
        };
        for ev in events {
            if tx.send(ev).is_err() {
                return Ok(());
            }
        }
    }
}

/// Turn one notification into events, remembering each link's last reported
/// `(name, carrier)` so that repeats are not sent.
fn translate(msg: RouteNetlinkMessage, known: &mut HashMap<u32, (String, bool)>) -> Vec<LinkEvent> {
    match msg {
        RouteNetlinkMessage::NewLink(link) => {
            let Some(info) = info_of(&link) else {
                return Vec::new();
            };
            let state = (info.name.clone(), info.carrier);
            if known.get(&info.index) == Some(&state) {
                return Vec::new();
            }
            known.insert(info.index, state);
            vec![LinkEvent::Changed {
                name: info.name,
                index: info.index,
                carrier: info.carrier,
            }]
        }
        RouteNetlinkMessage::DelLink(link) => {
            let index = link.header.index;
            let remembered = known.remove(&index).map(|(n, _)| n);
            match name_of(&link).or(remembered) {
                Some(name) => vec![LinkEvent::Removed { name, index }],
                None => Vec::new(),
            }
        }
        RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r) => {
            if is_default(&r) {
                vec![LinkEvent::RoutesChanged]
            } else {
                Vec::new()
            }
        }
        RouteNetlinkMessage::NewAddress(a) | RouteNetlinkMessage::DelAddress(a) => {
            vec![LinkEvent::AddressesChanged {
                index: a.header.index,
            }]
        }
        _ => Vec::new(),
    }
}

/// After lost notifications: compare a fresh link dump with what was last
/// reported and say everything that may have changed.
async fn resync(known: &mut HashMap<u32, (String, bool)>) -> Result<Vec<LinkEvent>, NetlinkError> {
    let now = interfaces().await?;
    let mut events = Vec::new();
    let present: std::collections::HashSet<u32> = now.iter().map(|i| i.index).collect();
    let mut gone: Vec<(u32, String)> = known
        .iter()
        .filter(|(index, _)| !present.contains(index))
        .map(|(index, (name, _))| (*index, name.clone()))
        .collect();
    gone.sort();
    for (index, name) in gone {
        known.remove(&index);
        events.push(LinkEvent::Removed { name, index });
    }
    for i in &now {
        let state = (i.name.clone(), i.carrier);
        if known.get(&i.index) != Some(&state) {
            known.insert(i.index, state);
            events.push(LinkEvent::Changed {
                name: i.name.clone(),
                index: i.index,
                carrier: i.carrier,
            });
        }
    }
    events.push(LinkEvent::RoutesChanged);
    events.extend(
        now.iter()
            .map(|i| LinkEvent::AddressesChanged { index: i.index }),
    );
    Ok(events)
}

#[cfg(test)]
mod tests {
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
        let mut unreachable =
            route_msg(AddressFamily::Inet6, 0, main, vec![RouteAttribute::Oif(1)]);
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
}
