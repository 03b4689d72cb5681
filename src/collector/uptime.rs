//! The uptime engine, as pure code: one device's records in (any arrival
//! order, duplicates allowed), a timeline of device and link states out, and
//! from it the figures of a report (uptime, outages, per-link-kind time, loss
//! and latency). It never reads a clock: the caller says what "now" is, so the
//! engine can tell time that has no data *yet* from time that is over.
//!
//! # The four device states (see PRODUCT.md)
//! - `online`: the agent runs and at least one link is `up` or `degraded`;
//! - `offline`: the agent runs and no link is (cause `all links down`);
//! - `not_running`: the agent was stopped (cause `stopped`), or the device was
//!   off or the agent not running (cause `device off or agent not running`),
//!   or the device slept / the agent stalled (cause `device asleep or agent
//!   stalled`);
//! - `no_data`: nothing tells (causes `no records`, `no data yet`,
//!   `records missing`, `link states unknown`, `in the future`).
//!
//! # Rules
//! **Order and duplicates.** Records are de-duplicated by `seq` (when two
//! records claim the same `seq`, the one with the smallest
//! `(boot_id, mono_ms, at_ms, seq_end)` is kept; the protocol makes them
//! identical anyway). Boots are ordered by their first appearance in the
//! agent's own numbering (their lowest `seq`: the per-device sequence runs on
//! across boots, and unlike the wall clock it cannot be wrong); within a boot
//! records are ordered by `(mono_ms, seq)`, so a stepped wall clock cannot
//! reorder them.
//!
//! **Placing records in time.** A record is placed at its `at_ms`, except in a
//! boot that declared a `lifecycle clock_step`: from the last heartbeat before
//! the first step (the reading the agent's clock watch compared against; the
//! record before the step if there is no heartbeat, the step itself if it is
//! the boot's first record) every later record of that boot is placed at that
//! anchor's time plus the monotonic time elapsed since it. CLOCK_BOOTTIME
//! counts suspend and is slewed by NTP like the wall clock, so this is as good
//! as the wall clock was before the step; the pre-step clock is trusted,
//! unless its anchor reads before 2024 (a dead clock battery, corrected by
//! NTP after boot): then the whole boot is placed
//! by the step record's own (corrected) reading instead, each record at the
//! step's time minus the monotonic time between them. Placed times never go backwards:
//! each is at least the previous one (records of a boot that overlaps the
//! previous boot in time are pushed to the previous boot's last time).
//! Undeclared steps (a step just before a crash or stop) are not detected.
//!
//! **Evidence of running.** Every record proves the agent ran at its placed
//! time; a heartbeat also covers the `count × heartbeat_ms` before it, a
//! `link_minutes` record the `minutes` before it, and a `clock_step` (written
//! by the heartbeat tick just before its heartbeat) one `heartbeat_ms` (all
//! clamped to the start of their session). Evidence closer than `heartbeat_ms + grace_ms` is bridged.
//!
//! **Sessions.** A session is one run of the agent: it begins at a `lifecycle
//! start`, at a change of boot id, or at the first record after a `stop`, and
//! lasts until the next such point. A session that begins with a start is
//! *complete* when it has no hole in the sequence numbers; one that begins
//! without a start (the data begins mid-run, or the start record is missing)
//! is not.
//! - Between a clean `stop` and the next session: `not_running`, `stopped`.
//! - A session that ends without a stop ends at its last record (the last
//!   evidence, even if the crash came up to a heartbeat later); up to the next
//!   session: `not_running`, `device off or agent not running`, however short.
//! - Silence longer than `heartbeat_ms + grace_ms` inside one session (same
//!   boot, no start: the process lived on): `not_running`, `device asleep or
//!   agent stalled` (a suspended laptop; CLOCK_BOOTTIME counts the sleep).
//! - Any such gap across which sequence numbers are missing (no record we have
//!   covers them) is `no_data`, `records missing`: those records may still come.
//! - After the device's last record, with no stop: the agent is presumed still
//!   running, in its last known state, until `last + heartbeat_ms + grace_ms`
//!   (but not after `now`); then `no_data`, `no data yet`, until `now`. After a
//!   clean stop: `not_running`, `stopped`, until `now`. Time after `now` (or
//!   after the last record, if that is later) is `no_data`, `in the future`.
//!   Records are never discarded because they are later than `now`.
//! - Before the first record: `no_data`, `no records`. Callers should hand in
//!   records from before the window (at least back to the last start before
//!   it) so the engine knows the state at the window's beginning.
//!
//! **Online or offline, while running.** Link states come from `link_state`
//! records (their `to` and `reason`). In a session that began with a start,
//! every link starts `down` (the agent's health machine does, and records only
//! changes), so in a complete session the device is online exactly when some
//! link's last recorded state in the session is `up` or `degraded`, offline
//! otherwise; heartbeats are not needed. In a session without a start a
//! link's state is unknown until its first `link_state`. In incomplete
//! sessions (no start, or records missing) the heartbeats fill in: a
//! heartbeat's `online` flag holds for the minutes it covers (and after, until
//! the next heartbeat's coverage); the device is online when a known link is
//! up or the heartbeat says online, offline when the heartbeat says offline or,
//! before any heartbeat, when some link is known and none is up (`all known
//! links down`), and `no_data` (`link states unknown`) when nothing is known.
//!
//! **Link timelines.** A link's intervals cover only time the agent runs *and*
//! the link's state is known: in a complete session from the first record
//! naming the link (`facts`, `link_state`, `link_minutes`; `down` without a
//! cause until its first transition), in an incomplete one from its first
//! `link_state`. They are sorted and non-overlapping but may have gaps. The
//! kind shown is the last one recorded for the link.
//!
//! All intervals are clamped to the window `[from, to)`; device intervals are
//! contiguous, sorted, non-overlapping, non-empty, cover exactly the window,
//! and adjacent intervals with the same state and cause are merged.
//!
//! **Late records.** The agent uploads in sequence order, so what arrives late
//! is the records after the last one received. Such a backlog changes nothing
//! before the time it covers (a record's placed time minus its coverage; for
//! a clock step, from its anchor), given `now` no earlier than the last record
//! received (the property tests check exactly this). One reach further back
//! is inherent: a late record whose coverage starts within `heartbeat_ms +
//! grace_ms` of earlier evidence turns what looked like a silence just before
//! it into running time.
//!
//! # Figures
//! Only time inside the mask (the schedule's open intervals) counts.
//! - `uptime = online / (online + offline)`, `None` when that is 0: "no data"
//!   is said, never 100 % or 0 %. Not-running and no-data time are reported
//!   beside it.
//! - `per_kind_ms`: online time carried by each link kind. At each moment the
//!   carrier is the link chosen by the agent's last `failover` record of the
//!   session if that link is online, otherwise the best online link: `up`
//!   before `degraded`, then broadband before Wi-Fi before mobile, then by
//!   name. Online time no known link carries (heartbeat-only) is not
//!   attributed, so the kinds may sum to less than `online_ms`.
//! - Outages: maximal runs of `offline` and unclean `not_running` (device off,
//!   asleep or agent stalled) within one piece of the mask; a clean stop is
//!   not an outage, and `no_data` ends one. A run mixing both is one outage
//!   (e.g. a power cut followed by the seconds links need to come up after
//!   boot) whose cause is the one covering more of it (`device_off` on a tie).
//!   An outage cut by the window or the mask counts with its part inside.
//!   `mttr_ms` is the mean outage length, `longest_outage_ms` the longest.
//! - `failovers`: `failover` records inside the mask that switch from one
//!   link to another (the initial choice and "no link left" are not counted).
//! - `loss_pct` and `rtt_p50_ms` from `link_minutes` records of all links,
//!   each weighted by the share of its minutes inside the mask: loss is
//!   `lost / sent` over those (sent-weighted); `rtt_p50_ms` is the median of
//!   the per-record medians weighted by answered probes (an approximation: the
//!   true median cannot be rebuilt from summaries).

use crate::wire::v1::{Body, Record};
use crate::wire::{LinkKind, LinkState};
use serde::{Deserialize, Serialize};
use sessions::{Placed, link_at, place, sessions};
use std::collections::BTreeMap;

/// Causes the engine writes into intervals.
pub mod cause {
    pub const ALL_LINKS_DOWN: &str = "all links down";
    pub const ALL_KNOWN_LINKS_DOWN: &str = "all known links down";
    pub const STOPPED: &str = "stopped";
    pub const DEVICE_OFF: &str = "device off or agent not running";
    pub const ASLEEP: &str = "device asleep or agent stalled";
    pub const NO_RECORDS: &str = "no records";
    pub const NOT_YET: &str = "no data yet";
    pub const MISSING: &str = "records missing";
    pub const LINKS_UNKNOWN: &str = "link states unknown";
    pub const FUTURE: &str = "in the future";
}

/// One record of the device, as the store hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct Rec {
    pub seq: u64,
    /// Last sequence number this record stands for (`seq` when not folded).
    pub seq_end: u64,
    pub at_ms: i64,
    pub mono_ms: u64,
    pub boot_id: String,
    pub body: Body,
}

impl From<Record> for Rec {
    fn from(r: Record) -> Self {
        Rec {
            seq: r.seq,
            seq_end: r.seq_end.unwrap_or(r.seq).max(r.seq),
            at_ms: r.at,
            mono_ms: r.mono_ms,
            boot_id: r.boot_id,
            body: r.body,
        }
    }
}

/// What the device was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    Online,
    Offline,
    NotRunning,
    NoData,
}

/// `[start, end)` in Unix ms, in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval<S> {
    pub start: i64,
    pub end: i64,
    pub state: S,
    pub cause: Option<String>,
}

impl<S> Interval<S> {
    pub fn duration_ms(&self) -> i64 {
        self.end - self.start
    }
}

/// The device's states over the window, and each link's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Timeline {
    pub device: Vec<Interval<DeviceState>>,
    pub links: BTreeMap<String, (LinkKind, Vec<Interval<LinkState>>)>,
}

/// How the agent behaves: heartbeat interval and the silence tolerated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    /// The agent's heartbeat interval (one a minute).
    pub heartbeat_ms: i64,
    /// Silence longer than `heartbeat_ms + grace_ms` while running means the
    /// agent is not running (or its data has not arrived yet).
    pub grace_ms: i64,
}

impl Default for Params {
    /// One heartbeat a minute; two missed heartbeats tolerated.
    fn default() -> Self {
        Params {
            heartbeat_ms: 60_000,
            grace_ms: 120_000,
        }
    }
}

impl Params {
    fn bridge(&self) -> i64 {
        self.heartbeat_ms
            .max(0)
            .saturating_add(self.grace_ms.max(0))
    }
}

// ---------------------------------------------------------------------------
// The timeline

/// A piece of the device's history before clipping.
enum Seg {
    /// The agent runs (session index).
    Running(usize),
    Fixed(DeviceState, &'static str),
}

/// The device's and its links' states over `[from, to)` (see the module
/// documentation for the rules).
pub fn timeline(recs: &[Rec], from: i64, to: i64, now: i64, p: &Params) -> Timeline {
    let mut tl = Timeline::default();
    if from >= to {
        return tl;
    }
    let placed = place(recs);
    let sessions = sessions(&placed, p);
    let mut segs: Vec<(i64, i64, Seg)> = Vec::new();
    match sessions.first() {
        None => {
            segs.push((
                i64::MIN,
                now,
                Seg::Fixed(DeviceState::NoData, cause::NO_RECORDS),
            ));
            segs.push((
                now,
                i64::MAX,
                Seg::Fixed(DeviceState::NoData, cause::FUTURE),
            ));
        }
        Some(first) => segs.push((
            i64::MIN,
            first.stretches[0].0,
            Seg::Fixed(DeviceState::NoData, cause::NO_RECORDS),
        )),
    }
    for (k, s) in sessions.iter().enumerate() {
        for (j, st) in s.stretches.iter().enumerate() {
            if j > 0 {
                let (state, why) = s.gaps[j - 1];
                segs.push((s.stretches[j - 1].1, st.0, Seg::Fixed(state, why)));
            }
            segs.push((st.0, st.1, Seg::Running(k)));
        }
        if let Some(next) = sessions.get(k + 1) {
            let (state, why) = if s.missing_after {
                (DeviceState::NoData, cause::MISSING)
            } else if s.stopped {
                (DeviceState::NotRunning, cause::STOPPED)
            } else {
                (DeviceState::NotRunning, cause::DEVICE_OFF)
            };
            segs.push((s.end, next.stretches[0].0, Seg::Fixed(state, why)));
            continue;
        }
        // The device's last session.
        let horizon = now.max(s.end);
        if s.stopped {
            segs.push((
                s.end,
                horizon,
                Seg::Fixed(DeviceState::NotRunning, cause::STOPPED),
            ));
        } else {
            let presumed = s.end.saturating_add(p.bridge()).min(horizon);
            segs.push((s.end, presumed, Seg::Running(k)));
            segs.push((
                presumed,
                horizon,
                Seg::Fixed(DeviceState::NoData, cause::NOT_YET),
            ));
        }
        segs.push((
            horizon,
            i64::MAX,
            Seg::Fixed(DeviceState::NoData, cause::FUTURE),
        ));
    }

    let mut device: Vec<Interval<DeviceState>> = Vec::new();
    let mut links: BTreeMap<String, (LinkKind, Vec<Interval<LinkState>>)> = BTreeMap::new();
    let kinds = link_kinds(&placed);
    for (a, b, seg) in segs {
        let (a, b) = (a.max(from), b.min(to));
        if a >= b {
            continue;
        }
        match seg {
            Seg::Fixed(state, why) => push(&mut device, a, b, state, Some(why)),
            Seg::Running(k) => {
                let s = &sessions[k];
                let lo = s.breaks.partition_point(|x| *x <= a);
                let hi = s.breaks.partition_point(|x| *x < b);
                let mut x = a;
                for &y in s.breaks[lo..hi].iter().chain(std::iter::once(&b)) {
                    if y > x {
                        let (state, why) = s.device_at(x);
                        push(&mut device, x, y, state, why);
                        x = y;
                    }
                }
                for (name, changes) in &s.links {
                    let kind = kinds.get(name).copied().unwrap_or(LinkKind::Broadband);
                    let entry = links.entry(name.clone()).or_insert((kind, Vec::new()));
                    let mut x = a;
                    let lo = changes.partition_point(|c| c.0 <= a);
                    let hi = changes.partition_point(|c| c.0 < b);
                    for y in changes[lo..hi]
                        .iter()
                        .map(|c| c.0)
                        .chain(std::iter::once(b))
                    {
                        if y > x {
                            if let Some(i) = link_at(changes, x) {
                                let c = &changes[i];
                                push(&mut entry.1, x, y, c.1, c.2.as_deref());
                            }
                            x = y;
                        }
                    }
                }
            }
        }
    }
    links.retain(|_, (_, v)| !v.is_empty());
    // Fill anything left uncovered (nothing should be) so the intervals
    // always cover exactly the window.
    let mut full: Vec<Interval<DeviceState>> = Vec::with_capacity(device.len());
    let mut x = from;
    for iv in device {
        if iv.start > x {
            push(
                &mut full,
                x,
                iv.start,
                DeviceState::NoData,
                Some(cause::NO_RECORDS),
            );
        }
        let start = iv.start.max(x);
        if iv.end > start {
            push(&mut full, start, iv.end, iv.state, iv.cause.as_deref());
            x = iv.end;
        }
    }
    if x < to {
        push(
            &mut full,
            x,
            to,
            DeviceState::NoData,
            Some(cause::NO_RECORDS),
        );
    }
    tl.device = full;
    tl.links = links;
    tl
}

/// The last kind recorded for each link.
fn link_kinds(placed: &[Placed<'_>]) -> BTreeMap<String, LinkKind> {
    let mut kinds = BTreeMap::new();
    for r in placed {
        match &r.rec.body {
            Body::LinkState { link, kind, .. } | Body::LinkMinutes { link, kind, .. } => {
                kinds.insert(link.clone(), *kind);
            }
            Body::Facts { links, .. } => {
                for l in links {
                    kinds.insert(l.name.clone(), l.kind);
                }
            }
            _ => {}
        }
    }
    kinds
}

/// Append `[a, b)` in `state`, merging with the previous interval when it
/// touches it with the same state and cause.
fn push<S: PartialEq>(v: &mut Vec<Interval<S>>, a: i64, b: i64, state: S, why: Option<&str>) {
    if a >= b {
        return;
    }
    if let Some(last) = v.last_mut()
        && last.end == a
        && last.state == state
        && last.cause.as_deref() == why
    {
        last.end = b;
        return;
    }
    v.push(Interval {
        start: a,
        end: b,
        state,
        cause: why.map(str::to_string),
    });
}

mod figures;
mod sessions;
pub use figures::{Figures, Outage, OutageCause, compliant, figures};

#[cfg(test)]
mod tests;
