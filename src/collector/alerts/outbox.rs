//! The outbox's decisions, pure: which rows a notification becomes (one per
//! contact and channel, each with a dedupe key), which rows to send now
//! (per-recipient rate limits), and what happens after an attempt
//! (delivered; retried with exponential back-off and jitter; given up when
//! refused for good or expired). At-least-once: a row is delivered only
//! after its sender said so; a claimed row whose outcome never arrived (a
//! crash mid-send) is due again when its lease runs out. Storing the rows
//! is the caller's (stage 2): [`OutboxRow`] is what it stores, unique on
//! `dedupe_key`.

use crate::collector::alerts::ack::AckLinks;
use crate::collector::alerts::channels::{Message, Needs, SendError, address};
use crate::collector::alerts::contacts::Routing;
use crate::collector::alerts::message::Templates;
use crate::collector::alerts::model::{Event, Notification};
use crate::collector::model::Office;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Where a row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowState {
    /// To send (again) at `next_attempt_ms`.
    Pending,
    Delivered,
    /// The receiver refused it for good.
    Failed,
    /// Not delivered before `expires_ms`.
    Expired,
}

impl RowState {
    pub fn as_str(self) -> &'static str {
        match self {
            RowState::Pending => "pending",
            RowState::Delivered => "delivered",
            RowState::Failed => "failed",
            RowState::Expired => "expired",
        }
    }
}

/// One message to one contact over one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRow {
    /// `alert/event/level/contact/channel`: the row's identity.
    pub dedupe_key: String,
    pub alert_id: i64,
    pub channel: String,
    /// The contact's name.
    pub recipient: String,
    /// E-mail address or phone number; empty for webhooks.
    pub address: String,
    pub message: Message,
    pub state: RowState,
    pub attempts: u32,
    pub created_ms: i64,
    pub next_attempt_ms: i64,
    pub expires_ms: i64,
    pub last_error: Option<String>,
    /// When it was delivered, refused or expired.
    pub done_ms: Option<i64>,
}

impl OutboxRow {
    /// Who the rate limit counts: the channel and the address.
    pub fn rate_key(&self) -> (&str, &str) {
        (&self.channel, &self.address)
    }

    pub fn apply(&mut self, u: &RowUpdate) {
        self.state = u.state;
        self.attempts = u.attempts;
        self.next_attempt_ms = u.next_attempt_ms;
        if u.last_error.is_some() {
            self.last_error = u.last_error.clone();
        }
        if u.done_ms.is_some() {
            self.done_ms = u.done_ms;
        }
    }
}

/// A row's new state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowUpdate {
    pub dedupe_key: String,
    pub state: RowState,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub last_error: Option<String>,
    pub done_ms: Option<i64>,
}

/// Retries, expiry and rate limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutboxPolicy {
    /// The wait after the first failure; doubled after each further one.
    pub first_retry_ms: i64,
    pub max_retry_ms: i64,
    /// Each wait is shortened by up to this share, at random (0 to 1).
    pub jitter: f64,
    /// A row not delivered this long after it was created expires.
    pub expire_after_ms: i64,
    /// At most this many messages per recipient (channel and address) in
    /// `rate_window_ms`; 0: no limit. Messages over it wait, never dropped.
    pub rate_limit: u32,
    pub rate_window_ms: i64,
    /// A claimed row is due again after this if no outcome was recorded.
    pub lease_ms: i64,
}

impl Default for OutboxPolicy {
    fn default() -> Self {
        OutboxPolicy {
            first_retry_ms: 30_000,
            max_retry_ms: 30 * 60_000,
            jitter: 0.2,
            expire_after_ms: 24 * 3_600_000,
            rate_limit: 30,
            rate_window_ms: 3_600_000,
            lease_ms: 120_000,
        }
    }
}

impl OutboxPolicy {
    /// The bounds `[lo, hi]` of the wait after the `n`-th failed attempt
    /// (`n` from 1).
    pub fn backoff_bounds(&self, n: u32) -> (i64, i64) {
        let exp = n.saturating_sub(1).min(40);
        let hi = self
            .first_retry_ms
            .saturating_mul(1i64 << exp.min(62))
            .min(self.max_retry_ms)
            .max(1);
        let lo = ((hi as f64) * (1.0 - self.jitter.clamp(0.0, 1.0))).floor() as i64;
        (lo.max(1), hi)
    }

    /// The wait after the `n`-th failure, `unit` a random number in [0, 1).
    pub fn backoff(&self, n: u32, unit: f64) -> i64 {
        let (lo, hi) = self.backoff_bounds(n);
        let u = if unit.is_finite() {
            unit.clamp(0.0, 1.0)
        } else {
            0.0
        };
        hi - ((hi - lo) as f64 * u).floor() as i64
    }
}

/// What the outbox needs to turn notifications into rows.
pub struct Planner<'a> {
    pub routing: &'a Routing,
    /// The address each channel needs, by channel name.
    pub channels: &'a BTreeMap<String, Needs>,
    pub templates: &'a Templates,
    /// The zone of subjects whose office has none of its own.
    pub zone: &'a TimeZone,
    /// Signed acknowledgement links, when configured.
    pub ack: Option<&'a AckLinks>,
    pub policy: OutboxPolicy,
}

impl Planner<'_> {
    /// The rows of one notification of alert `alert_id`: one per contact of
    /// its levels and channel of the contact, rendered in the contact's
    /// language. Channels the contact cannot be reached on are skipped.
    pub fn plan(
        &self,
        n: &Notification,
        alert_id: i64,
        office: Option<&Office>,
        now_ms: i64,
    ) -> Vec<OutboxRow> {
        let ack_url = match (n.event, self.ack) {
            (Event::Recovered, _) | (_, None) => None,
            (_, Some(a)) => Some(a.link(alert_id, now_ms)),
        };
        let mut out = Vec::new();
        for c in self.routing.recipients(office, &n.levels) {
            let rendered = self.templates.render(
                c.language,
                n.event,
                &n.view,
                office,
                self.zone,
                ack_url.as_deref(),
            );
            for ch in &c.channels {
                let Some(addr) = self.channels.get(ch).and_then(|needs| address(*needs, c)) else {
                    continue;
                };
                let dedupe_key = format!(
                    "{alert_id}/{}/{}/{}/{ch}",
                    n.event.as_str(),
                    n.view.level,
                    c.name
                );
                out.push(OutboxRow {
                    message: Message {
                        dedupe_key: dedupe_key.clone(),
                        event: n.event,
                        language: c.language,
                        rendered: rendered.clone(),
                        ack_url: ack_url.clone(),
                        alert: n.view.clone(),
                    },
                    dedupe_key,
                    alert_id,
                    channel: ch.clone(),
                    recipient: c.name.clone(),
                    address: addr,
                    state: RowState::Pending,
                    attempts: 0,
                    created_ms: now_ms,
                    next_attempt_ms: now_ms,
                    expires_ms: now_ms.saturating_add(self.policy.expire_after_ms),
                    last_error: None,
                    done_ms: None,
                });
            }
        }
        out
    }
}

/// What to do with the outbox now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DuePlan {
    /// Send these now (claim each first, see [`claim`]), oldest first.
    pub send: Vec<RowUpdate>,
    /// Over their recipient's rate limit: wait until then.
    pub defer: Vec<RowUpdate>,
    /// Past their expiry.
    pub expire: Vec<RowUpdate>,
}

/// Decide what to send now. `rows`: the pending rows and the rows
/// delivered within the rate window (the limit counts those).
pub fn due(rows: &[OutboxRow], now_ms: i64, p: &OutboxPolicy) -> DuePlan {
    let mut plan = DuePlan::default();
    let mut sent: HashMap<(&str, &str), Vec<i64>> = HashMap::new();
    for r in rows {
        if r.state == RowState::Delivered
            && let Some(t) = r.done_ms
            && t > now_ms - p.rate_window_ms
        {
            sent.entry(r.rate_key()).or_default().push(t);
        }
    }
    let mut ready: Vec<&OutboxRow> = Vec::new();
    for r in rows.iter().filter(|r| r.state == RowState::Pending) {
        if now_ms >= r.expires_ms {
            plan.expire.push(RowUpdate {
                dedupe_key: r.dedupe_key.clone(),
                state: RowState::Expired,
                attempts: r.attempts,
                next_attempt_ms: r.next_attempt_ms,
                last_error: Some(
                    r.last_error
                        .clone()
                        .map_or("expired before any attempt succeeded".into(), |e| {
                            format!("expired; last error: {e}")
                        }),
                ),
                done_ms: Some(now_ms),
            });
        } else if r.next_attempt_ms <= now_ms {
            ready.push(r);
        }
    }
    ready.sort_by(|a, b| (a.created_ms, &a.dedupe_key).cmp(&(b.created_ms, &b.dedupe_key)));
    for r in ready {
        let times = sent.entry(r.rate_key()).or_default();
        if p.rate_limit == 0 || times.len() < p.rate_limit as usize {
            times.push(now_ms);
            plan.send.push(claim(r, now_ms, p));
            continue;
        }
        times.sort_unstable();
        let free_at = times[times.len() - p.rate_limit as usize] + p.rate_window_ms;
        plan.defer.push(RowUpdate {
            dedupe_key: r.dedupe_key.clone(),
            state: RowState::Pending,
            attempts: r.attempts,
            next_attempt_ms: free_at.max(now_ms + 1),
            last_error: r.last_error.clone(),
            done_ms: None,
        });
    }
    plan
}

/// Claim a row for an attempt: counted, and due again after the lease if
/// no outcome is recorded.
pub fn claim(r: &OutboxRow, now_ms: i64, p: &OutboxPolicy) -> RowUpdate {
    RowUpdate {
        dedupe_key: r.dedupe_key.clone(),
        state: RowState::Pending,
        attempts: r.attempts.saturating_add(1),
        next_attempt_ms: now_ms.saturating_add(p.lease_ms),
        last_error: r.last_error.clone(),
        done_ms: None,
    }
}

/// The outcome of an attempt on a claimed row (`attempts` already counts
/// it). `unit`: a random number in [0, 1) for the jitter.
pub fn settle(
    r: &OutboxRow,
    outcome: Result<(), &SendError>,
    now_ms: i64,
    p: &OutboxPolicy,
    unit: f64,
) -> RowUpdate {
    let mut u = RowUpdate {
        dedupe_key: r.dedupe_key.clone(),
        state: RowState::Delivered,
        attempts: r.attempts,
        next_attempt_ms: r.next_attempt_ms,
        last_error: None,
        done_ms: Some(now_ms),
    };
    let Err(e) = outcome else {
        return u;
    };
    u.last_error = Some(e.to_string());
    if e.permanent {
        u.state = RowState::Failed;
        return u;
    }
    let next = now_ms.saturating_add(p.backoff(r.attempts.max(1), unit));
    if next >= r.expires_ms {
        u.state = RowState::Expired;
        return u;
    }
    u.state = RowState::Pending;
    u.next_attempt_ms = next;
    u.done_ms = None;
    u
}

#[cfg(test)]
mod tests;
