//! A device's timeline over a window: its states (contiguous, covering the
//! window) and each link's, read from the stored day timelines for settled
//! whole days and computed from the records for the rest
//! ([`device_timeline_of`]), and the shape the timeline endpoint answers
//! with ([`timeline_body`], both Unix ms and RFC 3339).

use crate::collector::report::{self, ReportError, ts};
use crate::collector::rollup;
use crate::collector::store::{Device, Store};
use crate::collector::uptime::{self, DeviceState, Interval, Params};
use crate::wire::{LinkKind, LinkState};
use serde::Serialize;

/// One interval of a timeline, with both Unix ms and RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span<S> {
    pub state: S,
    pub cause: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub start: String,
    pub end: String,
    pub duration_ms: i64,
}

fn span<S: Copy>(iv: &Interval<S>) -> Span<S> {
    Span {
        state: iv.state,
        cause: iv.cause.clone(),
        start_ms: iv.start,
        end_ms: iv.end,
        start: ts(iv.start),
        end: ts(iv.end),
        duration_ms: iv.duration_ms(),
    }
}

/// One link's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkTimeline {
    pub name: String,
    pub kind: LinkKind,
    pub intervals: Vec<Span<LinkState>>,
}

/// `GET /api/v1/devices/{name}/timeline` answers this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineBody {
    pub device: String,
    pub office: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub from: String,
    pub to: String,
    /// The device's states: contiguous, covering exactly the window.
    pub intervals: Vec<Span<DeviceState>>,
    /// Each link's states while the agent ran and the link's state was known
    /// (there may be gaps), by link name.
    pub links: Vec<LinkTimeline>,
}

/// The timeline of a device as the endpoint shows it (pure).
pub fn timeline_body(
    device: &Device,
    tl: &uptime::Timeline,
    from_ms: i64,
    to_ms: i64,
) -> TimelineBody {
    TimelineBody {
        device: device.name.clone(),
        office: device.office.clone(),
        from_ms,
        to_ms,
        from: ts(from_ms),
        to: ts(to_ms),
        intervals: tl.device.iter().map(span).collect(),
        links: tl
            .links
            .iter()
            .map(|(name, (kind, v))| LinkTimeline {
                name: name.clone(),
                kind: *kind,
                intervals: v.iter().map(span).collect(),
            })
            .collect(),
    }
}

/// A device's timeline over `[from_ms, to_ms)`: the settled whole days from
/// the stored day timelines when all of them are there and current, the rest
/// computed from the records.
pub async fn device_timeline_of(
    store: &dyn Store,
    d: &Device,
    from_ms: i64,
    to_ms: i64,
    now: i64,
) -> Result<uptime::Timeline, ReportError> {
    let raw = |a: i64, b: i64| async move {
        let recs = report::records_around(store, d, a, b).await?;
        Ok::<_, ReportError>(uptime::timeline(&recs, a, b, now, &Params::default()))
    };
    let tz = rollup::day_tz();
    let (r0, r1) = rollup::whole_days(&tz, from_ms, to_ms);
    let mark = store
        .dirty_mark(d.id)
        .await?
        .map(|m| rollup::day_start(&tz, m.from_ms));
    let r1 = r1
        .min(rollup::day_start(&tz, now))
        .min(mark.unwrap_or(r0))
        .max(r0);
    let days = rollup::days_between(&tz, r0, r1);
    if days.is_empty() {
        return raw(from_ms, to_ms).await;
    }
    let stored = store.rollup_timelines(d.id, r0, r1).await?;
    let parsed: Option<Vec<uptime::Timeline>> = (stored.len() == days.len())
        .then(|| {
            stored
                .iter()
                .map(|(_, body)| serde_json::from_str(body).ok())
                .collect()
        })
        .flatten();
    let Some(parsed) = parsed else {
        return raw(from_ms, to_ms).await;
    };
    let mut parts = Vec::with_capacity(parsed.len() + 2);
    if from_ms < r0 {
        parts.push(raw(from_ms, r0).await?);
    }
    parts.extend(parsed);
    if r1 < to_ms {
        parts.push(raw(r1, to_ms).await?);
    }
    Ok(rollup::concat_timelines(parts))
}
