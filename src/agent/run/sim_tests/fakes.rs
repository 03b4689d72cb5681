//! The simulated system under the agent loop: a [`FakeHost`] (interfaces
//! with carrier, DHCP default routes, the agent's own routes as the loop
//! last set them, flushed flows) and a [`FakeProber`] (each link's upstream
//! works or swallows probes until their timeout), both under tokio's clock.

use crate::agent::conntrack::ConntrackError;
use crate::agent::host::{Host, Learned};
use crate::agent::links::Classification;
use crate::agent::netlink::{DefaultRoute, IfaceInfo, LinkEvent, NetlinkError};
use crate::agent::probe::{ProbeFailure, ProbeOutcome, Prober};
use crate::agent::routes::{self, Family, OwnRoute, RouteError, RouteOp, WantedRoute};
use crate::agent::traffic::{CounterSource, Counters, TrafficError};
use crate::config::agent::{DiscoverySection, ProbeSpec};
use crate::wire::LinkKind;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;

#[derive(Default)]
struct World {
    /// name -> (index, carrier)
    ifaces: BTreeMap<String, (u32, bool)>,
    /// The system's (DHCP) IPv4 gateway per link.
    dhcp: HashMap<String, IpAddr>,
    own: Vec<OwnRoute>,
    /// Every set of own routes the loop asked for, in order.
    synced: Vec<Vec<WantedRoute>>,
    /// Own routes removed (at start and at stop).
    removals: usize,
    flushed: Vec<String>,
    events: Option<UnboundedSender<LinkEvent>>,
}

/// The scripted system.
#[derive(Default)]
pub(super) struct FakeHost {
    world: Mutex<World>,
}

impl FakeHost {
    /// A host with these uplinks, each with carrier and a DHCP gateway
    /// 10.(index).0.1.
    pub(super) fn with_links(names: &[&str]) -> Arc<Self> {
        let host = FakeHost::default();
        {
            let mut w = host.world.lock().unwrap();
            for (i, n) in names.iter().enumerate() {
                let index = i as u32 + 2;
                w.ifaces.insert(n.to_string(), (index, true));
                w.dhcp.insert(
                    n.to_string(),
                    IpAddr::V4(Ipv4Addr::new(10, index as u8, 0, 1)),
                );
            }
        }
        Arc::new(host)
    }

    fn send(&self, ev: LinkEvent) {
        if let Some(tx) = &self.world.lock().unwrap().events {
            let _ = tx.send(ev);
        }
    }

    /// The cable of `name` is pulled (false) or put back (true).
    pub(super) fn set_carrier(&self, name: &str, carrier: bool) {
        let index = {
            let mut w = self.world.lock().unwrap();
            let e = w.ifaces.get_mut(name).expect("known link");
            e.1 = carrier;
            e.0
        };
        self.send(LinkEvent::Changed {
            name: name.into(),
            index,
            carrier,
        });
    }

    /// Someone deletes the agent's own routes on `name` behind its back.
    pub(super) fn delete_own_routes_of(&self, name: &str) {
        self.world.lock().unwrap().own.retain(|r| r.ifname != name);
        self.send(LinkEvent::RoutesChanged);
    }

    /// The agent's own IPv4 default routes now, by metric: `(link, metric)`.
    pub(super) fn own_v4(&self) -> Vec<(String, u32)> {
        let w = self.world.lock().unwrap();
        let mut v: Vec<_> = w
            .own
            .iter()
            .filter(|r| r.family == Family::V4)
            .map(|r| (r.ifname.clone(), r.metric))
            .collect();
        v.sort_by_key(|(_, m)| *m);
        v
    }

    /// The link the agent's lowest-metric own route goes through.
    pub(super) fn route(&self) -> Option<String> {
        self.own_v4().first().map(|(n, _)| n.clone())
    }

    pub(super) fn synced(&self) -> usize {
        self.world.lock().unwrap().synced.len()
    }

    pub(super) fn removals(&self) -> usize {
        self.world.lock().unwrap().removals
    }

    pub(super) fn flushed(&self) -> Vec<String> {
        self.world.lock().unwrap().flushed.clone()
    }
}

#[async_trait::async_trait]
impl Host for FakeHost {
    async fn interfaces(&self) -> Result<Vec<IfaceInfo>, NetlinkError> {
        let w = self.world.lock().unwrap();
        Ok(w.ifaces
            .iter()
            .map(|(name, (index, carrier))| IfaceInfo {
                name: name.clone(),
                index: *index,
                carrier: *carrier,
                admin_up: true,
            })
            .collect())
    }
    async fn has_global_ipv6(&self, _index: u32) -> Result<bool, NetlinkError> {
        Ok(false)
    }
    async fn default_routes(&self) -> Result<Vec<DefaultRoute>, NetlinkError> {
        let w = self.world.lock().unwrap();
        let index = |n: &str| w.ifaces.get(n).map(|e| e.0).unwrap_or(0);
        let dhcp = w.dhcp.iter().map(|(n, g)| DefaultRoute {
            ifname: n.clone(),
            ifindex: index(n),
            metric: 100 + index(n),
            gateway: Some(*g),
            ipv6: false,
        });
        let own = w.own.iter().map(|r| DefaultRoute {
            ifname: r.ifname.clone(),
            ifindex: r.ifindex,
            metric: r.metric,
            gateway: r.gateway,
            ipv6: r.family == Family::V6,
        });
        Ok(dhcp.chain(own).collect())
    }
    async fn watch(&self, tx: UnboundedSender<LinkEvent>) -> Result<(), NetlinkError> {
        self.world.lock().unwrap().events = Some(tx.clone());
        tx.closed().await;
        Ok(())
    }
    async fn own_routes(&self) -> Result<Vec<OwnRoute>, RouteError> {
        Ok(self.world.lock().unwrap().own.clone())
    }
    async fn sync_routes(&self, want: &[WantedRoute]) -> Result<Vec<RouteOp>, RouteError> {
        let mut w = self.world.lock().unwrap();
        let ops = routes::plan(&w.own, want);
        let mut own = Vec::new();
        for r in want {
            let Some((index, _)) = w.ifaces.get(&r.ifname) else {
                return Err(RouteError::NoSuchInterface {
                    op: "add a default route",
                    ifname: r.ifname.clone(),
                });
            };
            own.push(OwnRoute {
                ifname: r.ifname.clone(),
                ifindex: *index,
                family: r.family,
                gateway: r.gateway,
                metric: r.metric,
            });
        }
        w.own = own;
        w.synced.push(want.to_vec());
        Ok(ops)
    }
    async fn remove_own_routes(&self) -> Result<usize, RouteError> {
        let mut w = self.world.lock().unwrap();
        w.removals += 1;
        Ok(std::mem::take(&mut w.own).len())
    }
    async fn learned_gateways(&self) -> Result<Learned, RouteError> {
        let w = self.world.lock().unwrap();
        Ok(w.dhcp
            .iter()
            .map(|(n, g)| ((n.clone(), Family::V4), Some(*g)))
            .collect())
    }
    fn ignore_routes_with_linkdown(&self, _ifname: &str) -> Result<(), RouteError> {
        Ok(())
    }
    async fn flush_conntrack(&self, link: &str) -> Result<usize, ConntrackError> {
        self.world.lock().unwrap().flushed.push(link.to_string());
        Ok(1)
    }
    fn discover(&self, _cfg: &DiscoverySection) -> Vec<(String, LinkKind)> {
        vec![]
    }
    fn classify(&self, name: &str) -> Classification {
        let kind = match name {
            n if n.starts_with("wl") => LinkKind::Wifi,
            n if n.starts_with("mb") => LinkKind::Mobile,
            _ => LinkKind::Broadband,
        };
        Classification::Uplink(kind)
    }
    fn counters(&self) -> Arc<dyn CounterSource> {
        Arc::new(Quiet)
    }
    fn can_admin_net(&self) -> bool {
        true
    }
}

/// Traffic counters of links nobody uses: nothing in, nothing out.
struct Quiet;

impl CounterSource for Quiet {
    fn read(&self, _iface: &str) -> Result<Counters, TrafficError> {
        Ok(Counters::default())
    }
}

/// Each link's upstream answers (after 15 ms, or the RTT the test set) or
/// swallows probes (the prober waits out the timeout), as the test sets it.
#[derive(Default)]
pub(super) struct FakeProber {
    cut: Mutex<HashMap<String, bool>>,
    rtt: Mutex<HashMap<String, Duration>>,
    sent: Mutex<HashMap<String, u64>>,
}

impl FakeProber {
    /// Cut (true) or heal (false) `link`'s upstream.
    pub(super) fn cut(&self, link: &str, cut: bool) {
        self.cut.lock().unwrap().insert(link.to_string(), cut);
    }

    /// `link`'s upstream answers after `rtt` (within the timeout).
    pub(super) fn slow(&self, link: &str, rtt: Duration) {
        self.rtt.lock().unwrap().insert(link.to_string(), rtt);
    }

    /// Probes sent through `link` so far.
    pub(super) fn sent(&self, link: &str) -> u64 {
        self.sent.lock().unwrap().get(link).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl Prober for FakeProber {
    async fn probe(&self, iface: &str, _spec: &ProbeSpec, timeout: Duration) -> ProbeOutcome {
        *self
            .sent
            .lock()
            .unwrap()
            .entry(iface.to_string())
            .or_default() += 1;
        let cut = self
            .cut
            .lock()
            .unwrap()
            .get(iface)
            .copied()
            .unwrap_or(false);
        if cut {
            tokio::time::sleep(timeout).await;
            ProbeOutcome::fail(ProbeFailure::Timeout, 42)
        } else {
            let rtt = self.rtt.lock().unwrap().get(iface).copied();
            let rtt = rtt.unwrap_or(Duration::from_millis(15)).min(timeout);
            tokio::time::sleep(rtt).await;
            ProbeOutcome::ok(rtt, 84)
        }
    }
}
