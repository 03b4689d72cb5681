//! Named bundles of probes a link can select: `internet` (can this link reach
//! the internet at all, and is it behind a captive portal?) and `whatsapp`
//! (can an officer reach WhatsApp through it?). They name public targets for
//! real deployments. `[probe_defaults]` applies to them: its nameservers
//! resolve their names and answer their DNS checks, its CA file is trusted by
//! their HTTPS checks; that is also how tests run them against stand-ins
//! inside network namespaces, without a query leaving the machine.

use crate::config::agent::{ProbeRole, ProbeSpec};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Every preset name, for messages.
pub const NAMES: &[&str] = &["internet", "whatsapp"];

fn icmp(ip: IpAddr) -> ProbeSpec {
    ProbeSpec::Icmp {
        target: ip,
        role: None,
    }
}

/// The probes of a preset, or `None` for an unknown name.
pub fn probes(name: &str) -> Option<Vec<ProbeSpec>> {
    match name {
        "internet" => Some(vec![
            // Three anycast resolvers of three operators: one dead target never
            // marks the link down (quorum 1 of 3 by default).
            icmp(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1))),
            icmp(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8))),
            icmp(IpAddr::V4(Ipv4Addr::new(9, 9, 9, 9))),
            // IPv6 targets are probed only when the link has a global IPv6 address.
            icmp(IpAddr::V6(Ipv6Addr::new(
                0x2606, 0x4700, 0x4700, 0, 0, 0, 0, 0x1111,
            ))),
            icmp(IpAddr::V6(Ipv6Addr::new(
                0x2001, 0x4860, 0x4860, 0, 0, 0, 0, 0x8888,
            ))),
            ProbeSpec::Dns {
                server: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(1, 1, 1, 1)), 53),
                name: "www.gov.bd".into(),
                ipv6: false,
                role: Some(ProbeRole::App),
            },
            ProbeSpec::Http {
                url: "http://connectivitycheck.gstatic.com/generate_204".into(),
                expect_status: 204,
                body_contains: None,
                captive: true,
                ca_file: None,
                nameservers: None,
                role: Some(ProbeRole::App),
            },
        ]),
        "whatsapp" => Some(vec![
            ProbeSpec::Dns {
                server: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(8, 8, 8, 8)), 53),
                name: "g.whatsapp.net".into(),
                ipv6: false,
                role: Some(ProbeRole::App),
            },
            ProbeSpec::Tcp {
                target: "g.whatsapp.net:5222".into(),
                nameservers: None,
                role: Some(ProbeRole::App),
            },
            ProbeSpec::Http {
                url: "https://web.whatsapp.com/".into(),
                expect_status: 200,
                body_contains: None,
                captive: false,
                ca_file: None,
                nameservers: None,
                role: Some(ProbeRole::App),
            },
        ]),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_preset_exists_and_internet_has_reach_probes() {
        for n in NAMES {
            assert!(probes(n).is_some(), "{n}");
        }
        assert!(probes("nope").is_none());
        let reach = probes("internet")
            .unwrap()
            .iter()
            .filter(|p| p.role() == ProbeRole::Reach && !p.is_ipv6())
            .count();
        assert_eq!(reach, 3);
    }
}
