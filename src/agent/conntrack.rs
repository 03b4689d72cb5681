//! Flushing connection-tracking entries of a link the traffic left, so NATed
//! flows re-establish on the new link instead of staying pinned to a dead or
//! metered one. Uses the `conntrack` tool (conntrack-tools): no maintained
//! crate speaks ctnetlink, and this runs only on failover, rarely.

use std::net::IpAddr;

#[derive(Debug, thiserror::Error)]
pub enum ConntrackError {
    #[error("interface {link} has no IPv4 address to flush flows of")]
    NoAddress { link: String },
    #[error("cannot run `conntrack` (install conntrack-tools): {0}")]
    Spawn(#[source] std::io::Error),
}

/// IPv4 addresses of an interface, from sysinfo.
pub fn addresses(link: &str) -> Vec<IpAddr> {
    let Ok(nets) = sysinfo::Networks::new_with_refreshed_list() else {
        return vec![];
    };
    nets.iter()
        .filter(|(name, _)| name.as_os_str() == link)
        .flat_map(|(_, data)| data.ip_networks().iter().map(|n| n.addr))
        .filter(|a| a.is_ipv4())
        .collect()
}

/// Delete every tracked flow that leaves through `link`'s address (NATed
/// replies come back to it; the gateway's own flows start from it). Returns
/// how many `conntrack` deletions succeeded.
pub async fn flush_link(link: &str) -> Result<usize, ConntrackError> {
    let addrs = addresses(link);
    if addrs.is_empty() {
        return Err(ConntrackError::NoAddress {
            link: link.to_string(),
        });
    }
    let mut done = 0;
    for a in addrs {
        for flag in ["--reply-dst", "--orig-src"] {
            let out = tokio::process::Command::new("conntrack")
                .args(["-D", flag, &a.to_string()])
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .map_err(ConntrackError::Spawn)?;
            // conntrack exits 1 when nothing matched: not an error here.
            if out.status.success() {
                done += 1;
            }
        }
    }
    Ok(done)
}
