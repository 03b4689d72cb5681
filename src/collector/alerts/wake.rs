//! When the alert engine should look again: the next moment something may
//! fall due (a device's upload deadline plus the grace, an office group's
//! wait, an escalation, a silence's start or end, a gateway link's `after`,
//! an outbox row's next attempt or expiry), so that a round runs then
//! rather than at the next fixed interval. Pure: the round's facts and
//! `now` in, a time out; [`sleep_before`] turns it into a sleep within the
//! interval (which stays the longest wait).

use super::model::{DeviceFacts, OpenAlert, Silence};
use super::outbox::{OutboxRow, RowState};
use super::rules::{RuleKind, RuleSet};
use std::time::Duration;

/// Rounds are at least this far apart, however many deadlines fall in
/// between (with thousands of devices one falls every few milliseconds).
pub const MIN_GAP: Duration = Duration::from_secs(1);

/// The earliest moment after `now_ms` at which the rules may decide
/// something new about `devices`, `open` alerts and `silences`; `None`
/// when nothing is pending.
pub fn next_wake(
    rules: &RuleSet,
    now_ms: i64,
    devices: &[DeviceFacts],
    open: &[OpenAlert],
    silences: &[Silence],
) -> Option<i64> {
    let mut times: Vec<i64> = Vec::new();
    let link_afters: Vec<(RuleKind, i64)> = rules
        .rules
        .iter()
        .filter(|r| {
            matches!(
                r.kind,
                RuleKind::Failover | RuleKind::LinkDown | RuleKind::MeteredTraffic
            )
        })
        .map(|r| (r.kind, r.after_ms))
        .collect();
    for d in devices {
        let Some(last) = d.last_upload_ms else {
            continue;
        };
        if d.stopped.is_none() {
            let due = d
                .next_upload_due_ms
                .unwrap_or(last.saturating_add(rules.upload_interval_ms));
            times.push(due.saturating_add(rules.grace_ms));
        }
        if let Some(gw) = &d.links {
            for (kind, after) in &link_afters {
                match kind {
                    RuleKind::LinkDown => {
                        times.extend(gw.links.iter().map(|l| l.since_ms.saturating_add(*after)))
                    }
                    _ => times.push(gw.chosen_since_ms.saturating_add(*after)),
                }
            }
        }
    }
    for a in open {
        if a.notified_ms.is_none() {
            times.push(a.opened_ms.saturating_add(rules.grouping.wait_ms));
        }
        if let Some(clearing) = a.clearing_since_ms {
            times.push(clearing.saturating_add(rules.grouping.window_ms));
        }
        if a.acked.is_none()
            && let Some(esc) = rules
                .rules
                .iter()
                .find(|r| r.name == a.key.rule)
                .and_then(|r| r.escalate_after_ms)
        {
            times.push(a.level_since_ms.saturating_add(esc));
        }
    }
    for s in silences {
        times.extend([s.start_ms, s.end_ms]);
    }
    times.into_iter().filter(|t| *t > now_ms).min()
}

/// The earliest moment after `now_ms` at which an outbox row is due again
/// (its next attempt, or its expiry).
pub fn outbox_wake(rows: &[OutboxRow], now_ms: i64) -> Option<i64> {
    rows.iter()
        .filter(|r| r.state == RowState::Pending)
        .flat_map(|r| [r.next_attempt_ms, r.expires_ms])
        .filter(|t| *t > now_ms)
        .min()
}

/// How long to sleep before another round, `elapsed` into the current
/// interval of length `every`, the last round having taken `last_round`:
/// until `next_ms`, but at least [`MIN_GAP`] and at least as long as the
/// last round took (so that woken rounds never take more than half of a
/// core, however large the fleet); `None` when nothing falls due before
/// the interval's own next round.
pub fn sleep_before(
    now_ms: i64,
    next_ms: Option<i64>,
    elapsed: Duration,
    last_round: Duration,
    every: Duration,
) -> Option<Duration> {
    let wait = Duration::from_millis(u64::try_from(next_ms? - now_ms).unwrap_or(0))
        .max(MIN_GAP)
        .max(last_round);
    (elapsed.saturating_add(wait) < every).then_some(wait)
}

#[cfg(test)]
mod tests;
