//! Netlink (rtnetlink 0.24): interface and default-route snapshots, the
//! link/route/address event watcher, the one parser of dumped default
//! routes (`default_hops`, also behind [`super::routes::kernel`]), and the
//! pure choice of the link the kernel's default route uses ([`active_link`]).
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

/// One next hop of a main-table unicast default route (IPv4 `0.0.0.0/0` or
/// IPv6 `::/0`) as dumped, whoever installed it (also read by
/// [`super::routes::kernel`] for the agent's own routes and the gateways).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DefaultHop {
    pub(crate) ipv6: bool,
    pub(crate) ifindex: u32,
    /// The route's priority (`metric`); 0 when the kernel reports none.
    pub(crate) metric: u32,
    pub(crate) gateway: Option<IpAddr>,
    /// The routing protocol that installed it (`proto` in `ip route`).
    pub(crate) protocol: u8,
}

/// The main-table default routes in one dumped route message, one per next
/// hop. Pure, so it is unit-tested.
pub(crate) fn default_hops(msg: &RouteMessage) -> Vec<DefaultHop> {
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
    let protocol = u8::from(msg.header.protocol);
    let metric = msg
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Priority(p) => Some(*p),
            _ => None,
        })
        .unwrap_or(0);
    let hop = |ifindex: u32, attrs: &[RouteAttribute]| DefaultHop {
        ipv6,
        ifindex,
        metric,
        gateway: gateway_in(attrs),
        protocol,
    };
    let mut out = Vec::new();
    for a in &msg.attributes {
        match a {
            RouteAttribute::Oif(index) => out.push(hop(*index, &msg.attributes)),
            RouteAttribute::MultiPath(hops) => {
                out.extend(hops.iter().map(|h| hop(h.interface_index, &h.attributes)));
            }
            _ => {}
        }
    }
    out
}

/// Every main-table default route, IPv4 then IPv6, on an open connection;
/// `op` names the operation in an error.
pub(crate) async fn dump_default_hops(
    handle: &Handle,
    op: &'static str,
) -> Result<Vec<DefaultHop>, NetlinkError> {
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
            out.extend(default_hops(&msg));
        }
    }
    Ok(out)
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
    Ok(dump_default_hops(&handle, op)
        .await?
        .into_iter()
        // A route whose interface vanished between the two dumps is stale.
        .filter_map(|h| {
            names.get(&h.ifindex).map(|name| DefaultRoute {
                ifname: name.clone(),
                ifindex: h.ifindex,
                metric: h.metric,
                gateway: h.gateway,
                ipv6: h.ipv6,
            })
        })
        .collect())
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
mod tests;
