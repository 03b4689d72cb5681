//! TCP connect through one interface.
//!
//! This module owns the TCP probe: a socket bound to the interface
//! (SO_BINDTODEVICE) connects to `host:port` and is closed again; rtt is the
//! connect time. A host name is resolved through the same interface (see
//! [`super::dns::resolve`]), against the system's nameservers unless told
//! otherwise. A refused connection counts as a failure: the path works, but
//! the service the probe stands for does not answer.

use super::dns::{self, NameServers};
use super::{ProbeFailure, ProbeOutcome, bind};
use crate::config::probes::split_host_port;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Bytes of one TCP segment without payload (IPv4 20 + TCP 20 + options 12).
const SEGMENT_V4: u64 = 52;
/// The same over IPv6.
const SEGMENT_V6: u64 = 72;

/// How many SYNs the kernel sends within `timeout` (initial RTO 1 s, doubling).
pub fn syn_attempts(timeout: Duration) -> u64 {
    let mut sent = 1;
    let mut at = 1.0f64;
    let mut rto = 1.0f64;
    let limit = timeout.as_secs_f64();
    while at < limit && sent < 7 {
        sent += 1;
        rto *= 2.0;
        at += rto;
    }
    sent
}

/// Probe: connect to `target` (`host:port`) through `iface`, names resolved
/// with the system's nameservers through the same interface.
pub async fn probe(iface: &str, target: &str, timeout: Duration) -> ProbeOutcome {
    probe_with(iface, target, &NameServers::System, timeout).await
}

/// [`probe`] with the nameservers for a host name given.
pub async fn probe_with(
    iface: &str,
    target: &str,
    nameservers: &NameServers,
    timeout: Duration,
) -> ProbeOutcome {
    if let Err(f) = bind::check_iface(iface) {
        return ProbeOutcome::fail(f, 0);
    }
    let Some((host, port)) = split_host_port(target) else {
        return ProbeOutcome::fail(
            ProbeFailure::Network(format!("bad TCP target {target:?} (want host:port)")),
            0,
        );
    };
    let start = Instant::now();
    let (ip, dns_bytes) = match host.parse::<IpAddr>() {
        Ok(ip) => (ip, 0),
        Err(_) => {
            let servers = match nameservers.servers_for(iface) {
                Ok(s) => s,
                Err(f) => return ProbeOutcome::fail(f, 0),
            };
            let (res, bytes) = dns::resolve(iface, &servers, &host, timeout).await;
            match res {
                Ok(addrs) => (addrs[0], bytes),
                Err(f) => return ProbeOutcome::fail(dns::as_resolve_failure(&host, f), bytes),
            }
        }
    };
    let remaining = timeout.saturating_sub(start.elapsed());
    if remaining.is_zero() {
        return ProbeOutcome::fail(ProbeFailure::Timeout, dns_bytes);
    }
    connect(iface, SocketAddr::new(ip, port), remaining, dns_bytes).await
}

async fn connect(iface: &str, addr: SocketAddr, timeout: Duration, extra: u64) -> ProbeOutcome {
    let seg = if addr.is_ipv6() {
        SEGMENT_V6
    } else {
        SEGMENT_V4
    };
    let start = Instant::now();
    let res = bind::connect_tcp(iface, addr, timeout).await;
    let rtt = start.elapsed();
    match res {
        Ok(stream) => {
            // SYN, SYN/ACK, ACK, then FIN, FIN/ACK, ACK when it is dropped.
            drop(stream);
            ProbeOutcome::ok(rtt, extra + 6 * seg)
        }
        Err(e) => {
            let f = bind::io_failure(&e, bind::BIND_PERMISSION_HINT);
            let bytes = match &f {
                ProbeFailure::Timeout => syn_attempts(timeout) * seg,
                ProbeFailure::NoSuchInterface | ProbeFailure::Permission(_) => 0,
                // SYN and RST (refused), or SYN and an ICMP error.
                _ => 2 * seg,
            };
            ProbeOutcome::fail(f, extra + bytes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_split() {
        assert_eq!(
            split_host_port("a.test:5222"),
            Some(("a.test".into(), 5222))
        );
        assert_eq!(split_host_port("[::1]:80"), Some(("::1".into(), 80)));
        assert_eq!(split_host_port("a.test"), None);
        assert_eq!(split_host_port("a.test:0"), None);
    }

    #[test]
    fn syn_retries_follow_the_backoff() {
        assert_eq!(syn_attempts(Duration::from_millis(500)), 1);
        assert_eq!(syn_attempts(Duration::from_secs(2)), 2);
        assert_eq!(syn_attempts(Duration::from_secs(5)), 3);
        assert_eq!(syn_attempts(Duration::from_secs(600)), 7);
    }
}
