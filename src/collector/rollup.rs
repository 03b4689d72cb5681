//! Roll-ups, as pure code: the figures of one device over one local day
//! (Asia/Dhaka midnight to midnight) or one hour inside one schedule
//! ([`DayRow`], what the maintainer stores; [`Period`]), and the way a
//! report puts days, hours and raw-computed pieces back together ([`Seg`],
//! [`DeviceSums`], [`plan`]).
//!
//! Every figure of a report is a sum over days except three: the outage
//! count, the longest outage and the RTT median. An outage running over
//! midnight is one outage, not two: a day row says how long the outage at
//! its start (`head_ms`) and at its end (`tail_ms`) are, whether one outage
//! covers the whole day (`whole`), and whether its head continues an outage
//! of the day before (`cont`, only where the schedule is open on both sides
//! of midnight); [`Seg::join`] glues them. The RTT median is kept as a
//! histogram of the per-summary medians ([`RttHist`]): the group median read
//! from it is exact to the bucket (a factor of √2), where the engine's own is
//! the weighted median of the summaries' medians.
//!
//! Which records can change which days, and what a stored batch does to its
//! device's roll-up mark, are decided in [`mark`].

use crate::collector::uptime::{self, DeviceState, Figures, Interval, Rec, Timeline, cause};
use crate::shared::schedule::Schedule;
use crate::wire::{LinkKind, LinkState};
use std::collections::BTreeMap;

/// Buckets of the RTT histogram.
pub const RTT_BUCKETS: usize = 24;
/// Weights (answered probes) of per-summary RTT medians by half-octave:
/// bucket `i` holds medians in `[2^(i/2), 2^((i+1)/2))` ms, the first
/// everything below √2 ms, the last everything from 2^11.5 ms (≈ 2.9 s) up.
pub type RttHist = [f64; RTT_BUCKETS];

const DAY_MS: i64 = 86_400_000;

mod days;
pub use days::*;

/// The name under which a schedule's day rows are stored: its canonical
/// spelling, and for office hours with holidays a fingerprint of the
/// holiday list (a changed list is a different schedule: its days are
/// computed afresh rather than read from rows made with the old list).
pub fn schedule_key(s: &Schedule) -> String {
    match s {
        // Rows computed with each device's office hours.
        Schedule::EachOffice(default) => format!("each-office/{}", schedule_key(default)),
        Schedule::OfficeHours { holidays, .. } if !holidays.is_empty() => {
            // FNV-1a over the dates, in order.
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for d in holidays {
                for b in d.to_string().bytes() {
                    h ^= u64::from(b);
                    h = h.wrapping_mul(0x0100_0000_01b3);
                }
            }
            format!("{s}+holidays:{h:016x}")
        }
        _ => s.to_string(),
    }
}

/// The histogram bucket of an RTT in ms.
pub fn rtt_bucket(ms: f64) -> usize {
    if ms.is_nan() || ms <= 1.0 {
        return 0;
    }
    ((2.0 * ms.log2()).floor() as usize).min(RTT_BUCKETS - 1)
}

/// Add `(rtt, weight)` pairs to a histogram.
pub fn add_rtts(h: &mut RttHist, v: &[(f64, f64)]) {
    for (ms, w) in v {
        if ms.is_finite() && *w > 0.0 {
            h[rtt_bucket(*ms)] += w;
        }
    }
}

/// The median of a histogram, interpolated geometrically inside its bucket;
/// `None` without weight.
pub fn hist_median(h: &RttHist) -> Option<f64> {
    let total: f64 = h.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let half = total / 2.0;
    let mut acc = 0.0;
    for (i, w) in h.iter().enumerate() {
        if *w > 0.0 && acc + w >= half {
            let lo = 2f64.powf(i as f64 / 2.0);
            let frac = ((half - acc) / w).clamp(0.0, 1.0);
            return Some(lo * 2f64.powf(frac / 2.0));
        }
        acc += w;
    }
    None
}

/// Outage runs of a report piece (a day, or the raw part of a window), as
/// much as is needed to join pieces: how many, their total and longest, and
/// the ones touching the piece's start (`head`) and end (`tail`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Seg {
    pub count: i64,
    pub total: i64,
    pub longest: i64,
    /// Length of the outage at the piece's start (0: none).
    pub head: i64,
    /// Length of the outage at the piece's end (0: none).
    pub tail: i64,
    /// One outage covers the piece from start to end.
    pub whole: bool,
    /// The head continues an outage from just before the piece.
    pub cont: bool,
}

impl Seg {
    /// The outage runs of `f` (figures over `[a, b)`); `cont` as defined.
    pub fn of(f: &Figures, a: i64, b: i64, cont: bool) -> Seg {
        let len = |o: &uptime::Outage| o.end - o.start;
        let head = f.outages.first().filter(|o| o.start == a).map_or(0, len);
        let tail = f.outages.last().filter(|o| o.end == b).map_or(0, len);
        Seg {
            count: f.outages.len() as i64,
            total: f.outage_ms,
            longest: f.longest_outage_ms.unwrap_or(0),
            head,
            tail,
            whole: f.outages.len() == 1 && head > 0 && tail > 0,
            cont: cont && head > 0,
        }
    }

    /// `self` then `next` (which starts where `self` ends).
    pub fn join(self, next: Seg) -> Seg {
        if self.tail > 0 && next.cont {
            Seg {
                count: self.count + next.count - 1,
                total: self.total + next.total,
                longest: self.longest.max(next.longest).max(self.tail + next.head),
                head: if self.whole {
                    self.head + next.head
                } else {
                    self.head
                },
                tail: if next.whole {
                    self.tail + next.tail
                } else {
                    next.tail
                },
                whole: self.whole && next.whole,
                cont: self.cont,
            }
        } else {
            Seg {
                count: self.count + next.count,
                total: self.total + next.total,
                longest: self.longest.max(next.longest),
                head: self.head,
                tail: next.tail,
                whole: false,
                cont: self.cont,
            }
        }
    }
}

/// Is the device in an outage (offline, or not running without a clean
/// stop) at `t` by the timeline?
pub fn in_outage(tl: &Timeline, t: i64) -> bool {
    let i = tl.device.partition_point(|iv| iv.start <= t);
    let Some(iv) = i.checked_sub(1).map(|i| &tl.device[i]) else {
        return false;
    };
    iv.end > t
        && match iv.state {
            DeviceState::Offline => true,
            DeviceState::NotRunning => iv.cause.as_deref() != Some(cause::STOPPED),
            _ => false,
        }
}

/// Does the outage at `t` continue one from just before it (the schedule is
/// open on both sides and the device was in an outage just before)?
pub fn continues(tl: &Timeline, sched: &Schedule, t: i64) -> bool {
    !sched.mask(t - 1, t).is_empty() && in_outage(tl, t - 1)
}

/// The stored figures of one device, day and schedule.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DayRow {
    pub schedule: String,
    pub device_id: i64,
    pub day_ms: i64,
    pub online_ms: i64,
    pub offline_ms: i64,
    pub not_running_ms: i64,
    pub no_data_ms: i64,
    pub broadband_ms: i64,
    pub wifi_ms: i64,
    pub mobile_ms: i64,
    /// Outages of the day, not counting one continued from the day before.
    pub outages: i64,
    pub outage_ms: i64,
    /// Longest outage touching neither end of the day (0: none).
    pub longest_ms: i64,
    pub head_ms: i64,
    pub tail_ms: i64,
    pub whole: bool,
    pub cont: bool,
    pub failovers: i64,
    pub sent: f64,
    pub lost: f64,
    pub rtt: RttHist,
    pub computed_ms: i64,
}

/// The row of the day `[day, day_end)` from a timeline covering it and at
/// least a millisecond before it, the records behind it, and the schedule
/// (`key` its stored name).
#[allow(clippy::too_many_arguments)]
pub fn day_row(
    key: &str,
    sched: &Schedule,
    device_id: i64,
    tl: &Timeline,
    recs: &[Rec],
    day: i64,
    day_end: i64,
    computed_ms: i64,
) -> DayRow {
    let f = uptime::figures(tl, recs, &sched.mask(day, day_end));
    let seg = Seg::of(&f, day, day_end, continues(tl, sched, day));
    let inner = f
        .outages
        .iter()
        .filter(|o| o.start != day && o.end != day_end)
        .map(|o| o.end - o.start)
        .max()
        .unwrap_or(0);
    let kind = |k: LinkKind| f.per_kind_ms.get(&k).copied().unwrap_or(0);
    let mut rtt = [0.0; RTT_BUCKETS];
    add_rtts(&mut rtt, &f.rtt_weights);
    DayRow {
        schedule: key.to_string(),
        device_id,
        day_ms: day,
        online_ms: f.online_ms,
        offline_ms: f.offline_ms,
        not_running_ms: f.not_running_ms,
        no_data_ms: f.no_data_ms,
        broadband_ms: kind(LinkKind::Broadband),
        wifi_ms: kind(LinkKind::Wifi),
        mobile_ms: kind(LinkKind::Mobile),
        outages: seg.count - i64::from(seg.cont),
        outage_ms: seg.total,
        longest_ms: inner,
        head_ms: seg.head,
        tail_ms: seg.tail,
        whole: seg.whole,
        cont: seg.cont,
        failovers: i64::from(f.failovers),
        sent: f.probes_sent,
        lost: f.probes_lost,
        rtt,
        computed_ms,
    }
}

/// A device's day rows summed over a range of days (what the store's
/// aggregate query returns).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceSums {
    pub device_id: i64,
    /// How many day rows were summed.
    pub days: i64,
    pub online_ms: i64,
    pub offline_ms: i64,
    pub not_running_ms: i64,
    pub no_data_ms: i64,
    pub broadband_ms: i64,
    pub wifi_ms: i64,
    pub mobile_ms: i64,
    pub outages: i64,
    pub outage_ms: i64,
    /// Largest `longest_ms`.
    pub longest_ms: i64,
    pub failovers: i64,
    pub sent: f64,
    pub lost: f64,
    pub rtt: RttHist,
}

impl DeviceSums {
    /// Add the sums of other rows of the same device.
    pub fn add(&mut self, o: &DeviceSums) {
        self.days += o.days;
        self.online_ms += o.online_ms;
        self.offline_ms += o.offline_ms;
        self.not_running_ms += o.not_running_ms;
        self.no_data_ms += o.no_data_ms;
        self.broadband_ms += o.broadband_ms;
        self.wifi_ms += o.wifi_ms;
        self.mobile_ms += o.mobile_ms;
        self.outages += o.outages;
        self.outage_ms += o.outage_ms;
        self.longest_ms = self.longest_ms.max(o.longest_ms);
        self.failovers += o.failovers;
        self.sent += o.sent;
        self.lost += o.lost;
        for (a, b) in self.rtt.iter_mut().zip(o.rtt) {
            *a += b;
        }
    }
}

/// The ends of a day row (only rows with `head_ms` or `tail_ms` are read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayEnds {
    pub device_id: i64,
    pub day_ms: i64,
    pub head_ms: i64,
    pub tail_ms: i64,
    pub whole: bool,
    pub cont: bool,
}

/// The outage runs of the periods (days or hours) `[r0, r1)` from the sums
/// and the rows with ends (in order), as one [`Seg`].
pub fn rows_seg(period: Period, sums: &DeviceSums, ends: &[DayEnds], r0: i64, r1: i64) -> Seg {
    let mut longest = sums.longest_ms;
    let first_cont = ends.first().is_some_and(|e| e.day_ms == r0 && e.cont);
    let mut head = 0;
    let mut tail = 0;
    // The outage under way: (started on day r0 at midnight, length).
    let mut chain: Option<(bool, i64)> = None;
    let mut prev: Option<DayEnds> = None;
    let close = |chain: &mut Option<(bool, i64)>, longest: &mut i64, head: &mut i64| {
        if let Some((at_r0, len)) = chain.take() {
            *longest = (*longest).max(len);
            if at_r0 {
                *head = len;
            }
        }
    };
    for e in ends {
        let joined = e.cont
            && prev.is_some_and(|p| p.tail_ms > 0 && period.next(p.day_ms) == e.day_ms)
            && chain.is_some();
        if joined {
            if let Some(c) = chain.as_mut() {
                c.1 += e.head_ms;
            }
        } else {
            close(&mut chain, &mut longest, &mut head);
            if e.head_ms > 0 {
                chain = Some((e.day_ms == r0, e.head_ms));
            }
        }
        if !e.whole {
            close(&mut chain, &mut longest, &mut head);
            if e.tail_ms > 0 {
                chain = Some((false, e.tail_ms));
            }
        }
        prev = Some(*e);
    }
    let whole = ends.len() as i64 == sums.days
        && sums.days > 0
        && ends.iter().all(|e| e.whole)
        && prev.is_some_and(|p| period.next(p.day_ms) == r1);
    if let (Some((at_r0, len)), Some(p)) = (chain, prev)
        && period.next(p.day_ms) == r1
        && p.tail_ms > 0
    {
        tail = len;
        if at_r0 {
            head = len;
        }
    }
    close(&mut chain, &mut longest, &mut head);
    Seg {
        count: sums.outages + i64::from(first_cont),
        total: sums.outage_ms,
        longest,
        head,
        tail,
        whole,
        cont: first_cont,
    }
}

/// A device's figures from summed days and raw-computed pieces before
/// (`pre`) and after (`post`) them; `seg` the joined outage runs.
pub fn figures_from(sums: &DeviceSums, pieces: &[&Figures], seg: Seg) -> Figures {
    let mut f = Figures {
        online_ms: sums.online_ms,
        offline_ms: sums.offline_ms,
        not_running_ms: sums.not_running_ms,
        no_data_ms: sums.no_data_ms,
        failovers: u32::try_from(sums.failovers).unwrap_or(u32::MAX),
        probes_sent: sums.sent,
        probes_lost: sums.lost,
        ..Default::default()
    };
    let mut kinds: BTreeMap<LinkKind, i64> = [
        (LinkKind::Broadband, sums.broadband_ms),
        (LinkKind::Wifi, sums.wifi_ms),
        (LinkKind::Mobile, sums.mobile_ms),
    ]
    .into_iter()
    .collect();
    let mut rtt = sums.rtt;
    for p in pieces {
        f.online_ms += p.online_ms;
        f.offline_ms += p.offline_ms;
        f.not_running_ms += p.not_running_ms;
        f.no_data_ms += p.no_data_ms;
        f.failovers += p.failovers;
        f.probes_sent += p.probes_sent;
        f.probes_lost += p.probes_lost;
        for (k, ms) in &p.per_kind_ms {
            *kinds.entry(*k).or_default() += ms;
        }
        add_rtts(&mut rtt, &p.rtt_weights);
    }
    kinds.retain(|_, v| *v > 0);
    f.per_kind_ms = kinds;
    let judged = f.online_ms + f.offline_ms;
    f.uptime = (judged > 0).then(|| f.online_ms as f64 / judged as f64);
    f.outage_count = u32::try_from(seg.count).unwrap_or(u32::MAX);
    f.outage_ms = seg.total;
    f.mttr_ms = (seg.count > 0).then(|| seg.total / seg.count);
    f.longest_outage_ms = (seg.count > 0).then_some(seg.longest);
    f.rtt_p50_ms = hist_median(&rtt);
    f.loss_pct = (f.probes_sent > 0.0).then(|| 100.0 * f.probes_lost / f.probes_sent);
    f
}

/// A day's slice of a timeline, as stored for the timeline endpoint.
pub fn day_timeline(tl: &Timeline, day: i64, day_end: i64) -> Timeline {
    fn cut<S: Copy>(v: &[Interval<S>], a: i64, b: i64) -> Vec<Interval<S>> {
        v.iter()
            .filter(|iv| iv.end > a && iv.start < b)
            .map(|iv| Interval {
                start: iv.start.max(a),
                end: iv.end.min(b),
                state: iv.state,
                cause: iv.cause.clone(),
            })
            .collect()
    }
    Timeline {
        device: cut(&tl.device, day, day_end),
        links: tl
            .links
            .iter()
            .map(|(n, (k, v))| (n.clone(), (*k, cut(v, day, day_end))))
            .filter(|(_, (_, v))| !v.is_empty())
            .collect(),
    }
}

/// Timelines of consecutive pieces put together: adjacent intervals in the
/// same state and cause are merged; a link's kind is the last one seen.
pub fn concat_timelines(parts: Vec<Timeline>) -> Timeline {
    fn push<S: PartialEq>(v: &mut Vec<Interval<S>>, iv: Interval<S>) {
        if let Some(last) = v.last_mut()
            && last.end == iv.start
            && last.state == iv.state
            && last.cause == iv.cause
        {
            last.end = iv.end;
            return;
        }
        v.push(iv);
    }
    let mut out = Timeline::default();
    for p in parts {
        for iv in p.device {
            push(&mut out.device, iv);
        }
        for (name, (kind, v)) in p.links {
            let e = out
                .links
                .entry(name)
                .or_insert_with(|| (kind, Vec::<Interval<LinkState>>::new()));
            e.0 = kind;
            for iv in v {
                push(&mut e.1, iv);
            }
        }
    }
    out
}

pub mod mark;
pub mod plan;
pub use mark::{MARK_MARGIN_MS, MarkMove, batch_mark, lowers_mark, reach_back_ms, record_reach};

#[cfg(test)]
mod tests;
