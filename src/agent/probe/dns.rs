//! DNS lookups through one interface (hickory-resolver, cache off).

use super::{ProbeFailure, ProbeOutcome};
use std::net::SocketAddr;
use std::time::Duration;

pub async fn probe(
    _iface: &str,
    _server: &SocketAddr,
    _name: &str,
    _ipv6: bool,
    _timeout: Duration,
) -> ProbeOutcome {
    ProbeOutcome::fail(ProbeFailure::Network("not implemented".into()), 0)
}
