//! Probes, each bound to one interface (SO_BINDTODEVICE) so that a probe can
//! never leave through another link. This module owns the probe vocabulary
//! (spec, outcome, failure) and the [`Prober`] trait that the agent runtime
//! drives; the submodules do the I/O for each kind.

pub mod bind;
pub mod dns;
pub mod http;
pub mod icmp;
pub mod tcp;
pub mod tls;

use crate::config::agent::{NameServer, ProbeRole, ProbeSpec};
use dns::NameServers;
use std::fmt;
use std::time::Duration;

/// Why one probe failed. The text of each is what IT staff see in `check`
/// and `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeFailure {
    /// No answer within the timeout.
    Timeout,
    /// The interface is not there (or vanished during the probe).
    NoSuchInterface,
    /// The OS refused (no CAP_NET_RAW and not in ping_group_range, no CAP_NET_RAW for
    /// SO_BINDTODEVICE, ...). The text says what is missing.
    Permission(String),
    /// An HTTP check that expects a fixed answer got a redirect or a login page.
    Captive { detail: String },
    /// HTTP answered with another status than expected.
    BadStatus { got: u16, expected: u16 },
    /// HTTP body did not contain the expected text.
    BodyMismatch,
    /// A DNS query got an answer without the wanted records (NXDOMAIN, empty).
    DnsNoAnswer(String),
    /// A name in the probe could not be resolved through this link.
    Resolve(String),
    /// The HTTPS server's certificate was rejected (unknown CA, wrong name,
    /// expired, ...); the text says which.
    TlsCert(String),
    /// Connection refused, network unreachable, other TLS failures, ...
    Network(String),
}

impl ProbeFailure {
    /// Short machine word used as the link's `reason`.
    pub fn reason_word(&self) -> &'static str {
        match self {
            ProbeFailure::Timeout => "timeout",
            ProbeFailure::NoSuchInterface => "no-interface",
            ProbeFailure::Permission(_) => "permission",
            ProbeFailure::Captive { .. } => "captive",
            ProbeFailure::BadStatus { .. } => "http-status",
            ProbeFailure::BodyMismatch => "http-body",
            ProbeFailure::DnsNoAnswer(_) => "dns",
            ProbeFailure::Resolve(_) => "dns",
            ProbeFailure::TlsCert(_) => "tls-cert",
            ProbeFailure::Network(_) => "network",
        }
    }
}

impl fmt::Display for ProbeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProbeFailure::Timeout => write!(f, "no answer within the timeout"),
            ProbeFailure::NoSuchInterface => write!(f, "interface does not exist"),
            ProbeFailure::Permission(s) => write!(f, "not permitted: {s}"),
            ProbeFailure::Captive { detail } => write!(f, "captive portal: {detail}"),
            ProbeFailure::BadStatus { got, expected } => {
                write!(f, "HTTP status {got}, expected {expected}")
            }
            ProbeFailure::BodyMismatch => write!(f, "HTTP body does not contain the expected text"),
            ProbeFailure::DnsNoAnswer(s) => write!(f, "DNS gave no usable answer: {s}"),
            ProbeFailure::Resolve(s) => write!(f, "could not resolve through this link: {s}"),
            ProbeFailure::TlsCert(s) => write!(f, "TLS certificate {s}"),
            ProbeFailure::Network(s) => write!(f, "{s}"),
        }
    }
}

/// The result of one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    /// Round-trip (ICMP), query (DNS), connect (TCP) or first-byte (HTTP) time.
    pub result: Result<Duration, ProbeFailure>,
    /// Estimated bytes this probe put on the wire in both directions (IP level).
    pub bytes: u64,
}

impl ProbeOutcome {
    pub fn ok(rtt: Duration, bytes: u64) -> Self {
        ProbeOutcome {
            result: Ok(rtt),
            bytes,
        }
    }
    pub fn fail(f: ProbeFailure, bytes: u64) -> Self {
        ProbeOutcome {
            result: Err(f),
            bytes,
        }
    }
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// Runs one probe through one interface. The real implementation is [`NetProber`];
/// tests of the runtime can put a scripted one in its place.
#[async_trait::async_trait]
pub trait Prober: Send + Sync + 'static {
    async fn probe(&self, iface: &str, spec: &ProbeSpec, timeout: Duration) -> ProbeOutcome;
}

/// The real prober: ICMP, DNS, HTTP(S) and TCP through the named interface.
#[derive(Default)]
pub struct NetProber {
    icmp: icmp::IcmpProber,
}

impl NetProber {
    pub fn new() -> Self {
        Self::default()
    }
    /// A prober whose ICMP echoes carry `len` payload bytes.
    pub fn with_payload(len: u16) -> Self {
        NetProber {
            icmp: icmp::IcmpProber::with_payload(len),
        }
    }
}

#[async_trait::async_trait]
impl Prober for NetProber {
    async fn probe(&self, iface: &str, spec: &ProbeSpec, timeout: Duration) -> ProbeOutcome {
        match spec {
            ProbeSpec::Icmp { target, .. } => self.icmp.probe(iface, *target, timeout).await,
            ProbeSpec::Dns {
                server, name, ipv6, ..
            } => dns::probe(iface, server, name, *ipv6, timeout).await,
            ProbeSpec::Http {
                url,
                expect_status,
                body_contains,
                captive,
                ca_file,
                nameservers,
                ..
            } => {
                let check = http::HttpCheck {
                    url,
                    expect_status: *expect_status,
                    body_contains: body_contains.as_deref(),
                    captive: *captive,
                    ca_file: ca_file.as_deref(),
                };
                http::check(iface, &check, &name_servers(nameservers), timeout).await
            }
            ProbeSpec::Tcp {
                target,
                nameservers,
                ..
            } => tcp::probe_with(iface, target, &name_servers(nameservers), timeout).await,
        }
    }
}

/// The nameservers a probe resolves its target's name with.
fn name_servers(configured: &Option<Vec<NameServer>>) -> NameServers {
    match configured {
        Some(v) if !v.is_empty() => NameServers::Given(v.iter().map(|n| n.0).collect()),
        _ => NameServers::System,
    }
}

/// Convenience: the role a spec plays (reachability counts for up/down,
/// application checks for degraded).
pub fn role_of(spec: &ProbeSpec) -> ProbeRole {
    spec.role()
}
