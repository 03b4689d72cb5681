//! ICMP echo through one interface (surge-ping, SO_BINDTODEVICE).

use super::{ProbeFailure, ProbeOutcome};
use std::net::IpAddr;
use std::time::Duration;

#[derive(Default)]
pub struct IcmpProber {}

impl IcmpProber {
    pub async fn probe(&self, _iface: &str, _target: IpAddr, _timeout: Duration) -> ProbeOutcome {
        ProbeOutcome::fail(ProbeFailure::Network("not implemented".into()), 0)
    }
}
