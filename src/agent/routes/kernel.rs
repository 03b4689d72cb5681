//! The netlink side of the agent's own default routes (rtnetlink 0.24):
//! reading the main table's IPv4 and IPv6 default routes (the agent's own
//! and the system's, for their gateways), adding and deleting own routes,
//! and the `ignore_routes_with_linkdown` sysctl. Like
//! [`crate::agent::netlink`], each function opens its own short-lived
//! netlink socket in the caller's network namespace.

use super::{Family, Gateways, OwnRoute, RTPROT_LINKWATCH, RouteOp, WantedRoute, plan, via};
use crate::agent::netlink::{
    self, ConnGuard, DefaultHop, NetlinkError, interfaces, open_connection,
};
use rtnetlink::packet_route::route::{RouteHeader, RouteMessage, RouteProtocol, RouteScope};
use rtnetlink::{Handle, RouteMessageBuilder};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    /// Adding or deleting one route failed. `route` reads like
    /// `IPv4 default route via 10.11.0.1 dev bb0 metric 10`.
    #[error("cannot {op} {route}: {source}")]
    Route {
        op: &'static str,
        route: String,
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
    /// Listing the interfaces or dumping the routes (through
    /// [`crate::agent::netlink`]) failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
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

/// One main-table unicast default route with a single next hop, IPv4 or IPv6.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct KernelDefault {
    pub(super) family: Family,
    pub(super) ifindex: u32,
    pub(super) gateway: Option<IpAddr>,
    pub(super) metric: u32,
    pub(super) protocol: u8,
}

/// The main-table default routes in one dumped message, one per next hop
/// ([`netlink::default_hops`] by family), as the tests build them.
#[cfg(test)]
pub(super) fn defaults_in(msg: &RouteMessage) -> Vec<KernelDefault> {
    netlink::default_hops(msg)
        .into_iter()
        .map(KernelDefault::from)
        .collect()
}

impl From<DefaultHop> for KernelDefault {
    fn from(h: DefaultHop) -> Self {
        KernelDefault {
            family: if h.ipv6 { Family::V6 } else { Family::V4 },
            ifindex: h.ifindex,
            gateway: h.gateway,
            metric: h.metric,
            protocol: h.protocol,
        }
    }
}

/// The IPv4 and IPv6 main-table default routes.
async fn dump_defaults(
    handle: &Handle,
    op: &'static str,
) -> Result<Vec<KernelDefault>, RouteError> {
    Ok(netlink::dump_default_hops(handle, op)
        .await?
        .into_iter()
        .map(KernelDefault::from)
        .collect())
}

async fn names_by_index() -> Result<HashMap<u32, String>, RouteError> {
    Ok(interfaces()
        .await?
        .into_iter()
        .map(|i| (i.index, i.name))
        .collect())
}

async fn own_routes_with(handle: &Handle) -> Result<Vec<OwnRoute>, RouteError> {
    let routes = dump_defaults(handle, "dump the agent's default routes").await?;
    let names = names_by_index().await?;
    let mut out: Vec<OwnRoute> = routes
        .into_iter()
        .filter(|r| r.protocol == RTPROT_LINKWATCH)
        .map(|r| OwnRoute {
            // The kernel removes a deleted interface's routes; a name missing
            // here comes from a race and the route is deleted by index anyway.
            ifname: names.get(&r.ifindex).cloned().unwrap_or_default(),
            ifindex: r.ifindex,
            family: r.family,
            gateway: r.gateway,
            metric: r.metric,
        })
        .collect();
    out.sort_by_key(|r| (r.family, r.metric));
    Ok(out)
}

/// The agent's own default routes: main table, `proto 252`, IPv4 then IPv6,
/// by metric.
pub async fn own_routes() -> Result<Vec<OwnRoute>, RouteError> {
    let (handle, _guard) = connect("dump the agent's default routes")?;
    own_routes_with(&handle).await
}

/// The message adding or deleting an own default route.
fn route_message(
    family: Family,
    ifindex: u32,
    gateway: Option<IpAddr>,
    metric: u32,
    delete: bool,
) -> RouteMessage {
    let scope = if delete {
        // Like `ip route del`: any scope; protocol, interface, gateway and
        // metric select exactly the own route.
        RouteScope::NoWhere
    } else if gateway.is_none() {
        // Like `ip route add default dev ppp0`.
        RouteScope::Link
    } else {
        RouteScope::Universe
    };
    fn common<T>(b: RouteMessageBuilder<T>, ifindex: u32, metric: u32) -> RouteMessageBuilder<T> {
        b.table_id(u32::from(RouteHeader::RT_TABLE_MAIN))
            .protocol(RouteProtocol::from(RTPROT_LINKWATCH))
            .output_interface(ifindex)
            .priority(metric)
    }
    match family {
        Family::V4 => {
            let mut b = common(RouteMessageBuilder::<Ipv4Addr>::new(), ifindex, metric);
            if let Some(IpAddr::V4(g)) = gateway {
                b = b.gateway(g);
            }
            b.scope(scope).build()
        }
        Family::V6 => {
            let mut b = common(RouteMessageBuilder::<Ipv6Addr>::new(), ifindex, metric);
            if let Some(IpAddr::V6(g)) = gateway {
                b = b.gateway(g);
            }
            b.scope(scope).build()
        }
    }
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
                let ifindex =
                    *index_of
                        .get(&r.ifname)
                        .ok_or_else(|| RouteError::NoSuchInterface {
                            op: "add a default route",
                            ifname: r.ifname.clone(),
                        })?;
                let msg = route_message(r.family, ifindex, r.gateway, r.metric, false);
                handle
                    .route()
                    .add(msg)
                    .execute()
                    .await
                    .map_err(|source| op_error("add", r, source))?;
            }
            RouteOp::Delete(r) => {
                let ifindex = if r.ifindex != 0 {
                    r.ifindex
                } else {
                    match index_of.get(&r.ifname) {
                        Some(i) => *i,
                        // No interface, so no route on it either.
                        None => continue,
                    }
                };
                let msg = route_message(r.family, ifindex, r.gateway, r.metric, true);
                match handle.route().del(msg).execute().await {
                    Ok(()) => {}
                    // Already gone (the kernel drops routes with their
                    // interface, or someone deleted it): what was wanted.
                    Err(e) if errno(&e) == Some(libc::ESRCH) => {}
                    Err(source) => {
                        let w = WantedRoute {
                            ifname: r.ifname.clone(),
                            family: r.family,
                            gateway: r.gateway,
                            metric: r.metric,
                        };
                        return Err(op_error("delete", &w, source));
                    }
                }
            }
        }
    }
    Ok(())
}

/// `IPv4 default route via 10.11.0.1 dev bb0 metric 10`, for messages.
pub(super) fn describe(r: &WantedRoute) -> String {
    format!(
        "{} default route{} dev {} metric {}",
        r.family,
        via(&r.gateway),
        r.ifname,
        r.metric
    )
}

fn op_error(op: &'static str, r: &WantedRoute, source: rtnetlink::Error) -> RouteError {
    if is_permission(&source) {
        RouteError::PermissionDenied {
            op,
            what: describe(r),
        }
    } else {
        RouteError::Route {
            op,
            route: describe(r),
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

/// Delete every own route, IPv4 and IPv6 (clean stop; crash recovery
/// before the first [`sync`]). Routes installed by others stay. Returns how
/// many were deleted.
pub async fn remove_all() -> Result<usize, RouteError> {
    let (handle, _guard) = connect("remove the agent's default routes")?;
    let have = own_routes_with(&handle).await?;
    let ops = plan(&have, &[]);
    apply_with(&handle, &ops).await?;
    Ok(ops.len())
}

/// Per link and family, the gateway of the main-table default route that
/// is not the agent's (what DHCP, a router advertisement or the
/// administrator installed; the lowest metric wins): `None` inside for an
/// on-link route (`default dev ppp0`). Links without such a route are not
/// in the map.
pub async fn learned_gateways() -> Result<HashMap<(String, Family), Option<IpAddr>>, RouteError> {
    let op = "dump default routes";
    let (handle, _guard) = connect(op)?;
    let routes = dump_defaults(&handle, op).await?;
    let names = names_by_index().await?;
    Ok(learned_in(&routes)
        .into_iter()
        .filter_map(|((ifindex, family), hop)| {
            names.get(&ifindex).map(|n| ((n.clone(), family), hop))
        })
        .collect())
}

/// [`learned_gateways`] by interface index. Pure.
pub(super) fn learned_in(routes: &[KernelDefault]) -> HashMap<(u32, Family), Option<IpAddr>> {
    let mut best: HashMap<(u32, Family), (u32, Option<IpAddr>)> = HashMap::new();
    for r in routes.iter().filter(|r| r.protocol != RTPROT_LINKWATCH) {
        let e = best
            .entry((r.ifindex, r.family))
            .or_insert((r.metric, r.gateway));
        if r.metric < e.0 {
            *e = (r.metric, r.gateway);
        }
    }
    best.into_iter().map(|(k, (_, hop))| (k, hop)).collect()
}

/// Bring `gateways` up to date for `names`: `configured(name, family)` is
/// the config's gateway, else the system's route counts
/// ([`Gateways::learn`]). A failed dump keeps what was known (and is logged
/// by the caller's next sync, which dumps again).
pub async fn learn_gateways(
    gateways: &mut Gateways,
    names: &[String],
    configured: &dyn Fn(&str, Family) -> Option<IpAddr>,
) {
    let learned = learned_gateways().await.unwrap_or_default();
    gateways.take_in(names, configured, &learned);
}

/// Is `name` an interface name that is safe in a /proc/sys path?
pub(super) fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() < libc::IFNAMSIZ
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
        && !name.chars().any(char::is_whitespace)
}

/// `net.ipv4.conf.<ifname>.ignore_routes_with_linkdown = 1` and the same
/// for IPv6: the kernel then skips routes through this link while it has no
/// carrier, instead of keeping to send into it. A link without IPv6 (no
/// `net.ipv6.conf.<ifname>`) needs only the IPv4 one.
pub fn set_ignore_linkdown(ifname: &str) -> Result<(), RouteError> {
    if !valid_ifname(ifname) {
        return Err(RouteError::BadInterfaceName(ifname.to_string()));
    }
    for family in ["ipv4", "ipv6"] {
        let path = format!("/proc/sys/net/{family}/conf/{ifname}/ignore_routes_with_linkdown");
        match std::fs::write(&path, "1") {
            Ok(()) => {}
            Err(e) if family == "ipv6" && e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) if source.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(RouteError::PermissionDenied {
                    op: "set",
                    what: format!("{path} (interface {ifname})"),
                });
            }
            Err(source) => {
                return Err(RouteError::Sysctl {
                    ifname: ifname.to_string(),
                    path,
                    source,
                });
            }
        }
    }
    Ok(())
}
