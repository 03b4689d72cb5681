//! What the agent's main loop does to the system it runs on, as one trait
//! ([`Host`]): list the interfaces and watch them change, read the default
//! routes, install and remove the agent's own ones, learn the gateways the
//! system's routes use, flush connection tracking, and the sysfs and procfs
//! reads the loop makes (discovery, traffic counters, CAP_NET_ADMIN).
//!
//! [`SystemHost`] is the real one: netlink ([`crate::agent::netlink`],
//! [`crate::agent::routes::kernel`]), the `conntrack` tool
//! ([`crate::agent::conntrack`]) and `/sys/class/net`. The simulation tests
//! of the loop put a scripted host in its place.

use crate::agent::conntrack::{self, ConntrackError};
use crate::agent::links::{self, Classification};
use crate::agent::netlink::{self, DefaultRoute, IfaceInfo, LinkEvent, NetlinkError};
use crate::agent::routes::{self, Family, OwnRoute, RouteError, RouteOp, WantedRoute};
use crate::agent::traffic::{CounterSource, Sysfs};
use crate::config::agent::DiscoverySection;
use crate::wire::LinkKind;
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

/// Gateways of the system's own default routes, per link and family
/// (`None` inside: an on-link route).
pub type Learned = HashMap<(String, Family), Option<IpAddr>>;

/// The system under the agent's loop. Every method is one observation or one
/// action; deciding is the loop's (and the pure deciders').
#[async_trait::async_trait]
pub trait Host: Send + Sync + 'static {
    /// Every interface, by index.
    async fn interfaces(&self) -> Result<Vec<IfaceInfo>, NetlinkError>;
    /// Does interface `index` have a usable global IPv6 address?
    async fn has_global_ipv6(&self, index: u32) -> Result<bool, NetlinkError>;
    /// The main table's IPv4 and IPv6 default routes (anyone's).
    async fn default_routes(&self) -> Result<Vec<DefaultRoute>, NetlinkError>;
    /// Send link, route and address changes to `tx` until it closes.
    async fn watch(&self, tx: UnboundedSender<LinkEvent>) -> Result<(), NetlinkError>;

    /// The agent's own default routes.
    async fn own_routes(&self) -> Result<Vec<OwnRoute>, RouteError>;
    /// Make the agent's own default routes exactly `want`; the operations done.
    async fn sync_routes(&self, want: &[WantedRoute]) -> Result<Vec<RouteOp>, RouteError>;
    /// Delete every own default route; how many there were.
    async fn remove_own_routes(&self) -> Result<usize, RouteError>;
    /// The gateways of the system's (not the agent's) default routes.
    async fn learned_gateways(&self) -> Result<Learned, RouteError>;
    /// Have the kernel skip routes through `ifname` while it has no carrier.
    fn ignore_routes_with_linkdown(&self, ifname: &str) -> Result<(), RouteError>;

    /// Forget the tracked flows through `link`; how many deletions succeeded.
    async fn flush_conntrack(&self, link: &str) -> Result<usize, ConntrackError>;

    /// The uplinks found under the discovery rules.
    fn discover(&self, cfg: &DiscoverySection) -> Vec<(String, LinkKind)>;
    /// What interface `name` is.
    fn classify(&self, name: &str) -> Classification;
    /// Where the links' traffic counters are read.
    fn counters(&self) -> Arc<dyn CounterSource>;
    /// May this process change routes (CAP_NET_ADMIN)?
    fn can_admin_net(&self) -> bool;
}

/// The real system: netlink, `conntrack`, and sysfs under `sys_class_net`.
#[derive(Debug, Clone)]
pub struct SystemHost {
    sys_class_net: PathBuf,
}

impl SystemHost {
    /// The system with its interfaces listed under `sys_class_net`
    /// (normally [`crate::agent::run::SYS_CLASS_NET`]).
    pub fn new(sys_class_net: impl Into<PathBuf>) -> Self {
        SystemHost {
            sys_class_net: sys_class_net.into(),
        }
    }
}

/// Does this process hold CAP_NET_ADMIN (bit 12 of CapEff)?
pub fn has_net_admin() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("CapEff:"))
                .and_then(|l| u64::from_str_radix(l[7..].trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << 12) != 0)
}

#[async_trait::async_trait]
impl Host for SystemHost {
    async fn interfaces(&self) -> Result<Vec<IfaceInfo>, NetlinkError> {
        netlink::interfaces().await
    }
    async fn has_global_ipv6(&self, index: u32) -> Result<bool, NetlinkError> {
        netlink::has_global_ipv6(index).await
    }
    async fn default_routes(&self) -> Result<Vec<DefaultRoute>, NetlinkError> {
        netlink::default_routes().await
    }
    async fn watch(&self, tx: UnboundedSender<LinkEvent>) -> Result<(), NetlinkError> {
        netlink::watch(tx).await
    }
    async fn own_routes(&self) -> Result<Vec<OwnRoute>, RouteError> {
        routes::own_routes().await
    }
    async fn sync_routes(&self, want: &[WantedRoute]) -> Result<Vec<RouteOp>, RouteError> {
        routes::sync(want).await
    }
    async fn remove_own_routes(&self) -> Result<usize, RouteError> {
        routes::remove_all().await
    }
    async fn learned_gateways(&self) -> Result<Learned, RouteError> {
        routes::learned_gateways().await
    }
    fn ignore_routes_with_linkdown(&self, ifname: &str) -> Result<(), RouteError> {
        routes::set_ignore_linkdown(ifname)
    }
    async fn flush_conntrack(&self, link: &str) -> Result<usize, ConntrackError> {
        conntrack::flush_link(link).await
    }
    fn discover(&self, cfg: &DiscoverySection) -> Vec<(String, LinkKind)> {
        links::discover(&self.sys_class_net, cfg)
    }
    fn classify(&self, name: &str) -> Classification {
        links::classify(&self.sys_class_net, name)
    }
    fn counters(&self) -> Arc<dyn CounterSource> {
        Arc::new(Sysfs::new(&self.sys_class_net))
    }
    fn can_admin_net(&self) -> bool {
        has_net_admin()
    }
}
