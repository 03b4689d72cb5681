//! The figures of a report from a device's timeline and records, inside a
//! schedule's mask: time per state, uptime, outages, time per link kind,
//! failovers, loss and RTT (the rules are in the parent module's docs,
//! "Figures").

use super::sessions::{Placed, place};
use super::{DeviceState, Interval, Rec, Timeline, cause};
use crate::wire::v1::{Body, LifecycleEvent};
use crate::wire::{LinkKind, LinkState};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Why an outage happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageCause {
    /// The agent ran but no link reached the internet.
    AllLinksDown,
    /// The device was off or asleep, or the agent not running, without a clean stop.
    DeviceOff,
}

/// A stretch of time the officer could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outage {
    pub start: i64,
    pub end: i64,
    pub cause: OutageCause,
}

/// A report's numbers for one device over a window and schedule.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Figures {
    pub online_ms: i64,
    pub offline_ms: i64,
    pub not_running_ms: i64,
    pub no_data_ms: i64,
    /// `online / (online + offline)`, a fraction; `None` when both are 0.
    pub uptime: Option<f64>,
    /// Online time carried by each link kind (see the module documentation).
    pub per_kind_ms: BTreeMap<LinkKind, i64>,
    pub outages: Vec<Outage>,
    pub outage_count: u32,
    /// Mean outage length.
    pub mttr_ms: Option<i64>,
    pub longest_outage_ms: Option<i64>,
    pub failovers: u32,
    pub rtt_p50_ms: Option<f64>,
    pub loss_pct: Option<f64>,
    /// Probes sent and lost behind `loss_pct` (weighted by the share of each
    /// summary inside the mask, hence fractional), so that groups of devices
    /// can be weighted by probes.
    pub probes_sent: f64,
    pub probes_lost: f64,
    /// Sum of the outages' lengths (what `mttr_ms` is the mean of).
    #[serde(skip)]
    pub outage_ms: i64,
    /// The per-summary RTT medians behind `rtt_p50_ms` and their weights
    /// (answered probes inside the mask), for roll-ups.
    #[serde(skip)]
    pub rtt_weights: Vec<(f64, f64)>,
}

/// Sorted, merged, non-empty mask intervals.
fn normalize(mask: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut m: Vec<(i64, i64)> = mask.iter().copied().filter(|(a, b)| a < b).collect();
    m.sort_unstable();
    let mut out: Vec<(i64, i64)> = Vec::with_capacity(m.len());
    for (a, b) in m {
        match out.last_mut() {
            Some(last) if a <= last.1 => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The parts of `[a, b)` inside the mask.
fn clip(mask: &[(i64, i64)], a: i64, b: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
    let first = mask.partition_point(|m| m.1 <= a);
    mask[first..]
        .iter()
        .take_while(move |m| m.0 < b)
        .map(move |m| (m.0.max(a), m.1.min(b)))
        .filter(|(x, y)| x < y)
}

fn inside(mask: &[(i64, i64)], t: i64) -> bool {
    let i = mask.partition_point(|m| m.1 <= t);
    mask.get(i).is_some_and(|m| m.0 <= t)
}

/// The figures of a report: `tl` from [`timeline`] over the window, `recs`
/// the same records, `mask` the schedule's open intervals within the window.
/// Only time inside the mask counts.
pub fn figures(tl: &Timeline, recs: &[Rec], mask: &[(i64, i64)]) -> Figures {
    let mask = normalize(mask);
    let mut f = Figures::default();
    // Outage under construction: start, end, device-off ms, links-down ms.
    let mut cur: Option<(i64, i64, i64, i64)> = None;
    let mut outages: Vec<Outage> = Vec::new();
    let close = |cur: &mut Option<(i64, i64, i64, i64)>, outages: &mut Vec<Outage>| {
        if let Some((s, e, off, down)) = cur.take() {
            outages.push(Outage {
                start: s,
                end: e,
                cause: if off >= down {
                    OutageCause::DeviceOff
                } else {
                    OutageCause::AllLinksDown
                },
            });
        }
    };
    for iv in &tl.device {
        for (a, b) in clip(&mask, iv.start, iv.end) {
            let d = b - a;
            match iv.state {
                DeviceState::Online => f.online_ms += d,
                DeviceState::Offline => f.offline_ms += d,
                DeviceState::NotRunning => f.not_running_ms += d,
                DeviceState::NoData => f.no_data_ms += d,
            }
            let kind = match iv.state {
                DeviceState::Offline => Some(OutageCause::AllLinksDown),
                DeviceState::NotRunning if iv.cause.as_deref() != Some(cause::STOPPED) => {
                    Some(OutageCause::DeviceOff)
                }
                _ => None,
            };
            match kind {
                Some(k) => {
                    if !matches!(cur, Some(o) if o.1 == a) {
                        close(&mut cur, &mut outages);
                        cur = Some((a, a, 0, 0));
                    }
                    if let Some(o) = cur.as_mut() {
                        o.1 = b;
                        match k {
                            OutageCause::DeviceOff => o.2 += d,
                            OutageCause::AllLinksDown => o.3 += d,
                        }
                    }
                }
                None => close(&mut cur, &mut outages),
            }
        }
    }
    close(&mut cur, &mut outages);
    let total = f.online_ms + f.offline_ms;
    f.uptime = (total > 0).then(|| f.online_ms as f64 / total as f64);
    f.outage_count = outages.len() as u32;
    f.outage_ms = outages.iter().map(|o| o.end - o.start).sum();
    f.mttr_ms = (!outages.is_empty())
        .then(|| outages.iter().map(|o| o.end - o.start).sum::<i64>() / outages.len() as i64);
    f.longest_outage_ms = outages.iter().map(|o| o.end - o.start).max();
    f.outages = outages;

    let placed = place(recs);
    f.per_kind_ms = per_kind(tl, &placed, &mask);
    f.failovers = placed
        .iter()
        .filter(|r| inside(&mask, r.t))
        .filter(
            |r| matches!(&r.rec.body, Body::Failover { from: Some(a), to: Some(b), .. } if a != b),
        )
        .count() as u32;
    let q = quality(&placed, &mask);
    f.loss_pct = q.loss_pct;
    f.rtt_p50_ms = q.rtt_p50_ms;
    f.probes_sent = q.sent;
    f.probes_lost = q.lost;
    f.rtt_weights = q.rtts;
    f
}

/// Online time per link kind (see the module documentation).
fn per_kind(tl: &Timeline, placed: &[Placed<'_>], mask: &[(i64, i64)]) -> BTreeMap<LinkKind, i64> {
    // The chosen link as a step function: reset at every start.
    let mut chosen: Vec<(i64, Option<&str>)> = Vec::new();
    for r in placed {
        match &r.rec.body {
            Body::Lifecycle {
                event: LifecycleEvent::Start,
                ..
            } => chosen.push((r.t, None)),
            Body::Failover { to, .. } => chosen.push((r.t, to.as_deref())),
            _ => {}
        }
    }
    let chosen_at = |t: i64| {
        let i = chosen.partition_point(|c| c.0 <= t).checked_sub(1)?;
        chosen[i].1
    };
    let state_at = |v: &[Interval<LinkState>], t: i64| {
        let i = v.partition_point(|iv| iv.start <= t).checked_sub(1)?;
        (v[i].end > t).then_some(v[i].state)
    };
    let mut breaks: Vec<i64> = tl
        .links
        .values()
        .flat_map(|(_, v)| v.iter().flat_map(|x| [x.start, x.end]))
        .chain(chosen.iter().map(|c| c.0))
        .collect();
    breaks.sort_unstable();
    breaks.dedup();
    let mut out: BTreeMap<LinkKind, i64> = BTreeMap::new();
    for iv in tl
        .device
        .iter()
        .filter(|iv| iv.state == DeviceState::Online)
    {
        for (a, b) in clip(mask, iv.start, iv.end) {
            let lo = breaks.partition_point(|x| *x <= a);
            let hi = breaks.partition_point(|x| *x < b);
            let mut x = a;
            for &y in breaks[lo..hi].iter().chain(std::iter::once(&b)) {
                let online: Vec<(&str, LinkKind, LinkState)> = tl
                    .links
                    .iter()
                    .filter_map(|(name, (kind, v))| {
                        state_at(v, x)
                            .filter(|s| s.is_online())
                            .map(|s| (name.as_str(), *kind, s))
                    })
                    .collect();
                let carrier = chosen_at(x)
                    .and_then(|c| online.iter().find(|o| o.0 == c))
                    .or_else(|| {
                        online
                            .iter()
                            .min_by_key(|o| (o.2 != LinkState::Up, o.1, o.0))
                    });
                if let Some(c) = carrier {
                    *out.entry(c.1).or_default() += y - x;
                }
                x = y;
            }
        }
    }
    out
}

/// Probe quality over the mask.
struct Quality {
    loss_pct: Option<f64>,
    rtt_p50_ms: Option<f64>,
    sent: f64,
    lost: f64,
    rtts: Vec<(f64, f64)>,
}

/// Loss (percent) and median RTT from `link_minutes` records inside the mask.
fn quality(placed: &[Placed<'_>], mask: &[(i64, i64)]) -> Quality {
    let (mut sent, mut lost) = (0.0f64, 0.0f64);
    let mut rtts: Vec<(f64, f64)> = Vec::new();
    for r in placed {
        let Body::LinkMinutes {
            minutes,
            sent: s,
            lost: l,
            rtt_p50_ms,
            ..
        } = &r.rec.body
        else {
            continue;
        };
        let len = i64::from(*minutes) * 60_000;
        if len <= 0 {
            continue;
        }
        let share = clip(mask, r.t - len, r.t).map(|(a, b)| b - a).sum::<i64>() as f64 / len as f64;
        if share <= 0.0 {
            continue;
        }
        sent += f64::from(*s) * share;
        lost += f64::from((*l).min(*s)) * share;
        let answered = f64::from(s.saturating_sub(*l)) * share;
        if let Some(p50) = rtt_p50_ms
            && answered > 0.0
            && p50.is_finite()
        {
            rtts.push((*p50, answered));
        }
    }
    // The ratio first: `lost <= sent` holds for the weighted sums too, so
    // the figure stays within 0..=100 (`100 * lost / sent` rounded above it
    // for a sliver of one record with every probe lost).
    let loss = (sent > 0.0).then(|| (100.0 * (lost / sent)).min(100.0));
    rtts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = rtts.iter().map(|x| x.1).sum::<f64>() / 2.0;
    let mut acc = 0.0;
    let rtt = rtts.iter().find_map(|(v, w)| {
        acc += w;
        (acc >= half).then_some(*v)
    });
    Quality {
        loss_pct: loss,
        rtt_p50_ms: rtt,
        sent,
        lost,
        rtts,
    }
}

/// Does the device meet the target (percent)? `None` when there is no
/// uptime to judge (no online or offline time in the window).
pub fn compliant(f: &Figures, target_pct: f64) -> Option<bool> {
    f.uptime.map(|u| u * 100.0 + 1e-9 >= target_pct)
}
