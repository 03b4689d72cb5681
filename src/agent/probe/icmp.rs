//! ICMP echo through one interface (surge-ping, SO_BINDTODEVICE).
//!
//! [`IcmpProber`] owns one surge-ping `Client` (one socket and its receive
//! task) per (interface, address family), created on first use and dropped on
//! any failure, so that an interface that vanished and came back (a new
//! interface index behind the same name) is probed through a fresh socket.
//! Concurrent pings get distinct sequence numbers (one counter for the
//! prober) and a random identifier each. The payload is small (8 bytes by
//! default) to keep the data budget on metered links tiny.

use super::bind;
use super::{ProbeFailure, ProbeOutcome};
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;
use surge_ping::{Client, Config, ICMP, IcmpPacket, PingIdentifier, PingSequence, SurgeError};

/// What is missing when the OS refuses to open an ICMP socket.
pub const ICMP_PERMISSION_HINT: &str = "ICMP echo needs CAP_NET_RAW or the process's group in \
     net.ipv4.ping_group_range (sysctl)";

/// Default ICMP payload length in bytes.
pub const DEFAULT_PAYLOAD_LEN: u16 = 8;

/// Largest payload accepted (the agent configuration allows up to this; the
/// packet then still fits a 1500-byte MTU over IPv6).
pub const MAX_PAYLOAD_LEN: u16 = 1400;

/// Extra time over the probe timeout before the outer guard fires.
const GUARD: Duration = Duration::from_millis(200);

const ECHO_REPLY_V4: u8 = 0;
const ECHO_REPLY_V6: u8 = 129;

/// Pings through a named interface, keeping one socket per (interface, family).
pub struct IcmpProber {
    payload_len: u16,
    clients: Mutex<HashMap<(String, bool), Client>>,
    seq: AtomicU16,
}

impl Default for IcmpProber {
    fn default() -> Self {
        Self::with_payload(DEFAULT_PAYLOAD_LEN)
    }
}

impl IcmpProber {
    /// A prober sending `len` bytes of payload per echo request (capped at
    /// [`MAX_PAYLOAD_LEN`]).
    pub fn with_payload(len: u16) -> Self {
        IcmpProber {
            payload_len: len.min(MAX_PAYLOAD_LEN),
            clients: Mutex::new(HashMap::new()),
            seq: AtomicU16::new(rand::random()),
        }
    }

    /// The payload length in bytes.
    pub fn payload_len(&self) -> u16 {
        self.payload_len
    }

    /// Bytes one echo request (or reply) occupies at the IP level.
    fn packet_bytes(&self, v6: bool) -> u64 {
        let ip = if v6 { 40 } else { 20 };
        ip + 8 + u64::from(self.payload_len)
    }

    fn client(&self, iface: &str, v6: bool) -> io::Result<Client> {
        let key = (iface.to_string(), v6);
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = map.get(&key) {
            return Ok(c.clone());
        }
        let config = Config::builder()
            .kind(if v6 { ICMP::V6 } else { ICMP::V4 })
            .interface(iface)
            .build();
        let client = Client::new(&config)?;
        map.insert(key, client.clone());
        Ok(client)
    }

    fn forget(&self, iface: &str, v6: bool) {
        let mut map = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(iface.to_string(), v6));
    }

    /// Number of cached sockets (for tests and status).
    pub fn cached_clients(&self) -> usize {
        self.clients.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// One echo request to `target` through `iface`; rtt is the round trip.
    pub async fn probe(&self, iface: &str, target: IpAddr, timeout: Duration) -> ProbeOutcome {
        if let Err(f) = bind::check_iface(iface) {
            return ProbeOutcome::fail(f, 0);
        }
        let v6 = target.is_ipv6();
        let one_way = self.packet_bytes(v6);
        let client = match self.client(iface, v6) {
            Ok(c) => c,
            Err(e) => return ProbeOutcome::fail(open_failure(&e), 0),
        };
        let mut pinger = client.pinger(target, PingIdentifier(rand::random())).await;
        pinger.timeout(timeout);
        let seq = PingSequence(self.seq.fetch_add(1, Ordering::Relaxed));
        let payload = vec![0u8; usize::from(self.payload_len)];
        let res = tokio::time::timeout(timeout + GUARD, pinger.ping(seq, &payload)).await;
        let outcome = match res {
            Err(_) => ProbeOutcome::fail(ProbeFailure::Timeout, one_way),
            Ok(Ok((packet, rtt))) => match reply_problem(&packet) {
                None => ProbeOutcome::ok(rtt, 2 * one_way),
                Some(text) => ProbeOutcome::fail(ProbeFailure::Network(text), 2 * one_way),
            },
            Ok(Err(SurgeError::Timeout { .. })) => {
                ProbeOutcome::fail(ProbeFailure::Timeout, one_way)
            }
            Ok(Err(SurgeError::IOError(e))) => {
                // The request may not have left at all (e.g. ENODEV on send).
                let f = send_failure(&e);
                let bytes = if matches!(f, ProbeFailure::Network(_)) {
                    one_way
                } else {
                    0
                };
                ProbeOutcome::fail(f, bytes)
            }
            Ok(Err(e)) => ProbeOutcome::fail(ProbeFailure::Network(format!("ICMP: {e}")), one_way),
        };
        if !outcome.is_ok() {
            // A fresh socket next time: the interface may have been recreated.
            self.forget(iface, v6);
        }
        outcome
    }
}

/// Failure opening or binding the socket.
fn open_failure(e: &io::Error) -> ProbeFailure {
    if bind::is_no_such_device(e) {
        ProbeFailure::NoSuchInterface
    } else if bind::is_permission(e) {
        ProbeFailure::Permission(ICMP_PERMISSION_HINT.into())
    } else {
        ProbeFailure::Network(format!("ICMP socket: {e}"))
    }
}

/// Failure sending the request.
fn send_failure(e: &io::Error) -> ProbeFailure {
    match bind::io_failure(e, ICMP_PERMISSION_HINT) {
        ProbeFailure::Network(s) => ProbeFailure::Network(format!("ICMP send: {s}")),
        other => other,
    }
}

/// `None` for an echo reply, else what the ICMP error says.
fn reply_problem(packet: &IcmpPacket) -> Option<String> {
    match packet {
        IcmpPacket::V4(p) => {
            let t = p.get_icmp_type().0;
            if t == ECHO_REPLY_V4 {
                return None;
            }
            let code = p.get_icmp_code().0;
            let what = match t {
                3 => match code {
                    0 => "network unreachable",
                    1 => "host unreachable",
                    3 => "port unreachable",
                    9 | 10 | 13 => "administratively prohibited",
                    _ => "destination unreachable",
                },
                11 => "time exceeded",
                12 => "parameter problem",
                _ => "unexpected ICMP answer",
            };
            Some(format!(
                "{what} (ICMP type {t} code {code}) from {}",
                p.get_source()
            ))
        }
        IcmpPacket::V6(p) => {
            let t = p.get_icmpv6_type().0;
            if t == ECHO_REPLY_V6 {
                return None;
            }
            let code = p.get_icmpv6_code().0;
            let what = match t {
                1 => match code {
                    0 => "no route to destination",
                    1 => "administratively prohibited",
                    3 => "address unreachable",
                    _ => "destination unreachable",
                },
                2 => "packet too big",
                3 => "time exceeded",
                4 => "parameter problem",
                _ => "unexpected ICMPv6 answer",
            };
            Some(format!("{what} (ICMPv6 type {t} code {code})"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_small_by_default_and_capped() {
        assert_eq!(IcmpProber::default().payload_len(), 8);
        assert_eq!(
            IcmpProber::with_payload(u16::MAX).payload_len(),
            MAX_PAYLOAD_LEN
        );
        let p = IcmpProber::with_payload(56);
        assert_eq!(p.packet_bytes(false), 84);
        assert_eq!(p.packet_bytes(true), 104);
    }

    #[test]
    fn permission_errors_say_what_is_missing() {
        let e = io::Error::from_raw_os_error(libc::EACCES);
        match open_failure(&e) {
            ProbeFailure::Permission(s) => {
                assert!(s.contains("CAP_NET_RAW") && s.contains("ping_group_range"))
            }
            other => panic!("{other:?}"),
        }
        let e = io::Error::from_raw_os_error(libc::ENODEV);
        assert_eq!(open_failure(&e), ProbeFailure::NoSuchInterface);
    }
}
