//! Placing one device's records in time and cutting them into sessions
//! (runs of the agent): de-duplication by `seq`, placed times within each
//! boot, how far back a record proves the agent ran, and each session's
//! link state changes and heartbeat flags (the rules are in the parent
//! module's docs, "Order and duplicates" to "Sessions").

use super::{DeviceState, Params, Rec, cause};
use crate::wire::LinkState;
use crate::wire::v1::{Body, LifecycleEvent, MIN_TIME_MS};
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------
// Placing records in time

/// A record with its place on the time axis.
#[derive(Debug, Clone, Copy)]
pub(super) struct Placed<'a> {
    pub(super) rec: &'a Rec,
    /// Placed time.
    pub(super) t: i64,
}

pub(super) fn is_event(r: &Rec, e: LifecycleEvent) -> bool {
    matches!(&r.body, Body::Lifecycle { event, .. } if *event == e)
}

/// De-duplicate, order and place the records (see the module documentation).
pub(super) fn place(recs: &[Rec]) -> Vec<Placed<'_>> {
    let mut v: Vec<&Rec> = recs.iter().collect();
    v.sort_by(|a, b| {
        (a.seq, &a.boot_id, a.mono_ms, a.at_ms, a.seq_end)
            .cmp(&(b.seq, &b.boot_id, b.mono_ms, b.at_ms, b.seq_end))
    });
    v.dedup_by_key(|r| r.seq);
    let mut boots: BTreeMap<&str, Vec<&Rec>> = BTreeMap::new();
    for r in v {
        boots.entry(r.boot_id.as_str()).or_default().push(r);
    }
    let mut placed_boots: Vec<Vec<Placed<'_>>> = boots
        .into_values()
        .map(|mut b| {
            b.sort_by_key(|r| (r.mono_ms, r.seq));
            place_boot(&b)
        })
        .collect();
    // Boots in the order the agent numbered their records (sequence numbers
    // run on across boots); a wrong clock cannot reorder them.
    let key = |b: &[Placed<'_>]| b.iter().map(|r| r.rec.seq).min().unwrap_or(0);
    placed_boots.sort_by_key(|b| key(b));
    let mut out: Vec<Placed<'_>> = placed_boots.into_iter().flatten().collect();
    for i in 1..out.len() {
        out[i].t = out[i].t.max(out[i - 1].t);
    }
    out
}

/// Place one boot's records (ordered by monotonic time).
pub(super) fn place_boot<'a>(b: &[&'a Rec]) -> Vec<Placed<'a>> {
    let step = b
        .iter()
        .position(|r| is_event(r, LifecycleEvent::ClockStep));
    let anchor = step.map(|k| {
        let j = b[..k]
            .iter()
            .rposition(|r| matches!(r.body, Body::Heartbeat { .. }))
            .unwrap_or(k.saturating_sub(1));
        // A pre-step clock that cannot be right: trust the corrected one.
        let at = b[j].at_ms;
        if at < MIN_TIME_MS {
            (k, true)
        } else {
            (j, false)
        }
    });
    // `t` of a record `r` from anchor `a`: `a`'s time plus the monotonic
    // time between them (either way).
    let by_mono = |a: &Rec, r: &Rec| {
        let dm = i128::from(r.mono_ms) - i128::from(a.mono_ms);
        let t = i128::from(a.at_ms) + dm;
        i64::try_from(t).unwrap_or(if dm < 0 { i64::MIN } else { i64::MAX })
    };
    let mut out: Vec<Placed<'a>> = Vec::with_capacity(b.len());
    for (i, r) in b.iter().enumerate() {
        let mut t = match anchor {
            Some((j, false)) if i > j => by_mono(b[j], r),
            Some((j, true)) if i < j => by_mono(b[j], r),
            _ => r.at_ms,
        };
        if let Some(prev) = out.last() {
            t = t.max(prev.t);
        }
        out.push(Placed { rec: r, t });
    }
    out
}

/// How far back before its placed time a record proves the agent ran.
pub(super) fn coverage(r: &Rec, p: &Params) -> i64 {
    match r.body {
        Body::Heartbeat { count, .. } => i64::from(count).saturating_mul(p.heartbeat_ms.max(0)),
        Body::LinkMinutes { minutes, .. } => i64::from(minutes) * 60_000,
        // Written by the heartbeat tick just before its heartbeat.
        Body::Lifecycle {
            event: LifecycleEvent::ClockStep,
            ..
        } => p.heartbeat_ms.max(0),
        _ => 0,
    }
}

// ---------------------------------------------------------------------------
// Sessions

/// One run of the agent.
#[derive(Debug)]
pub(super) struct Session {
    pub(super) complete: bool,
    pub(super) stopped: bool,
    /// Are sequence numbers missing between this session's last record and
    /// the next session's first?
    pub(super) missing_after: bool,
    /// Time of the last record (the stop, if any).
    pub(super) end: i64,
    /// Running stretches `[start, end]` (bridged evidence), sorted.
    pub(super) stretches: Vec<(i64, i64)>,
    /// What the device is between the stretches (one entry per gap).
    pub(super) gaps: Vec<(DeviceState, &'static str)>,
    /// Link state changes: link -> [(time, state, cause)]; a link is unknown
    /// before its first entry.
    pub(super) links: BTreeMap<String, Vec<(i64, LinkState, Option<String>)>>,
    /// Heartbeat step function (incomplete sessions only): (from, online).
    pub(super) hb: Vec<(i64, bool)>,
    /// All times at which the device state may change.
    pub(super) breaks: Vec<i64>,
}

/// The index of the last change at or before `t`.
pub(super) fn link_at(changes: &[(i64, LinkState, Option<String>)], t: i64) -> Option<usize> {
    changes.partition_point(|c| c.0 <= t).checked_sub(1)
}

impl Session {
    pub(super) fn hb_at(&self, t: i64) -> Option<bool> {
        let i = self.hb.partition_point(|h| h.0 <= t).checked_sub(1)?;
        Some(self.hb[i].1)
    }

    /// The device state at `t` while the agent runs.
    pub(super) fn device_at(&self, t: i64) -> (DeviceState, Option<&'static str>) {
        let mut known = false;
        for changes in self.links.values() {
            if let Some(i) = link_at(changes, t) {
                known = true;
                if changes[i].1.is_online() {
                    return (DeviceState::Online, None);
                }
            }
        }
        if self.complete {
            return (DeviceState::Offline, Some(cause::ALL_LINKS_DOWN));
        }
        match self.hb_at(t) {
            Some(true) => (DeviceState::Online, None),
            Some(false) => (DeviceState::Offline, Some(cause::ALL_LINKS_DOWN)),
            None if known => (DeviceState::Offline, Some(cause::ALL_KNOWN_LINKS_DOWN)),
            None => (DeviceState::NoData, Some(cause::LINKS_UNKNOWN)),
        }
    }
}

/// Are sequence numbers missing between placed records `i` and `i + 1`?
/// (`pre_max[i]` = highest `seq_end` up to `i`, `suf_min[i]` = lowest `seq`
/// from `i` on.)
pub(super) fn missing(pre_max: &[u64], suf_min: &[u64], i: usize) -> bool {
    i + 1 < suf_min.len() && suf_min[i + 1] > pre_max[i].saturating_add(1)
}

pub(super) fn sessions(placed: &[Placed<'_>], p: &Params) -> Vec<Session> {
    let n = placed.len();
    let mut pre_max = vec![0u64; n];
    let mut suf_min = vec![u64::MAX; n];
    for i in 0..n {
        let s = placed[i].rec.seq_end.max(placed[i].rec.seq);
        pre_max[i] = if i == 0 { s } else { pre_max[i - 1].max(s) };
    }
    for i in (0..n).rev() {
        let s = placed[i].rec.seq;
        suf_min[i] = if i + 1 == n { s } else { suf_min[i + 1].min(s) };
    }
    let mut out: Vec<Session> = Vec::new();
    let mut i = 0;
    let mut prev_end: Option<i64> = None;
    while i < n {
        let lo = i;
        let boot = &placed[lo].rec.boot_id;
        let started = is_event(placed[lo].rec, LifecycleEvent::Start);
        let mut stopped = is_event(placed[lo].rec, LifecycleEvent::Stop);
        i += 1;
        while i < n
            && !stopped
            && placed[i].rec.boot_id == *boot
            && !is_event(placed[i].rec, LifecycleEvent::Start)
        {
            stopped = is_event(placed[i].rec, LifecycleEvent::Stop);
            i += 1;
        }
        let hi = i;
        let recs = &placed[lo..hi];
        let begin = if started {
            recs[0].t
        } else {
            let earliest = recs
                .iter()
                .map(|r| r.t.saturating_sub(coverage(r.rec, p)))
                .min()
                .unwrap_or(recs[0].t);
            prev_end.map_or(earliest, |e| earliest.max(e))
        };
        let end = recs[recs.len() - 1].t;
        // Evidence, bridged.
        let mut ev: Vec<(i64, i64)> = recs
            .iter()
            .map(|r| (r.t.saturating_sub(coverage(r.rec, p)).max(begin), r.t))
            .collect();
        ev.sort_unstable();
        let mut stretches: Vec<(i64, i64)> = Vec::new();
        for (s, e) in ev {
            match stretches.last_mut() {
                Some(last) if s <= last.1.saturating_add(p.bridge()) => last.1 = last.1.max(e),
                _ => stretches.push((s, e)),
            }
        }
        let gaps = stretches
            .windows(2)
            .map(|w| {
                let k = lo + placed[lo..hi].partition_point(|r| r.t <= w[0].1) - 1;
                if missing(&pre_max, &suf_min, k) {
                    (DeviceState::NoData, cause::MISSING)
                } else {
                    (DeviceState::NotRunning, cause::ASLEEP)
                }
            })
            .collect();
        let complete = started && (lo..hi - 1).all(|k| !missing(&pre_max, &suf_min, k));
        let (links, hb) = link_states(recs, started, complete, begin, p);
        let mut breaks: Vec<i64> = links
            .values()
            .flat_map(|c| c.iter().map(|x| x.0))
            .chain(hb.iter().map(|h| h.0))
            .collect();
        breaks.sort_unstable();
        breaks.dedup();
        out.push(Session {
            complete,
            stopped,
            missing_after: missing(&pre_max, &suf_min, hi - 1),
            end,
            stretches,
            gaps,
            links,
            hb,
            breaks,
        });
        prev_end = Some(end);
    }
    out
}

pub(super) type LinkChanges = BTreeMap<String, Vec<(i64, LinkState, Option<String>)>>;

/// Link state changes and the heartbeat step function of one session.
pub(super) fn link_states(
    recs: &[Placed<'_>],
    started: bool,
    complete: bool,
    begin: i64,
    p: &Params,
) -> (LinkChanges, Vec<(i64, bool)>) {
    let mut links: LinkChanges = BTreeMap::new();
    let list = |links: &mut LinkChanges, name: &str, t: i64| {
        if started && !links.contains_key(name) {
            links.insert(name.to_string(), vec![(t, LinkState::Down, None)]);
        }
    };
    let mut hbs: Vec<(i64, i64, u64, bool)> = Vec::new();
    for r in recs {
        match &r.rec.body {
            Body::LinkState {
                link, to, reason, ..
            } => links
                .entry(link.clone())
                .or_default()
                .push((r.t, *to, reason.clone())),
            Body::Facts { links: facts, .. } => {
                for f in facts {
                    list(&mut links, &f.name, r.t);
                }
            }
            Body::LinkMinutes { link, .. } => list(&mut links, link, r.t),
            Body::Heartbeat { online, .. } if !complete => {
                let from = r.t.saturating_sub(coverage(r.rec, p)).max(begin);
                hbs.push((from, r.t, r.rec.seq, *online));
            }
            _ => {}
        }
    }
    // A heartbeat's flag holds from the start of its coverage; where
    // coverages overlap, the latest heartbeat (by time, then seq) wins.
    hbs.sort_unstable();
    let mut hb: Vec<(i64, bool)> = Vec::new();
    let mut best: Option<(i64, u64, bool)> = None;
    for (from, t, seq, online) in hbs {
        if best.is_none_or(|(bt, bs, _)| (t, seq) > (bt, bs)) {
            best = Some((t, seq, online));
        }
        let v = best.map_or(online, |b| b.2);
        match hb.last_mut() {
            Some(last) if last.0 == from => last.1 = v,
            _ => hb.push((from, v)),
        }
    }
    (links, hb)
}
