//! Protocol v1 between agent and collector (documented in `docs/protocol.md`):
//! the record types the agent spools and uploads, the batch that carries them,
//! the collector's acknowledgement, and the validation both sides apply.
//! Unknown fields and out-of-range values are rejected with the field's path.

use crate::wire::{LinkKind, LinkState};
use serde::{Deserialize, Serialize};

mod decode;

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;
/// Most records in one batch.
pub const MAX_RECORDS: usize = 5_000;
/// Largest accepted request body, compressed (bytes).
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Largest request body once decompressed a collector may be configured to
/// accept (bytes); the collector's own limit is a few times its
/// `max_body_bytes` (see `collector::http::intake::decompressed_limit`).
pub const MAX_BODY_DECOMPRESSED: usize = 32 * 1024 * 1024;
/// Longest accepted name (device, link, reason, ...).
pub const MAX_NAME: usize = 128;
/// Longest accepted `boot_id`.
pub const MAX_BOOT_ID: usize = 64;
/// Largest record body, as JSON text (bytes): checked before the body is
/// decoded, so no body can make the decoder hold more than this. The largest
/// body the agent writes (`facts` with 64 links of 128-byte names) is under
/// 16 KiB.
pub const MAX_RECORD_BODY: usize = 32 * 1024;
/// Highest sequence number a record may stand for (`seq`, `seq_end`):
/// storage holds signed 64-bit integers, and `acked + 1` after it must
/// still be one (2^63 - 2).
pub const MAX_SEQ: u64 = i64::MAX as u64 - 1;
/// Most sequence numbers one record may stand for (`seq..=seq_end`). The
/// agent folds at most a few hundred records into one; the bound keeps one
/// record from moving a device's `acked` anywhere near [`MAX_SEQ`].
pub const MAX_SEQ_SPAN: u64 = 1 << 20;
/// Largest accepted unsigned count (`mono_ms`, `bytes`): what storage holds
/// (2^63 - 1).
pub const MAX_COUNT: u64 = i64::MAX as u64;
/// Measurement times before this (2024-01-01T00:00:00Z, in ms) come from a
/// clock that cannot be right (a dead clock battery); they are accepted (the
/// agent measured them) and the uptime engine places such a boot by its
/// corrected clock.
pub const MIN_TIME_MS: i64 = 1_704_067_200_000;
/// Latest accepted measurement time: the last millisecond of year 9999.
pub const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// One upload: records of one device, in sequence order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Protocol version, 1.
    pub v: u32,
    /// The device's name; must be the device the bearer token belongs to.
    #[serde(deserialize_with = "decode::device_name")]
    pub device: String,
    #[serde(deserialize_with = "decode::records")]
    pub records: Vec<Record>,
    /// Seconds from this upload within which the agent's next upload is
    /// due at the latest (its upload interval plus a retry's back-off).
    /// Relative, so that the agent's clock does not matter: the collector
    /// adds it to the time it received the batch, taking at most
    /// [`MAX_NEXT_UPLOAD_WITHIN_S`]. Absent (older agents): the collector's
    /// configured interval applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_upload_within_s: Option<u32>,
    /// What is still waiting in the agent's spool after this batch, as the
    /// agent counted it when it sent the batch. Absent (older agents): the
    /// collector shows the backlog as unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backlog: Option<Backlog>,
}

/// The records an agent still has to send after a batch: how far behind
/// the collector's picture of the device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Backlog {
    /// Records waiting in the spool, not in this batch (a folded record
    /// counts once). At most [`MAX_COUNT`].
    pub records: u64,
    /// Measurement time of the oldest of them (Unix ms, UTC); absent when
    /// none is waiting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oldest_at: Option<i64>,
}

/// Longest announced wait for the next upload the collector believes (7
/// days): a larger `next_upload_within_s` is taken as this.
pub const MAX_NEXT_UPLOAD_WITHIN_S: u32 = 7 * 86_400;

impl Batch {
    /// When the next upload is due at the latest (Unix ms), for a batch
    /// received at `received_ms`; `None` when the agent announced nothing.
    pub fn next_upload_due_ms(&self, received_ms: i64) -> Option<i64> {
        let s = self.next_upload_within_s?.min(MAX_NEXT_UPLOAD_WITHIN_S);
        Some(received_ms.saturating_add(i64::from(s) * 1000))
    }
}

/// One thing the agent learned, with its place in the device's sequence.
///
/// Decoded only from JSON in memory ([`parse_batch`]): the body is taken as
/// borrowed raw JSON and measured before it is decoded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Per-device sequence number, from 1, never reused.
    pub seq: u64,
    /// When several records were folded into this one (disk budget), the last
    /// sequence number it stands for; the collector counts `seq..=seq_end` as received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq_end: Option<u64>,
    /// Wall-clock time of the measurement, Unix milliseconds (UTC).
    pub at: i64,
    /// Monotonic milliseconds since boot (CLOCK_BOOTTIME) at the measurement:
    /// orders records within a boot even when the wall clock steps.
    pub mono_ms: u64,
    /// The kernel's boot id (`/proc/sys/kernel/random/boot_id`).
    #[serde(deserialize_with = "decode::boot_id")]
    pub boot_id: String,
    #[serde(deserialize_with = "decode::body")]
    pub body: Body,
}

/// What a record says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Body {
    /// A link changed state.
    LinkState {
        link: String,
        kind: LinkKind,
        from: LinkState,
        to: LinkState,
        #[serde(default)]
        reason: Option<String>,
    },
    /// Probing summary of one link over `minutes` minutes ending at `at`.
    LinkMinutes {
        link: String,
        kind: LinkKind,
        minutes: u32,
        sent: u32,
        lost: u32,
        #[serde(default)]
        rtt_p50_ms: Option<f64>,
        #[serde(default)]
        rtt_p95_ms: Option<f64>,
        #[serde(default)]
        rtt_max_ms: Option<f64>,
        /// Probe bytes spent on the wire.
        bytes: u64,
    },
    /// The chosen link changed.
    Failover {
        #[serde(default)]
        from: Option<String>,
        #[serde(default)]
        to: Option<String>,
        cause: String,
        #[serde(default)]
        reason: String,
    },
    /// The agent started, stopped cleanly, or saw the wall clock step.
    Lifecycle {
        event: LifecycleEvent,
        /// Boot time of the machine, Unix seconds.
        #[serde(default)]
        boot_time: Option<i64>,
        #[serde(default)]
        detail: Option<String>,
    },
    /// The agent is running; `count` > 1 when folded (one per minute).
    Heartbeat {
        online: bool,
        #[serde(default = "one")]
        count: u32,
    },
    /// What the device is (sent at start and when it changes).
    Facts {
        hostname: String,
        os: String,
        agent_version: String,
        links: Vec<LinkFact>,
    },
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleEvent {
    Start,
    /// Clean stop (system shutdown or service stop): not an outage.
    Stop,
    /// The wall clock moved by more than a few seconds against the monotonic clock.
    ClockStep,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkFact {
    pub name: String,
    pub kind: LinkKind,
    pub metered: bool,
    pub priority: u32,
}

impl Body {
    /// The `type` word.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::LinkState { .. } => "link_state",
            Body::LinkMinutes { .. } => "link_minutes",
            Body::Failover { .. } => "failover",
            Body::Lifecycle { .. } => "lifecycle",
            Body::Heartbeat { .. } => "heartbeat",
            Body::Facts { .. } => "facts",
        }
    }
}

/// The collector's answer to an accepted batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// Every record of this device with `seq <= acked` is durably stored: the
    /// agent may delete them.
    pub acked: u64,
    /// Records of this batch that were new.
    pub stored: u32,
    /// Records of this batch already stored before (replays).
    pub duplicates: u32,
}

/// A batch that breaks the protocol: `path` names the field (`records[3].at`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

fn bad(path: impl Into<String>, message: impl Into<String>) -> Invalid {
    Invalid {
        path: path.into(),
        message: message.into(),
    }
}

fn name_ok(path: &str, s: &str) -> Result<(), Invalid> {
    if s.is_empty() || s.len() > MAX_NAME || s.chars().any(|c| c.is_control()) {
        return Err(bad(
            path,
            format!("must be 1 to {MAX_NAME} printable characters"),
        ));
    }
    Ok(())
}

/// Parse a batch from JSON; the error names the failing field's path.
pub fn parse_batch(json: &[u8]) -> Result<Batch, Invalid> {
    let de = &mut serde_json::Deserializer::from_slice(json);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        bad(
            if path.is_empty() || path == "." || path == "?" {
                "body".to_string()
            } else {
                path
            },
            e.into_inner().to_string(),
        )
    })
}

impl Batch {
    /// Check every rule the types cannot: version, sizes, ranges, order.
    /// Nothing depends on the collector's clock (see `at` below).
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.v != VERSION {
            return Err(bad(
                "v",
                format!(
                    "unsupported protocol version {} (this collector speaks {VERSION})",
                    self.v
                ),
            ));
        }
        name_ok("device", &self.device)?;
        if self.records.len() > MAX_RECORDS {
            return Err(bad(
                "records",
                format!(
                    "{} records, at most {MAX_RECORDS} per batch",
                    self.records.len()
                ),
            ));
        }
        if let Some(b) = &self.backlog {
            if b.records > MAX_COUNT {
                return Err(bad(
                    "backlog.records",
                    format!("must be at most {MAX_COUNT} (2^63 - 1)"),
                ));
            }
            if b.oldest_at.is_some_and(|t| !(0..=MAX_TIME_MS).contains(&t)) {
                return Err(bad(
                    "backlog.oldest_at",
                    "time out of range (Unix milliseconds, 1970 to 9999)",
                ));
            }
        }
        let mut prev: Option<u64> = None;
        for (i, r) in self.records.iter().enumerate() {
            let p = |f: &str| format!("records[{i}].{f}");
            if r.seq == 0 {
                return Err(bad(p("seq"), "must be 1 or more"));
            }
            if r.seq > MAX_SEQ {
                return Err(bad(
                    p("seq"),
                    format!("must be at most {MAX_SEQ} (2^63 - 2)"),
                ));
            }
            if let Some(end) = r.seq_end {
                if end < r.seq {
                    return Err(bad(p("seq_end"), "must not be below seq"));
                }
                if end > MAX_SEQ {
                    return Err(bad(
                        p("seq_end"),
                        format!("must be at most {MAX_SEQ} (2^63 - 2)"),
                    ));
                }
                // No overflow: end >= seq.
                if end - r.seq >= MAX_SEQ_SPAN {
                    return Err(bad(
                        p("seq_end"),
                        format!("one record stands for at most {MAX_SEQ_SPAN} sequence numbers"),
                    ));
                }
            }
            if r.mono_ms > MAX_COUNT {
                return Err(bad(
                    p("mono_ms"),
                    format!("must be at most {MAX_COUNT} (2^63 - 1)"),
                ));
            }
            if let Some(prev) = prev
                && r.seq <= prev
            {
                return Err(bad(
                    p("seq"),
                    "records must be in increasing sequence order",
                ));
            }
            prev = Some(r.seq_end.unwrap_or(r.seq));
            // Any reading of a real clock is accepted, however wrong: a batch
            // refused for it would be refused for ever (the agent keeps it
            // first in its spool), and the records after it with it.
            if !(0..=MAX_TIME_MS).contains(&r.at) {
                return Err(bad(
                    p("at"),
                    "measurement time out of range (Unix milliseconds, 1970 to 9999)",
                ));
            }
            if r.boot_id.len() > MAX_BOOT_ID
                || r.boot_id.is_empty()
                || r.boot_id.chars().any(|c| c.is_control())
            {
                return Err(bad(p("boot_id"), "must be 1 to 64 printable characters"));
            }
            match &r.body {
                Body::LinkState { link, reason, .. } => {
                    name_ok(&p("body.link"), link)?;
                    if let Some(r) = reason {
                        name_ok(&p("body.reason"), r)?;
                    }
                }
                Body::LinkMinutes {
                    link,
                    minutes,
                    sent,
                    lost,
                    rtt_p50_ms,
                    rtt_p95_ms,
                    rtt_max_ms,
                    bytes,
                    ..
                } => {
                    name_ok(&p("body.link"), link)?;
                    if *bytes > MAX_COUNT {
                        return Err(bad(
                            p("body.bytes"),
                            format!("must be at most {MAX_COUNT} (2^63 - 1)"),
                        ));
                    }
                    if *minutes == 0 || *minutes > 60 * 24 * 31 {
                        return Err(bad(p("body.minutes"), "must be 1 to 44640"));
                    }
                    if lost > sent {
                        return Err(bad(p("body.lost"), "cannot exceed sent"));
                    }
                    for (f, v) in [
                        ("body.rtt_p50_ms", rtt_p50_ms),
                        ("body.rtt_p95_ms", rtt_p95_ms),
                        ("body.rtt_max_ms", rtt_max_ms),
                    ] {
                        if let Some(v) = v
                            && !(v.is_finite() && *v >= 0.0 && *v < 600_000.0)
                        {
                            return Err(bad(p(f), "must be a duration in ms between 0 and 600000"));
                        }
                    }
                }
                Body::Failover {
                    from,
                    to,
                    cause,
                    reason,
                } => {
                    for (f, v) in [("body.from", from), ("body.to", to)] {
                        if let Some(v) = v {
                            name_ok(&p(f), v)?;
                        }
                    }
                    name_ok(&p("body.cause"), cause)?;
                    if reason.len() > 512 {
                        return Err(bad(p("body.reason"), "at most 512 characters"));
                    }
                }
                Body::Lifecycle { detail, .. } => {
                    if detail.as_ref().is_some_and(|d| d.len() > 512) {
                        return Err(bad(p("body.detail"), "at most 512 characters"));
                    }
                }
                Body::Heartbeat { count, .. } => {
                    if *count == 0 {
                        return Err(bad(p("body.count"), "must be 1 or more"));
                    }
                }
                Body::Facts {
                    hostname,
                    os,
                    agent_version,
                    links,
                } => {
                    name_ok(&p("body.hostname"), hostname)?;
                    name_ok(&p("body.os"), os)?;
                    name_ok(&p("body.agent_version"), agent_version)?;
                    if links.len() > 64 {
                        return Err(bad(p("body.links"), "at most 64 links"));
                    }
                    for (j, l) in links.iter().enumerate() {
                        name_ok(&p(&format!("body.links[{j}].name")), &l.name)?;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
