//! TCP connect through one interface.

use super::{ProbeFailure, ProbeOutcome};
use std::time::Duration;

/// Split `host:port` (`[v6]:port` for IPv6 literals).
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((host.to_string(), port))
}

pub async fn probe(_iface: &str, _target: &str, _timeout: Duration) -> ProbeOutcome {
    ProbeOutcome::fail(ProbeFailure::Network("not implemented".into()), 0)
}
