//! HTTP/HTTPS checks through one interface, with captive-portal detection.

use super::{ProbeFailure, ProbeOutcome};
use std::time::Duration;

pub async fn probe(
    _iface: &str,
    _url: &str,
    _expect_status: u16,
    _body_contains: Option<&str>,
    _captive: bool,
    _timeout: Duration,
) -> ProbeOutcome {
    ProbeOutcome::fail(ProbeFailure::Network("not implemented".into()), 0)
}
