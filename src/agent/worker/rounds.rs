//! The probing parts of a link's worker: one round of reachability probes
//! (every target at once), the failure that explains a failed round, the
//! reason word of a failed application check, and the per-minute figures for
//! the `link_minutes` record.

use crate::agent::health::Round;
use crate::agent::probe::{ProbeFailure, ProbeOutcome, Prober};
use crate::config::agent::ProbeSpec;
use crate::wire::v1::Body;
use std::time::Duration;

/// Reason word a failed probe gives to the link.
pub(super) fn app_reason(f: &ProbeFailure) -> String {
    match f {
        ProbeFailure::Timeout => "app-timeout".into(),
        ProbeFailure::Network(_) => "app-network".into(),
        other => other.reason_word().into(),
    }
}

/// The failure that best explains a failed round.
fn round_failure(outcomes: &[(String, ProbeOutcome)]) -> Option<String> {
    let mut words: Vec<&'static str> = outcomes
        .iter()
        .filter_map(|(_, o)| o.result.as_ref().err().map(|f| f.reason_word()))
        .collect();
    words.sort_by_key(|w| match *w {
        "permission" => 0,
        "no-interface" => 1,
        _ => 2,
    });
    words.first().map(|w| w.to_string())
}

/// Probing figures of the current minute, for the `link_minutes` record.
#[derive(Debug, Default)]
pub(super) struct MinuteAcc {
    pub(super) sent: u32,
    pub(super) lost: u32,
    pub(super) rtts_ms: Vec<f64>,
    pub(super) bytes: u64,
}

impl MinuteAcc {
    pub(super) fn body(&mut self, link: &str, kind: crate::wire::LinkKind) -> Option<Body> {
        if self.sent == 0 && self.bytes == 0 {
            return None;
        }
        let mut r = std::mem::take(&mut self.rtts_ms);
        r.sort_by(|a, b| a.total_cmp(b));
        let pick = |q: f64| -> Option<f64> {
            (!r.is_empty()).then(|| {
                let i = ((r.len() - 1) as f64 * q).round() as usize;
                (r[i] * 100.0).round() / 100.0
            })
        };
        let body = Body::LinkMinutes {
            link: link.to_string(),
            kind,
            minutes: 1,
            sent: self.sent,
            lost: self.lost,
            rtt_p50_ms: pick(0.5),
            rtt_p95_ms: pick(0.95),
            rtt_max_ms: pick(1.0),
            bytes: self.bytes,
        };
        *self = MinuteAcc::default();
        Some(body)
    }
}

/// Probe every target of a round concurrently.
pub async fn run_round(
    prober: &dyn Prober,
    iface: &str,
    targets: &[ProbeSpec],
    timeout: Duration,
) -> (Round, Vec<(String, ProbeOutcome)>) {
    let futs = targets.iter().map(|t| async move {
        let o = prober.probe(iface, t, timeout).await;
        (t.label(), o)
    });
    let outcomes: Vec<(String, ProbeOutcome)> = futures::future::join_all(futs).await;
    let rtts: Vec<Duration> = outcomes
        .iter()
        .filter_map(|(_, o)| o.result.as_ref().ok().copied())
        .collect();
    // A probe the OS refused to send is not packet loss: count only probes
    // that left (the refusal still fails the round when nothing else answers).
    let sent = outcomes
        .iter()
        .filter(|(_, o)| {
            !matches!(
                o.result,
                Err(ProbeFailure::Permission(_) | ProbeFailure::NoSuchInterface)
            )
        })
        .count();
    let round = Round {
        sent: sent as u32,
        answered: rtts.len() as u32,
        rtts,
        failure: round_failure(&outcomes),
    };
    (round, outcomes)
}
