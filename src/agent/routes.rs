//! The agent's own IPv4 and IPv6 default routes, on gateways that fail over
//! between links.
//!
//! This module owns every main-table default route (IPv4 `0.0.0.0/0` and
//! IPv6 `::/0`) with routing protocol [`RTPROT_LINKWATCH`] (`proto 252`)
//! and nothing else: the routes DHCP, router advertisements,
//! NetworkManager or PPP installed are read (for their gateways) but never
//! changed. Per managed link and address family the agent installs one
//! default route of its own, with a metric below the usual system ones, so
//! that its preference order wins while every link keeps a default route of
//! its own. The two families are planned alike and apart: each has its own
//! metrics in preference order, and a link without an IPv6 gateway simply
//! has no own IPv6 route (the next link takes its rank).
//!
//! [`wanted`], [`plan`] and [`Gateways`] are pure; [`kernel`] does the
//! netlink I/O ([`sync`] reads what is installed, plans and applies;
//! [`remove_all`] is for a clean stop and for crash recovery at start).
//! Dry-run is the caller's: log [`plan`]'s operations (they print like
//! `ip route` arguments) instead of calling [`apply`].

pub mod kernel;

pub use kernel::{
    RouteError, apply, learn_gateways, learned_gateways, own_routes, remove_all,
    set_ignore_linkdown, sync,
};

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// The routing protocol number marking the agent's own routes (`proto 252`
/// in `ip route`). Everything else in the routing table is left alone.
pub const RTPROT_LINKWATCH: u8 = 252;

/// The metric of the chosen link's route unless configured otherwise; the
/// others get `base + 10 * rank`. Below the metrics DHCP clients use (100+)
/// and the kernel gives router advertisements (1024).
pub const DEFAULT_BASE_METRIC: u32 = 10;

/// The distance between the metrics of consecutive links in the order.
const METRIC_STEP: u32 = 10;

/// An address family of default routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv6() { Family::V6 } else { Family::V4 }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// `" via 10.0.0.1"`, or nothing for an on-link route.
fn via(gateway: &Option<IpAddr>) -> String {
    gateway.map(|g| format!(" via {g}")).unwrap_or_default()
}

/// The destination as `ip route` takes it: `default` (IPv4), `::/0` (IPv6).
fn destination(family: Family) -> &'static str {
    match family {
        Family::V4 => "default",
        Family::V6 => "::/0",
    }
}

/// A default route the agent wants installed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedRoute {
    pub ifname: String,
    pub family: Family,
    /// `None`: an on-link route (`dev ppp0`), for point-to-point links such
    /// as PPP or raw-IP WWAN.
    pub gateway: Option<IpAddr>,
    pub metric: u32,
}

/// A default route of the agent's (`proto 252`) as found in the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnRoute {
    pub ifname: String,
    /// 0 when not known (a route [`plan`] itself adds and deletes again):
    /// [`apply`] then looks the interface up by name.
    pub ifindex: u32,
    pub family: Family,
    pub gateway: Option<IpAddr>,
    pub metric: u32,
}

/// One step turning the installed own routes into the wanted ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteOp {
    Add(WantedRoute),
    Delete(OwnRoute),
}

impl fmt::Display for RouteOp {
    /// `add default via 10.11.0.1 dev bb0 metric 10 proto 252` (IPv6:
    /// `add ::/0 via fe80::1 dev bb0 ...`), like the arguments of `ip route`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, ifname, family, gateway, metric) = match self {
            RouteOp::Add(r) => ("add", &r.ifname, r.family, &r.gateway, r.metric),
            RouteOp::Delete(r) => ("del", &r.ifname, r.family, &r.gateway, r.metric),
        };
        write!(
            f,
            "{verb} {}{} dev {ifname} metric {metric} proto {RTPROT_LINKWATCH}",
            destination(family),
            via(gateway)
        )
    }
}

/// The routes to install for `order` (preference order, the chosen link
/// first): per family one route per link, metrics `base`, `base + 10`,
/// `base + 20`, ... in that order. `gateways(name, family)` gives a link's
/// gateway in that family, `Some(None)` for an on-link route and `None`
/// when the link has no known gateway in that family: such a link is
/// skipped there and the next link takes its rank. A gateway of the other
/// family is ignored. A name repeated in `order` counts once. The IPv4
/// routes come first. Pure.
pub fn wanted(
    order: &[String],
    gateways: &dyn Fn(&str, Family) -> Option<Option<IpAddr>>,
    base: u32,
) -> Vec<WantedRoute> {
    let mut out: Vec<WantedRoute> = Vec::new();
    for family in Family::BOTH {
        let mut rank: u32 = 0;
        for name in order {
            if out.iter().any(|r| r.family == family && &r.ifname == name) {
                continue;
            }
            let Some(gateway) = gateways(name, family) else {
                continue;
            };
            if gateway.is_some_and(|g| Family::of(&g) != family) {
                continue;
            }
            out.push(WantedRoute {
                ifname: name.clone(),
                family,
                gateway,
                metric: base.saturating_add(METRIC_STEP.saturating_mul(rank)),
            });
            rank = rank.saturating_add(1);
        }
    }
    out
}

fn same(have: &OwnRoute, want: &WantedRoute) -> bool {
    have.ifname == want.ifname
        && have.family == want.family
        && have.gateway == want.gateway
        && have.metric == want.metric
}

/// The operations turning the installed own routes `have` into `want`, the
/// IPv4 ones first. Pure.
///
/// Per family: routes already as wanted are left alone. The missing ones
/// are added in order of metric, so the chosen link's route comes first.
/// The kernel allows one main-table default route per metric (the agent
/// adds exclusively), so an add whose metric is taken by an outdated own
/// route first deletes that route; when that route is the only own one
/// left, the new route is first added under a free metric and removed again
/// at the end of that step, so that at no moment there is no own default
/// route. Outdated routes not in the way are deleted last. A wanted metric
/// already used by an earlier entry of `want` is skipped.
pub fn plan(have: &[OwnRoute], want: &[WantedRoute]) -> Vec<RouteOp> {
    let mut ops = Vec::new();
    for family in Family::BOTH {
        let have: Vec<OwnRoute> = have
            .iter()
            .filter(|r| r.family == family)
            .cloned()
            .collect();
        let want: Vec<WantedRoute> = want
            .iter()
            .filter(|r| r.family == family)
            .cloned()
            .collect();
        ops.extend(plan_family(&have, &want));
    }
    ops
}

/// [`plan`] for routes of one family.
fn plan_family(have: &[OwnRoute], want: &[WantedRoute]) -> Vec<RouteOp> {
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
                    family: bridge.family,
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

/// Each link's gateway per family for the agent's own routes, as last
/// learned: a gateway from the config wins, then the one of the system's
/// own default route on that link (DHCP, router advertisement, PPP); when
/// the system's route is gone for a while (between a lease's loss and its
/// renewal, after a carrier loss) the last known gateway is kept. Pure: the
/// kernel's routes are handed in ([`kernel::learned_gateways`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Gateways {
    /// `None`: an on-link route.
    known: HashMap<(String, Family), Option<IpAddr>>,
}

impl Gateways {
    /// Take in what is known now about `name` in `family`: `configured`
    /// (from the config) or else `learned` (the system's route: `Some(None)`
    /// for an on-link one); with neither, what was known stays.
    pub fn learn(
        &mut self,
        name: &str,
        family: Family,
        configured: Option<IpAddr>,
        learned: Option<Option<IpAddr>>,
    ) {
        let now = match configured {
            Some(g) if Family::of(&g) == family => Some(Some(g)),
            _ => learned,
        };
        if let Some(hop) = now {
            self.known.insert((name.to_string(), family), hop);
        }
    }

    /// [`Gateways::learn`] for every family of every link in `names`:
    /// `configured(name, family)` is the config's gateway, `learned` the
    /// system's routes ([`kernel::learned_gateways`]).
    pub fn take_in(
        &mut self,
        names: &[String],
        configured: &dyn Fn(&str, Family) -> Option<IpAddr>,
        learned: &HashMap<(String, Family), Option<IpAddr>>,
    ) {
        for name in names {
            for family in Family::BOTH {
                let from_system = learned.get(&(name.clone(), family)).copied();
                self.learn(name, family, configured(name, family), from_system);
            }
        }
    }

    /// The gateway for `name` in `family` (`Some(None)`: on-link). An IPv4
    /// point-to-point link (`ppp*`, `wwan*`) with nothing known is on-link.
    pub fn hop(&self, name: &str, family: Family) -> Option<Option<IpAddr>> {
        if let Some(hop) = self.known.get(&(name.to_string(), family)) {
            return Some(*hop);
        }
        (family == Family::V4 && (name.starts_with("ppp") || name.starts_with("wwan")))
            .then_some(None)
    }

    /// The own routes for `order` ([`wanted`] with these gateways).
    pub fn wanted(&self, order: &[String], base: u32) -> Vec<WantedRoute> {
        wanted(order, &|n: &str, f| self.hop(n, f), base)
    }
}

#[cfg(test)]
mod tests;
