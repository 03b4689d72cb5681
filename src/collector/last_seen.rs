//! Last seen: when each device was last heard from (its last upload, its
//! newest record, the deadline it announced for the next upload), as
//! `linkwatch device list` shows it (plain and JSON) and as the collector's
//! metrics count it. The counting ([`summarize`]) and the rendering are pure;
//! [`run_gauges`] is the thin task that refreshes the metrics from the store.
//!
//! The metrics stay a handful of series whatever the fleet's size (no
//! per-device labels): devices silent past their deadline and grace,
//! devices never heard from, and devices by age of their last upload in
//! fixed buckets (cumulative, like a histogram's), which is what a graph of
//! "how much of the fleet reported in the last 5 minutes / hour / day"
//! needs.

use crate::collector::store::{Device, Store};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::Serialize;
use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

/// RFC 3339 in UTC (`2026-11-29T04:00:00Z`).
pub fn ts(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// The wall clock, Unix ms.
pub use crate::shared::time::now_ms;

/// Upper bounds (seconds) of the last-upload age buckets.
pub const AGE_BUCKETS_S: [i64; 6] = [60, 300, 900, 3_600, 21_600, 86_400];

/// When a device counts as silent (ms): the interval assumed for agents that
/// announce no deadline, and the grace past the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silence {
    pub interval_ms: i64,
    pub grace_ms: i64,
}

/// The fleet's last-seen figures at one moment (revoked devices left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Devices not revoked.
    pub devices: i64,
    /// Heard from once, and past their upload deadline plus the grace.
    pub silent: i64,
    /// Never uploaded anything.
    pub never: i64,
    /// Per [`AGE_BUCKETS_S`] bound: devices whose last upload is at most
    /// that old (cumulative).
    pub age_le: [i64; AGE_BUCKETS_S.len()],
}

/// Count the fleet's last-seen figures at `now_ms`.
pub fn summarize<'a>(
    devices: impl IntoIterator<Item = &'a Device>,
    now_ms: i64,
    silence: Silence,
) -> Summary {
    let mut s = Summary::default();
    for d in devices.into_iter().filter(|d| !d.revoked) {
        s.devices += 1;
        let Some(last) = d.seen.last_upload_ms else {
            s.never += 1;
            continue;
        };
        if d.seen.silent(now_ms, silence.interval_ms, silence.grace_ms) {
            s.silent += 1;
        }
        let age_s = now_ms.saturating_sub(last).max(0) / 1000;
        for (n, bound) in s.age_le.iter_mut().zip(AGE_BUCKETS_S) {
            if age_s <= bound {
                *n += 1;
            }
        }
    }
    s
}

/// A device as `linkwatch device list --json` shows it (never its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceLine {
    pub name: String,
    pub office: Option<String>,
    pub revoked: bool,
    /// Highest sequence number up to which every record is stored.
    pub acked_seq: i64,
    pub created_at: String,
    /// RFC 3339, UTC; `null` before the first upload.
    pub last_upload: Option<String>,
    pub last_record: Option<String>,
    /// When the next upload is due at the latest (announced, or the last
    /// upload plus the configured interval).
    pub next_upload_due: Option<String>,
    /// Past that deadline plus the grace.
    pub silent: bool,
}

impl DeviceLine {
    pub fn new(d: &Device, now_ms: i64, silence: Silence) -> Self {
        DeviceLine {
            name: d.name.clone(),
            office: d.office.clone(),
            revoked: d.revoked,
            acked_seq: d.acked,
            created_at: ts(d.created_at_ms),
            last_upload: d.seen.last_upload_ms.map(ts),
            last_record: d.seen.last_record_ms.map(ts),
            next_upload_due: d.seen.due_ms(silence.interval_ms).map(ts),
            silent: !d.revoked && d.seen.silent(now_ms, silence.interval_ms, silence.grace_ms),
        }
    }
}

/// How long ago, for the plain list: `never`, `12s ago`, `5m ago`,
/// `3h 20m ago`, `4d 2h ago`; `in 30s` for times ahead.
pub fn ago(now_ms: i64, at_ms: Option<i64>) -> String {
    let Some(at) = at_ms else {
        return "never".into();
    };
    let d = now_ms.saturating_sub(at);
    let s = d.unsigned_abs() / 1000;
    let text = match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m", s / 60),
        3_600..86_400 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
    };
    if d < 0 {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// `linkwatch device list`: a table, or JSON (one array) with `json`.
/// `device list`: a table (creation times through `created`, so the CLI can
/// print them in local time) or, with `json`, an array.
pub fn render_list(
    list: &[Device],
    now_ms: i64,
    silence: Silence,
    json: bool,
    created: &dyn Fn(i64) -> String,
) -> String {
    if json {
        let lines: Vec<DeviceLine> = list
            .iter()
            .map(|d| DeviceLine::new(d, now_ms, silence))
            .collect();
        // Plain strings and numbers: serialising cannot fail.
        return serde_json::to_string_pretty(&lines).unwrap_or_default() + "\n";
    }
    let mut out = String::new();
    let w = list.iter().map(|d| d.name.len()).max().unwrap_or(0).max(4);
    let wo = list
        .iter()
        .map(|d| d.office.as_deref().map_or(1, str::len))
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(
        out,
        "{:<w$}  {:<wo$}  {:<7}  {:>10}  {:<25}  {:<12}  {:<12}  STATE",
        "NAME", "OFFICE", "REVOKED", "ACKED SEQ", "CREATED", "LAST UPLOAD", "LAST RECORD"
    );
    for d in list {
        let line = DeviceLine::new(d, now_ms, silence);
        let state = if d.revoked {
            "revoked"
        } else if d.seen.last_upload_ms.is_none() {
            "never uploaded"
        } else if line.silent {
            "SILENT"
        } else {
            "ok"
        };
        let _ = writeln!(
            out,
            "{:<w$}  {:<wo$}  {:<7}  {:>10}  {:<25}  {:<12}  {:<12}  {state}",
            d.name,
            d.office.as_deref().unwrap_or("-"),
            if d.revoked { "yes" } else { "no" },
            d.acked,
            created(d.created_at_ms),
            ago(now_ms, d.seen.last_upload_ms),
            ago(now_ms, d.seen.last_record_ms),
        );
    }
    if list.is_empty() {
        out.push_str("(no devices: add one with `linkwatch device add NAME`)\n");
    }
    out
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgeLabels {
    /// Upper bound in seconds, or `+Inf`.
    pub le: String,
}

/// The collector's last-seen gauges.
#[derive(Clone, Default)]
pub struct SeenGauges {
    pub silent: Gauge,
    pub never: Gauge,
    pub devices: Gauge,
    pub age: Family<AgeLabels, Gauge>,
}

impl SeenGauges {
    pub fn register(registry: &mut Registry) -> Self {
        let g = SeenGauges::default();
        registry.register(
            "devices_silent",
            "Devices (not revoked) past their upload deadline plus the grace",
            g.silent.clone(),
        );
        registry.register(
            "devices_never_uploaded",
            "Devices (not revoked) never heard from",
            g.never.clone(),
        );
        registry.register(
            "devices",
            "Devices registered and not revoked",
            g.devices.clone(),
        );
        registry.register(
            "devices_last_upload_age",
            "Devices (not revoked) whose last upload is at most `le` seconds old (cumulative)",
            g.age.clone(),
        );
        g
    }

    pub fn set(&self, s: &Summary) {
        self.silent.set(s.silent);
        self.never.set(s.never);
        self.devices.set(s.devices);
        for (bound, n) in AGE_BUCKETS_S.iter().zip(s.age_le) {
            self.age
                .get_or_create(&AgeLabels {
                    le: bound.to_string(),
                })
                .set(n);
        }
        self.age
            .get_or_create(&AgeLabels { le: "+Inf".into() })
            .set(s.devices - s.never);
    }
}

/// How often [`run_gauges`] refreshes the gauges.
pub const REFRESH: Duration = Duration::from_secs(15);

/// Refresh the gauges from the store every `every`, for ever (a failed read
/// is logged and leaves them as they were).
pub async fn run_gauges(
    store: Arc<dyn Store>,
    gauges: SeenGauges,
    silence: Silence,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.list_devices().await {
            Ok(list) => gauges.set(&summarize(&list, now_ms(), silence)),
            Err(e) => tracing::warn!(error = %e, "last-seen metrics: cannot list the devices"),
        }
    }
}

#[cfg(test)]
mod tests;
