//! DNS lookups through one interface (hickory-resolver, cache off).
//!
//! This module owns:
//! - [`BoundRuntimeProvider`], a hickory runtime provider that delegates to
//!   Tokio's but binds every UDP and TCP socket to one interface
//!   (SO_BINDTODEVICE): hickory has no interface binding of its own, and its
//!   `bind_addr` does not choose the link;
//! - the DNS probe ([`probe`]): one A (or AAAA) query to one server, cache
//!   off, hosts file unused, one attempt;
//! - name resolution through a link for the other probe kinds ([`resolve`],
//!   [`NameServers`]): TCP and HTTP targets given by name are resolved
//!   through the same interface they are probed through, against the
//!   system's nameservers (`/etc/resolv.conf`).

use super::bind;
use super::{ProbeFailure, ProbeOutcome};
use hickory_resolver::Resolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
    ResolverOpts,
};
use hickory_resolver::net::runtime::iocompat::AsyncIoTokioAsStd;
use hickory_resolver::net::runtime::{
    RuntimeProvider, TokioHandle, TokioRuntimeProvider, TokioTime,
};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::rr::RecordType;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where hickory's own connect timeout applies when it passes none.
const DEFAULT_TCP_CONNECT: Duration = Duration::from_secs(5);

/// Extra time granted over the probe timeout before the outer guard fires;
/// hickory enforces the timeout itself, the guard only catches a hang.
const GUARD: Duration = Duration::from_millis(500);

/// The system's resolver configuration files, in the order they are tried.
/// The second is systemd-resolved's list of real upstream servers, used when
/// the first names only the local stub (127.0.0.53), which cannot be reached
/// through any interface but `lo`.
const RESOLV_CONF_FILES: &[&str] = &["/etc/resolv.conf", "/run/systemd/resolve/resolv.conf"];

/// A hickory [`RuntimeProvider`] that binds every socket it opens to one
/// interface (SO_BINDTODEVICE), delegating everything else to Tokio's.
///
/// Dropping the last resolver built on it drops the task set of its handle,
/// which aborts any background task the resolver spawned.
#[derive(Clone)]
pub struct BoundRuntimeProvider {
    inner: TokioRuntimeProvider,
    iface: Arc<str>,
}

impl BoundRuntimeProvider {
    pub fn new(iface: &str) -> Self {
        BoundRuntimeProvider {
            inner: TokioRuntimeProvider::new(),
            iface: Arc::from(iface),
        }
    }

    /// The interface every socket is bound to.
    pub fn iface(&self) -> &str {
        &self.iface
    }
}

impl RuntimeProvider for BoundRuntimeProvider {
    type Handle = TokioHandle;
    type Timer = TokioTime;
    type Udp = tokio::net::UdpSocket;
    type Tcp = AsyncIoTokioAsStd<tokio::net::TcpStream>;

    fn create_handle(&self) -> Self::Handle {
        self.inner.create_handle()
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        bind_addr: Option<SocketAddr>,
        timeout: Option<Duration>,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Tcp, io::Error>>>> {
        let iface = self.iface.clone();
        Box::pin(async move {
            let socket = bind::tcp_socket(&iface, &server_addr)?;
            if let Some(local) = bind_addr {
                socket.bind(local)?;
            }
            socket.set_nodelay(true)?;
            let wait = timeout.unwrap_or(DEFAULT_TCP_CONNECT);
            match tokio::time::timeout(wait, socket.connect(server_addr)).await {
                Ok(Ok(stream)) => Ok(AsyncIoTokioAsStd(stream)),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TCP connect timed out",
                )),
            }
        })
    }

    fn bind_udp(
        &self,
        local_addr: SocketAddr,
        _server_addr: SocketAddr,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Udp, io::Error>>>> {
        let iface = self.iface.clone();
        Box::pin(async move { bind::udp_socket(&iface, local_addr) })
    }
}

/// Which servers resolve names in a TCP or HTTP probe target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum NameServers {
    /// The system's (`/etc/resolv.conf`, or systemd-resolved's upstream list
    /// when that file names only the local stub).
    #[default]
    System,
    /// These servers.
    Given(Vec<SocketAddr>),
}

impl NameServers {
    /// The servers usable through `iface`. Loopback servers are usable only
    /// through `lo`.
    pub fn servers_for(&self, iface: &str) -> Result<Vec<SocketAddr>, ProbeFailure> {
        match self {
            NameServers::Given(v) => {
                let usable = usable_through(iface, v.clone());
                if usable.is_empty() {
                    Err(ProbeFailure::Resolve(format!(
                        "no nameserver usable through {iface}"
                    )))
                } else {
                    Ok(usable)
                }
            }
            NameServers::System => system_nameservers(iface),
        }
    }
}

fn usable_through(iface: &str, servers: Vec<SocketAddr>) -> Vec<SocketAddr> {
    if iface == "lo" {
        servers
    } else {
        servers
            .into_iter()
            .filter(|s| !s.ip().is_loopback())
            .collect()
    }
}

/// The nameservers of a resolv.conf text (`nameserver` lines, port 53; an
/// IPv6 zone suffix such as `%eth0` is dropped).
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|line| {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            if words.next() != Some("nameserver") {
                return None;
            }
            let addr = words.next()?;
            let addr = addr.split('%').next().unwrap_or(addr);
            addr.parse::<IpAddr>()
                .ok()
                .map(|ip| SocketAddr::new(ip, 53))
        })
        .collect()
}

/// The system's nameservers usable through `iface`.
pub fn system_nameservers(iface: &str) -> Result<Vec<SocketAddr>, ProbeFailure> {
    let mut read_any = false;
    for path in RESOLV_CONF_FILES {
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        read_any = true;
        let usable = usable_through(iface, parse_resolv_conf(&text));
        if !usable.is_empty() {
            return Ok(usable);
        }
    }
    Err(ProbeFailure::Resolve(if read_any {
        format!("no nameserver in /etc/resolv.conf usable through {iface}")
    } else {
        "cannot read /etc/resolv.conf".into()
    }))
}

/// A resolver that sends every query through `iface` to `servers`: cache
/// off, hosts file unused, one attempt, `timeout` per query.
pub fn build_resolver(
    iface: &str,
    servers: &[SocketAddr],
    timeout: Duration,
    strategy: LookupIpStrategy,
) -> Result<Resolver<BoundRuntimeProvider>, ProbeFailure> {
    let name_servers = servers
        .iter()
        .map(|s| {
            let mut udp = ConnectionConfig::udp();
            udp.port = s.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = s.port();
            NameServerConfig::new(s.ip(), true, vec![udp, tcp])
        })
        .collect();
    let config = ResolverConfig::from_name_servers(name_servers);
    let mut opts = ResolverOpts::default();
    opts.cache_size = 0;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.attempts = 1;
    opts.timeout = timeout;
    opts.ip_strategy = strategy;
    opts.try_tcp_on_error = false;
    opts.ndots = 0;
    Resolver::builder_with_config(config, BoundRuntimeProvider::new(iface))
        .with_options(opts)
        .build()
        .map_err(|e| ProbeFailure::Network(format!("DNS resolver: {e}")))
}

/// `name` as a fully qualified name, so that no search domain is tried.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

fn kind_word(rtype: RecordType) -> &'static str {
    if rtype == RecordType::AAAA {
        "AAAA"
    } else {
        "A"
    }
}

/// Map a hickory error to the failure IT staff see.
pub fn net_failure(err: &NetError, rtype: RecordType) -> ProbeFailure {
    if err.is_nx_domain() {
        return ProbeFailure::DnsNoAnswer("NXDOMAIN (name does not exist)".into());
    }
    if err.is_no_records_found() {
        return ProbeFailure::DnsNoAnswer(format!("no {} records", kind_word(rtype)));
    }
    match err {
        NetError::Timeout => ProbeFailure::Timeout,
        NetError::Dns(DnsError::ResponseCode(code)) => {
            ProbeFailure::DnsNoAnswer(format!("server answered {code}"))
        }
        NetError::Io(io) => bind::io_failure(io, bind::BIND_PERMISSION_HINT),
        NetError::NoConnections => {
            ProbeFailure::Network("DNS: could not open a connection to the server".into())
        }
        other => match bind::find_io_error(other) {
            Some(io) => bind::io_failure(io, bind::BIND_PERMISSION_HINT),
            None => ProbeFailure::Network(format!("DNS: {}", bind::chain_text(other))),
        },
    }
}

/// Bytes on the wire for one query of `name` to `server` (IP + UDP + DNS
/// header + question + EDNS0 OPT record).
fn query_bytes(server: &SocketAddr, name: &str) -> u64 {
    let ip_udp = if server.is_ipv6() { 48 } else { 28 };
    let qname = name.trim_end_matches('.').len() as u64 + 2;
    ip_udp + 12 + qname + 4 + 11
}

/// Bytes of one answer record with a compressed name (A: 16, AAAA: 28).
fn answer_record_bytes(rtype: RecordType) -> u64 {
    if rtype == RecordType::AAAA { 28 } else { 16 }
}

/// Roughly what a negative answer adds over the echoed question (SOA record).
const NEGATIVE_EXTRA: u64 = 60;

/// Probe: query `server` for the A (or AAAA) records of `name` through
/// `iface`. rtt is the query time.
pub async fn probe(
    iface: &str,
    server: &SocketAddr,
    name: &str,
    ipv6: bool,
    timeout: Duration,
) -> ProbeOutcome {
    // hickory reports a socket that cannot be bound only as "no connections".
    if let Err(f) = bind::check_device(iface) {
        return ProbeOutcome::fail(f, 0);
    }
    let rtype = if ipv6 {
        RecordType::AAAA
    } else {
        RecordType::A
    };
    let strategy = if ipv6 {
        LookupIpStrategy::Ipv6Only
    } else {
        LookupIpStrategy::Ipv4Only
    };
    let resolver = match build_resolver(iface, std::slice::from_ref(server), timeout, strategy) {
        Ok(r) => r,
        Err(f) => return ProbeOutcome::fail(f, 0),
    };
    let q = query_bytes(server, name);
    let start = Instant::now();
    let res = tokio::time::timeout(timeout + GUARD, resolver.lookup(fqdn(name), rtype)).await;
    let rtt = start.elapsed();
    drop(resolver);
    match res {
        Err(_) => ProbeOutcome::fail(ProbeFailure::Timeout, q),
        Ok(Ok(lookup)) => {
            let answers = lookup
                .answers()
                .iter()
                .filter(|r| r.record_type() == rtype)
                .count() as u64;
            // CNAMEs and other records in the answer, roughly.
            let others = lookup.answers().len() as u64 - answers;
            let bytes = 2 * q + answers * answer_record_bytes(rtype) + others * 40;
            if answers == 0 {
                ProbeOutcome::fail(
                    ProbeFailure::DnsNoAnswer(format!("no {} records", kind_word(rtype))),
                    bytes,
                )
            } else {
                ProbeOutcome::ok(rtt, bytes)
            }
        }
        Ok(Err(e)) => {
            let f = net_failure(&e, rtype);
            let bytes = match &f {
                ProbeFailure::DnsNoAnswer(_) => 2 * q + NEGATIVE_EXTRA,
                ProbeFailure::NoSuchInterface | ProbeFailure::Permission(_) => 0,
                _ => q,
            };
            ProbeOutcome::fail(f, bytes)
        }
    }
}

/// Resolve `name` through `iface` for another probe kind: A first, AAAA when
/// there is no A record. Returns the addresses and the estimated bytes the
/// lookup put on the wire. Failures are those of [`probe`] (the caller
/// decides how to report them, usually as [`ProbeFailure::Resolve`]).
pub async fn resolve(
    iface: &str,
    servers: &[SocketAddr],
    name: &str,
    timeout: Duration,
) -> (Result<Vec<IpAddr>, ProbeFailure>, u64) {
    if let Err(f) = bind::check_iface(iface) {
        return (Err(f), 0);
    }
    if let Ok(ip) = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return (Ok(vec![ip]), 0);
    }
    let Some(first) = servers.first() else {
        return (
            Err(ProbeFailure::Resolve("no nameserver configured".into())),
            0,
        );
    };
    if let Err(f) = bind::check_device(iface) {
        return (Err(f), 0);
    }
    let resolver = match build_resolver(iface, servers, timeout, LookupIpStrategy::Ipv4thenIpv6) {
        Ok(r) => r,
        Err(f) => return (Err(f), 0),
    };
    let q = query_bytes(first, name);
    let res = tokio::time::timeout(timeout + GUARD, resolver.lookup_ip(fqdn(name))).await;
    drop(resolver);
    match res {
        Err(_) => (Err(ProbeFailure::Timeout), q),
        Ok(Ok(lookup)) => {
            let addrs: Vec<IpAddr> = lookup.iter().collect();
            let v6 = addrs.iter().any(|a| a.is_ipv6());
            // A AAAA answer means the A query came back empty first.
            let queries = if v6 { 2 } else { 1 };
            let rtype = if v6 { RecordType::AAAA } else { RecordType::A };
            let bytes = queries * 2 * q + addrs.len() as u64 * answer_record_bytes(rtype);
            if addrs.is_empty() {
                (
                    Err(ProbeFailure::DnsNoAnswer("no A or AAAA records".into())),
                    bytes,
                )
            } else {
                (Ok(addrs), bytes)
            }
        }
        Ok(Err(e)) => {
            let f = net_failure(&e, RecordType::A);
            let bytes = match &f {
                ProbeFailure::DnsNoAnswer(_) => 2 * (2 * q + NEGATIVE_EXTRA),
                ProbeFailure::NoSuchInterface | ProbeFailure::Permission(_) => 0,
                _ => q,
            };
            (Err(f), bytes)
        }
    }
}

/// Turn a failure of [`resolve`] into what a TCP or HTTP probe reports: the
/// interface and permission failures stay as they are, everything else is
/// "could not resolve through this link".
pub fn as_resolve_failure(name: &str, f: ProbeFailure) -> ProbeFailure {
    match f {
        ProbeFailure::NoSuchInterface | ProbeFailure::Permission(_) | ProbeFailure::Resolve(_) => f,
        other => ProbeFailure::Resolve(format!("{name}: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers_are_parsed() {
        let text = "# generated\nsearch example.org\nnameserver 10.0.0.1\nnameserver  fe80::1%eth0 # ll\nnameserver bogus\noptions edns0\n";
        let v = parse_resolv_conf(text);
        assert_eq!(
            v,
            vec![
                "10.0.0.1:53".parse().unwrap(),
                "[fe80::1]:53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn loopback_servers_only_through_lo() {
        let v: Vec<SocketAddr> = vec![
            "127.0.0.53:53".parse().unwrap(),
            "10.0.0.1:53".parse().unwrap(),
        ];
        assert_eq!(usable_through("eth0", v.clone()).len(), 1);
        assert_eq!(usable_through("lo", v).len(), 2);
        let only_stub = NameServers::Given(vec!["127.0.0.53:53".parse().unwrap()]);
        assert!(matches!(
            only_stub.servers_for("eth0"),
            Err(ProbeFailure::Resolve(_))
        ));
    }

    #[test]
    fn names_become_fully_qualified() {
        assert_eq!(fqdn("a.test"), "a.test.");
        assert_eq!(fqdn("a.test."), "a.test.");
    }
}
