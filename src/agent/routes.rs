//! The agent's own IPv4 default routes (rtnetlink 0.24), on gateways that
//! fail over between links.
//!
//! This module owns every main-table IPv4 default route with routing
//! protocol [`RTPROT_LINKWATCH`] (`proto 252`) and nothing else: the routes
//! DHCP, NetworkManager or PPP installed are read ([`learned_gateway`]) but
//! never changed. Per managed link the agent installs one default route of
//! its own, with a metric below the usual DHCP ones, so that its preference
//! order wins while every link keeps a default route of its own.
//!
//! [`wanted`] and [`plan`] are pure; [`sync`] reads what is installed,
//! plans and applies. [`remove_all`] is for a clean stop and for crash
//! recovery at start. Dry-run is the caller's: log [`plan`]'s operations
//! (they print like `ip route` arguments) instead of calling [`apply`].
//!
//! Like [`super::netlink`], each function opens its own short-lived netlink
//! socket in the caller's network namespace.

use super::netlink::{ConnGuard, NetlinkError, interfaces, open_connection};
use futures::stream::TryStreamExt;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
    RouteVia,
};
use rtnetlink::{Handle, RouteMessageBuilder};
use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;

/// The routing protocol number marking the agent's own routes (`proto 252`
/// in `ip route`). Everything else in the routing table is left alone.
pub const RTPROT_LINKWATCH: u8 = 252;

/// The metric of the chosen link's route unless configured otherwise; the
/// others get `base + 10 * rank`. Below the metrics DHCP clients use (100+).
pub const DEFAULT_BASE_METRIC: u32 = 10;

/// The distance between the metrics of consecutive links in the order.
const METRIC_STEP: u32 = 10;

/// A route operation, a dump or a sysctl write that failed, with what it was
/// about.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    /// The kernel refused with EPERM/EACCES.
    #[error("cannot {op} {what}: permission denied (needs CAP_NET_ADMIN)")]
    PermissionDenied { op: &'static str, what: String },
    #[error("cannot open a netlink socket to {op}: {source}")]
    Open {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A dump (no single route or interface concerned) failed.
    #[error("netlink request to {op} failed: {source}")]
    Request {
        op: &'static str,
        #[source]
        source: rtnetlink::Error,
    },
    /// Adding or deleting one route failed.
    #[error("cannot {op} default route{} dev {ifname} metric {metric}: {source}", via(.gateway))]
    Route {
        op: &'static str,
        ifname: String,
        gateway: Option<Ipv4Addr>,
        metric: u32,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("cannot {op}: no interface named {ifname}")]
    NoSuchInterface { op: &'static str, ifname: String },
    #[error("not a valid interface name: {0:?}")]
    BadInterfaceName(String),
    #[error("cannot write {path} (interface {ifname}): {source}")]
    Sysctl {
        ifname: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Listing the interfaces (through [`super::netlink`]) failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
}

/// `" via 10.0.0.1"`, or nothing for an on-link route.
fn via(gateway: &Option<Ipv4Addr>) -> String {
    gateway.map(|g| format!(" via {g}")).unwrap_or_default()
}

/// A default route the agent wants installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedRoute {
    pub ifname: String,
    /// `None`: an on-link route (`dev ppp0`), for point-to-point links such
    /// as PPP or raw-IP WWAN.
    pub gateway: Option<Ipv4Addr>,
    pub metric: u32,
}

/// A default route of the agent's (`proto 252`) as found in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnRoute {
    pub ifname: String,
    /// 0 when not known (a route [`plan`] itself adds and deletes again):
    /// [`apply`] then looks the interface up by name.
    pub ifindex: u32,
    pub gateway: Option<Ipv4Addr>,
    pub metric: u32,
}

/// One step turning the installed own routes into the wanted ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp {
    Add(WantedRoute),
    Delete(OwnRoute),
}

impl fmt::Display for RouteOp {
    /// `add default via 10.11.0.1 dev bb0 metric 10 proto 252`, like the
    /// arguments of `ip route`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, ifname, gateway, metric) = match self {
            RouteOp::Add(r) => ("add", &r.ifname, &r.gateway, r.metric),
            RouteOp::Delete(r) => ("del", &r.ifname, &r.gateway, r.metric),
        };
        write!(
            f,
            "{verb} default{} dev {ifname} metric {metric} proto {RTPROT_LINKWATCH}",
            via(gateway)
        )
    }
}

/// The routes to install for `order` (preference order, the chosen link
/// first): one per link, metrics `base`, `base + 10`, `base + 20`, ... in
/// that order. `gateways(name)` gives a link's gateway, `Some(None)` for a
/// point-to-point link (on-link route) and `None` when the link has no known
/// gateway: such a link is skipped and the next link takes its rank. A name
/// repeated in `order` counts once. Pure.
pub fn wanted(
    order: &[String],
    gateways: &dyn Fn(&str) -> Option<Option<Ipv4Addr>>,
    base: u32,
) -> Vec<WantedRoute> {
    let mut out: Vec<WantedRoute> = Vec::new();
    for name in order {
        if out.iter().any(|r| &r.ifname == name) {
            continue;
        }
        let Some(gateway) = gateways(name) else {
            continue;
        };
        let rank = u32::try_from(out.len()).unwrap_or(u32::MAX);
        out.push(WantedRoute {
            ifname: name.clone(),
            gateway,
            metric: base.saturating_add(METRIC_STEP.saturating_mul(rank)),
        });
    }
    out
}

fn same(have: &OwnRoute, want: &WantedRoute) -> bool {
    have.ifname == want.ifname && have.gateway == want.gateway && have.metric == want.metric
}

/// The operations turning the installed own routes `have` into `want`. Pure.
///
/// Routes already as wanted are left alone. The missing ones are added in
/// order of metric, so the chosen link's route comes first. IPv4 allows one
/// main-table default route per metric, so an add whose metric is taken by
/// an outdated own route first deletes that route; when that route is the
/// only own one left, the new route is first added under a free metric and
/// removed again at the end of that step, so that at no moment there is no
/// own default route. Outdated routes not in the way are deleted last.
/// A wanted metric already used by an earlier entry of `want` is skipped.
pub fn plan(have: &[OwnRoute], want: &[WantedRoute]) -> Vec<RouteOp> {
    // Routes already right stay; each installed route satisfies one wish.
    let mut stale: Vec<OwnRoute> = Vec::new();
    let mut satisfied = vec![false; want.len()];
    for h in have {
        match (0..want.len()).find(|&i| !satisfied[i] && same(h, &want[i])) {
            Some(i) => satisfied[i] = true,
            None => stale.push(h.clone()),
        }
    }
    let mut missing: Vec<&WantedRoute> = Vec::new();
    for (i, w) in want.iter().enumerate() {
        let taken = want[..i].iter().any(|e| e.metric == w.metric);
        if !satisfied[i] && !taken {
            missing.push(w);
        }
    }
    missing.sort_by_key(|w| w.metric);

    // The metrics of the own routes present while the operations run.
    let mut present: Vec<u32> = have.iter().map(|h| h.metric).collect();
    let mut ops = Vec::new();
    for w in missing {
        if let Some(pos) = stale.iter().position(|s| s.metric == w.metric) {
            let blocker = stale.remove(pos);
            if present.len() <= 1 {
                // The blocker is the only own route: bridge with a temporary one.
                let mut temp = w.metric.saturating_add(1);
                while present.contains(&temp) || want.iter().any(|e| e.metric == temp) {
                    temp = temp.wrapping_add(1);
                }
                let bridge = WantedRoute {
                    metric: temp,
                    ..w.clone()
                };
                ops.push(RouteOp::Add(bridge.clone()));
                ops.push(RouteOp::Delete(blocker));
                ops.push(RouteOp::Add(w.clone()));
                ops.push(RouteOp::Delete(OwnRoute {
                    ifname: bridge.ifname,
                    ifindex: 0,
                    gateway: bridge.gateway,
                    metric: bridge.metric,
                }));
            } else {
                ops.push(RouteOp::Delete(blocker));
                ops.push(RouteOp::Add(w.clone()));
            }
            // The blocker's metric is now the new route's: `present` is unchanged.
        } else {
            ops.push(RouteOp::Add(w.clone()));
            present.push(w.metric);
        }
    }
    ops.extend(stale.into_iter().map(RouteOp::Delete));
    ops
}

fn connect(op: &'static str) -> Result<(Handle, ConnGuard), RouteError> {
    open_connection().map_err(|source| RouteError::Open { op, source })
}

/// The errno of a netlink NACK.
fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => Some(msg.raw_code().abs()),
        _ => None,
    }
}

fn is_permission(e: &rtnetlink::Error) -> bool {
    matches!(errno(e), Some(libc::EPERM) | Some(libc::EACCES))
}

/// One IPv4 main-table unicast default route with a single next hop.
#[derive(Debug, Clone, PartialEq, Eq)]
struct V4Default {
    ifindex: u32,
    gateway: Option<Ipv4Addr>,
    metric: u32,
    protocol: u8,
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

fn gateway_v4(attrs: &[RouteAttribute]) -> Option<Ipv4Addr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(g)) => Some(*g),
        RouteAttribute::Via(RouteVia::Inet(g)) => Some(*g),
        _ => None,
    })
}

/// The IPv4 main-table default routes in one dumped message, one per next
/// hop. Pure, so it is unit-tested.
fn v4_defaults_in(msg: &RouteMessage) -> Vec<V4Default> {
    if msg.header.address_family != AddressFamily::Inet
        || msg.header.destination_prefix_length != 0
        || msg.header.source_prefix_length != 0
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
    let mut out = Vec::new();
    for a in &msg.attributes {
        match a {
            RouteAttribute::Oif(ifindex) => out.push(V4Default {
                ifindex: *ifindex,
                gateway: gateway_v4(&msg.attributes),
                metric,
                protocol,
            }),
            RouteAttribute::MultiPath(hops) => {
                out.extend(hops.iter().map(|hop| V4Default {
                    ifindex: hop.interface_index,
                    gateway: gateway_v4(&hop.attributes),
                    metric,
                    protocol,
                }));
            }
            _ => {}
        }
    }
    out
}

async fn dump_v4_defaults(handle: &Handle, op: &'static str) -> Result<Vec<V4Default>, RouteError> {
    let query = RouteMessageBuilder::<Ipv4Addr>::new().build();
    let mut routes = handle.route().get(query).execute();
    let mut out = Vec::new();
    while let Some(msg) = routes
        .try_next()
        .await
        .map_err(|source| RouteError::Request { op, source })?
    {
        out.extend(v4_defaults_in(&msg));
    }
    Ok(out)
}

async fn names_by_index() -> Result<HashMap<u32, String>, RouteError> {
    Ok(interfaces()
        .await?
        .into_iter()
        .map(|i| (i.index, i.name))
        .collect())
}

async fn own_routes_with(handle: &Handle) -> Result<Vec<OwnRoute>, RouteError> {
    let routes = dump_v4_defaults(handle, "dump the agent's default routes").await?;
    let names = names_by_index().await?;
    let mut out: Vec<OwnRoute> = routes
        .into_iter()
        .filter(|r| r.protocol == RTPROT_LINKWATCH)
        .map(|r| OwnRoute {
            // The kernel removes a deleted interface's routes; a name missing
            // here comes from a race and the route is deleted by index anyway.
            ifname: names.get(&r.ifindex).cloned().unwrap_or_default(),
            ifindex: r.ifindex,
            gateway: r.gateway,
            metric: r.metric,
        })
        .collect();
    out.sort_by_key(|r| r.metric);
    Ok(out)
}

/// The agent's own default routes: IPv4, main table, `proto 252`, by metric.
pub async fn own_routes() -> Result<Vec<OwnRoute>, RouteError> {
    let (handle, _guard) = connect("dump the agent's default routes")?;
    own_routes_with(&handle).await
}

/// The message adding or deleting an own default route.
fn route_message(
    ifindex: u32,
    gateway: Option<Ipv4Addr>,
    metric: u32,
    delete: bool,
) -> RouteMessage {
    let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
        .table_id(u32::from(RouteHeader::RT_TABLE_MAIN))
        .protocol(RouteProtocol::from(RTPROT_LINKWATCH))
        .output_interface(ifindex)
        .priority(metric);
    if let Some(g) = gateway {
        b = b.gateway(g);
    }
    b = if delete {
        // Like `ip route del`: any scope; protocol, interface, gateway and
        // metric select exactly the own route.
        b.scope(RouteScope::NoWhere)
    } else if gateway.is_none() {
        // Like `ip route add default dev ppp0`.
        b.scope(RouteScope::Link)
    } else {
        b.scope(RouteScope::Universe)
    };
    b.build()
}

async fn apply_with(handle: &Handle, ops: &[RouteOp]) -> Result<(), RouteError> {
    let needs_names = ops.iter().any(|op| match op {
        RouteOp::Add(_) => true,
        RouteOp::Delete(r) => r.ifindex == 0,
    });
    let index_of: HashMap<String, u32> = if needs_names {
        names_by_index()
            .await?
            .into_iter()
            .map(|(i, n)| (n, i))
            .collect()
    } else {
        HashMap::new()
    };
    for op in ops {
        match op {
            RouteOp::Add(r) => {
                let opname = "add";
                let ifindex =
                    *index_of
                        .get(&r.ifname)
                        .ok_or_else(|| RouteError::NoSuchInterface {
                            op: "add a default route",
                            ifname: r.ifname.clone(),
                        })?;
                let msg = route_message(ifindex, r.gateway, r.metric, false);
                handle
                    .route()
                    .add(msg)
                    .execute()
                    .await
                    .map_err(|source| op_error(opname, &r.ifname, r.gateway, r.metric, source))?;
            }
            RouteOp::Delete(r) => {
                let opname = "delete";
                let ifindex = if r.ifindex != 0 {
                    r.ifindex
                } else {
                    match index_of.get(&r.ifname) {
                        Some(i) => *i,
                        // No interface, so no route on it either.
                        None => continue,
                    }
                };
                let msg = route_message(ifindex, r.gateway, r.metric, true);
                match handle.route().del(msg).execute().await {
                    Ok(()) => {}
                    // Already gone (the kernel drops routes with their
                    // interface, or someone deleted it): what was wanted.
                    Err(e) if errno(&e) == Some(libc::ESRCH) => {}
                    Err(source) => {
                        return Err(op_error(opname, &r.ifname, r.gateway, r.metric, source));
                    }
                }
            }
        }
    }
    Ok(())
}

fn op_error(
    op: &'static str,
    ifname: &str,
    gateway: Option<Ipv4Addr>,
    metric: u32,
    source: rtnetlink::Error,
) -> RouteError {
    if is_permission(&source) {
        RouteError::PermissionDenied {
            op,
            what: format!(
                "default route{} dev {ifname} metric {metric}",
                via(&gateway)
            ),
        }
    } else {
        RouteError::Route {
            op,
            ifname: ifname.to_string(),
            gateway,
            metric,
            source,
        }
    }
}

/// Carry out `ops` in order, stopping at the first failure. Deleting a
/// route that is already gone counts as done.
pub async fn apply(ops: &[RouteOp]) -> Result<(), RouteError> {
    if ops.is_empty() {
        return Ok(());
    }
    let (handle, _guard) = connect("change the agent's default routes")?;
    apply_with(&handle, ops).await
}

/// Make the own routes exactly `want` ([`own_routes`], [`plan`], [`apply`]
/// on one netlink socket); returns the operations done, for the log.
/// Repairs routes deleted behind the agent's back and removes duplicates.
pub async fn sync(want: &[WantedRoute]) -> Result<Vec<RouteOp>, RouteError> {
    let (handle, _guard) = connect("sync the agent's default routes")?;
    let have = own_routes_with(&handle).await?;
    let ops = plan(&have, want);
    apply_with(&handle, &ops).await?;
    Ok(ops)
}

/// Delete every own route (clean stop; crash recovery before the first
/// [`sync`]). Routes installed by others stay. Returns how many were deleted.
pub async fn remove_all() -> Result<usize, RouteError> {
    let (handle, _guard) = connect("remove the agent's default routes")?;
    let have = own_routes_with(&handle).await?;
    let ops = plan(&have, &[]);
    apply_with(&handle, &ops).await?;
    Ok(ops.len())
}

/// The gateway of the link's IPv4 main-table default route that is not the
/// agent's (what DHCP or the administrator installed); the lowest metric
/// wins if there are several. `None` when there is no such route, it has no
/// gateway (on-link), or there is no interface of that name.
pub async fn learned_gateway(ifname: &str) -> Result<Option<Ipv4Addr>, RouteError> {
    let op = "dump default routes";
    let (handle, _guard) = connect(op)?;
    let Some(ifindex) = names_by_index()
        .await?
        .into_iter()
        .find_map(|(i, n)| (n == ifname).then_some(i))
    else {
        return Ok(None);
    };
    let routes = dump_v4_defaults(&handle, op).await?;
    Ok(learned_in(&routes, ifindex))
}

fn learned_in(routes: &[V4Default], ifindex: u32) -> Option<Ipv4Addr> {
    routes
        .iter()
        .filter(|r| r.ifindex == ifindex && r.protocol != RTPROT_LINKWATCH)
        .min_by_key(|r| r.metric)
        .and_then(|r| r.gateway)
}

/// Is `name` an interface name that is safe in a /proc/sys path?
fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
        && !name.chars().any(char::is_whitespace)
}

/// `net.ipv4.conf.<ifname>.ignore_routes_with_linkdown = 1`: the kernel then
/// skips routes through this link while it has no carrier, instead of
/// keeping to send into it.
pub fn set_ignore_linkdown(ifname: &str) -> Result<(), RouteError> {
    if !valid_ifname(ifname) {
        return Err(RouteError::BadInterfaceName(ifname.to_string()));
    }
    let path = format!("/proc/sys/net/ipv4/conf/{ifname}/ignore_routes_with_linkdown");
    std::fs::write(&path, "1").map_err(|source| {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            RouteError::PermissionDenied {
                op: "set",
                what: format!("{path} (interface {ifname})"),
            }
        } else {
            RouteError::Sysctl {
                ifname: ifname.to_string(),
                path,
                source,
            }
        }
    })
}

#[cfg(test)]
mod tests;
