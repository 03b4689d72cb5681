//! What really happened while a device was silent, from its late data: the
//! uptime engine's timeline over the silence, reduced to the spans the
//! officer was not online ("all links down from 10:02 to 10:47 (eth0,
//! wwan0)", "powered off", "agent stopped"). Pure: records in, spans out.

use crate::collector::uptime::{self, DeviceState, Params, Rec, cause};
use crate::wire::LinkState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Spans shorter than this are left out when longer ones exist (the seconds
/// links need to come up after a boot, say).
pub const MIN_SPAN_MS: i64 = 60_000;

/// One thing that happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Happened {
    /// The agent ran, no link reached the internet.
    AllLinksDown,
    /// The device was off (or the agent not running), without a clean stop.
    PoweredOff,
    /// The agent was stopped cleanly (or the machine shut down).
    AgentStopped,
    /// The device slept or the agent stalled.
    Asleep,
    /// The records do not tell (missing, or not arrived yet).
    NoData,
}

impl Happened {
    pub fn as_str(self) -> &'static str {
        match self {
            Happened::AllLinksDown => "all_links_down",
            Happened::PoweredOff => "powered_off",
            Happened::AgentStopped => "agent_stopped",
            Happened::Asleep => "asleep",
            Happened::NoData => "no_data",
        }
    }
}

/// `[start_ms, end_ms)` of one thing, with the links that were down.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    pub start_ms: i64,
    pub end_ms: i64,
    pub what: Happened,
    /// For `AllLinksDown`: the links known down or absent during it.
    pub links: Vec<String>,
}

/// What the late data says about a silence; empty when the device was
/// online all along (its uploads, not its links, failed).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Annotation {
    pub spans: Vec<Span>,
}

impl Annotation {
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// Which device's records to read for an annotation: the silence of an
/// alert, from the last upload heard to now. Hand the records from the
/// last `start` before `from_ms` on (as reports do), so the engine knows
/// the state the silence began in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnotationRequest {
    pub device: String,
    pub from_ms: i64,
    pub to_ms: i64,
}

/// Annotate `[from_ms, to_ms)` from the device's records (`now_ms` as the
/// uptime engine takes it).
pub fn annotate(recs: &[Rec], from_ms: i64, to_ms: i64, now_ms: i64, p: &Params) -> Annotation {
    let tl = uptime::timeline(recs, from_ms, to_ms, now_ms, p);
    let mut spans: Vec<Span> = Vec::new();
    for iv in &tl.device {
        let why = iv.cause.as_deref().unwrap_or_default();
        let what = match iv.state {
            DeviceState::Online => continue,
            DeviceState::Offline => Happened::AllLinksDown,
            DeviceState::NotRunning if why == cause::STOPPED => Happened::AgentStopped,
            DeviceState::NotRunning if why == cause::ASLEEP => Happened::Asleep,
            DeviceState::NotRunning => Happened::PoweredOff,
            // After the last record: nothing known yet, not a finding.
            DeviceState::NoData if why == cause::NOT_YET || why == cause::FUTURE => continue,
            DeviceState::NoData => Happened::NoData,
        };
        match spans.last_mut() {
            Some(last) if last.what == what && last.end_ms == iv.start => last.end_ms = iv.end,
            _ => spans.push(Span {
                start_ms: iv.start,
                end_ms: iv.end,
                what,
                links: Vec::new(),
            }),
        }
    }
    if spans.iter().any(|s| s.end_ms - s.start_ms >= MIN_SPAN_MS) {
        spans.retain(|s| s.end_ms - s.start_ms >= MIN_SPAN_MS);
    }
    for s in spans
        .iter_mut()
        .filter(|s| s.what == Happened::AllLinksDown)
    {
        let down: BTreeSet<&String> = tl
            .links
            .iter()
            .filter(|(_, (_, ivs))| {
                ivs.iter().any(|l| {
                    matches!(l.state, LinkState::Down | LinkState::Absent)
                        && l.start < s.end_ms
                        && s.start_ms < l.end
                })
            })
            .map(|(name, _)| name)
            .collect();
        s.links = down.into_iter().cloned().collect();
    }
    Annotation { spans }
}
