//! Roll-up arithmetic: histogram medians, and the outage runs of pieces
//! joined back together equal those of the whole (property tests over random
//! outage patterns cut at random places and into days).

use super::*;
use crate::collector::uptime::{Outage, OutageCause};
use proptest::prelude::*;

const H: i64 = 3_600_000;

#[test]
fn histogram_buckets_and_median() {
    assert_eq!(rtt_bucket(0.5), 0);
    assert_eq!(rtt_bucket(1.0), 0);
    assert_eq!(rtt_bucket(1.5), 1);
    assert_eq!(rtt_bucket(2.0), 2);
    assert_eq!(rtt_bucket(1e9), RTT_BUCKETS - 1);
    assert_eq!(rtt_bucket(f64::NAN), 0);
    assert_eq!(hist_median(&[0.0; RTT_BUCKETS]), None);
    let mut h = [0.0; RTT_BUCKETS];
    add_rtts(&mut h, &[(30.0, 900.0), (100.0, 50.0), (f64::NAN, 5.0)]);
    let m = hist_median(&h).unwrap();
    assert!((30.0 / 1.42..30.0 * 1.42).contains(&m), "{m}");
}

/// Outages `[a, b)` over `[0, len)` from a pattern of (length, in outage).
fn outages_of(pattern: &[(i64, bool)]) -> Vec<(i64, i64)> {
    let mut out: Vec<(i64, i64)> = Vec::new();
    let mut t = 0;
    for &(l, o) in pattern {
        if o {
            match out.last_mut() {
                Some(last) if last.1 == t => last.1 = t + l,
                _ => out.push((t, t + l)),
            }
        }
        t += l;
    }
    out
}

/// The figures' outage part of `[a, b)` (outages clipped to it).
fn figures_in(outages: &[(i64, i64)], a: i64, b: i64) -> Figures {
    let v: Vec<Outage> = outages
        .iter()
        .map(|&(s, e)| (s.max(a), e.min(b)))
        .filter(|(s, e)| s < e)
        .map(|(start, end)| Outage {
            start,
            end,
            cause: OutageCause::AllLinksDown,
        })
        .collect();
    Figures {
        outage_count: v.len() as u32,
        outage_ms: v.iter().map(|o| o.end - o.start).sum(),
        longest_outage_ms: v.iter().map(|o| o.end - o.start).max(),
        outages: v,
        ..Default::default()
    }
}

fn in_out(outages: &[(i64, i64)], t: i64) -> bool {
    outages.iter().any(|&(s, e)| s <= t && t < e)
}

fn pattern() -> impl Strategy<Value = Vec<(i64, bool)>> {
    prop::collection::vec((1i64..5 * H, any::<bool>()), 1..30)
}

proptest! {
    #[test]
    fn pieces_joined_equal_the_whole(p in pattern(), cuts in prop::collection::vec(any::<u32>(), 0..8)) {
        let len: i64 = p.iter().map(|x| x.0).sum();
        let outs = outages_of(&p);
        let whole = Seg::of(&figures_in(&outs, 0, len), 0, len, false);
        let mut points: Vec<i64> = cuts.iter().map(|c| i64::from(*c) % len).filter(|c| *c > 0).collect();
        points.push(0);
        points.push(len);
        points.sort_unstable();
        points.dedup();
        let joined = points
            .windows(2)
            .map(|w| {
                let (a, b) = (w[0], w[1]);
                let cont = a > 0 && in_out(&outs, a - 1);
                Seg::of(&figures_in(&outs, a, b), a, b, cont)
            })
            .reduce(Seg::join)
            .unwrap();
        prop_assert_eq!(
            (joined.count, joined.total, joined.longest, joined.head, joined.tail, joined.whole),
            (whole.count, whole.total, whole.longest, whole.head, whole.tail, whole.whole)
        );
    }

    #[test]
    fn rows_summed_and_chained_equal_the_whole(
        p in prop::collection::vec((1i64..40 * H, any::<bool>()), 1..20),
        skip in 0i64..24,
        hourly in any::<bool>(),
    ) {
        let tz = day_tz();
        let base = day_start(&tz, 1_790_000_000_000);
        // Hours: the same pattern shrunk 24 times.
        let (period, step) = if hourly { (Period::Hour, H) } else { (Period::Day, DAY_MS) };
        let scale = |x: i64| (x * step / DAY_MS).max(1);
        let n: i64 = 9;
        let len = n * step;
        // The pattern placed from the start of period 0, cut at the end of period 8.
        let mut t = 0;
        let mut pat = Vec::new();
        for (l, o) in p {
            if t >= len { break; }
            let l = scale(l).min(len - t);
            pat.push((l, o));
            t += l;
        }
        if t < len { pat.push((len - t, false)); }
        let outs = outages_of(&pat);
        // Periods r0.. of the window starting `skip` 24ths into period 0.
        let from = scale(skip * H);
        let r0 = if from == 0 { 0 } else { step };
        let r1 = len;
        let whole = Seg::of(&figures_in(&outs, from, len), from, len, false);
        let mut sums = DeviceSums { days: (r1 - r0) / step, ..Default::default() };
        let mut ends = Vec::new();
        let mut d = r0;
        while d < r1 {
            let f = figures_in(&outs, d, d + step);
            let seg = Seg::of(&f, d, d + step, d > 0 && in_out(&outs, d - 1));
            let inner = f.outages.iter().filter(|o| o.start != d && o.end != d + step)
                .map(|o| o.end - o.start).max().unwrap_or(0);
            sums.outages += seg.count - i64::from(seg.cont);
            sums.outage_ms += seg.total;
            sums.longest_ms = sums.longest_ms.max(inner);
            if seg.head > 0 || seg.tail > 0 {
                ends.push(DayEnds { device_id: 1, day_ms: base + d, head_ms: seg.head, tail_ms: seg.tail, whole: seg.whole, cont: seg.cont });
            }
            d += step;
        }
        let mid = rows_seg(period, &sums, &ends, base + r0, base + r1);
        let joined = if from < r0 {
            Seg::of(&figures_in(&outs, from, r0), from, r0, false).join(mid)
        } else {
            mid
        };
        prop_assert_eq!(
            (joined.count, joined.total, joined.longest, joined.head, joined.tail, joined.whole),
            (whole.count, whole.total, whole.longest, whole.head, whole.tail, whole.whole)
        );
    }
}

#[test]
fn day_timelines_concatenate_back() {
    let iv = |a: i64, b: i64, s: DeviceState| Interval {
        start: a,
        end: b,
        state: s,
        cause: None,
    };
    let tl = Timeline {
        device: vec![
            iv(0, 30 * H, DeviceState::Online),
            iv(30 * H, 50 * H, DeviceState::Offline),
        ],
        links: BTreeMap::new(),
    };
    let parts = vec![
        day_timeline(&tl, 0, DAY_MS),
        day_timeline(&tl, DAY_MS, 2 * DAY_MS),
        day_timeline(&tl, 2 * DAY_MS, 50 * H),
    ];
    assert_eq!(parts[0].device.len(), 1);
    assert_eq!(concat_timelines(parts), tl);
}

#[test]
fn only_batches_reaching_settled_hours_lower_the_mark() {
    let tz = day_tz();
    let day = day_start(&tz, 1_790_000_000_000);
    let m = 60_000;
    // Local hours start on UTC hours.
    assert_eq!(hour_start(day), day);
    assert_eq!(hour_ceil(day + 1), day + H);
    // 10:30 local: the hours before 10:00 are settled, today is not.
    let now = day + 10 * H + 30 * m;
    assert_eq!(settled_before(now), day);
    assert_eq!(hours_settled_before(now), day + 10 * H);
    // A live upload reaching back to 10:23 writes nothing.
    assert!(!lowers_mark(now - 7 * m, now));
    assert!(!lowers_mark(day + 10 * H, now));
    assert!(lowers_mark(day + 10 * H - 1, now));
    // 11:03: 10:00-11:00 settles at 11:15; a maintainer round reading it
    // then sees this batch.
    assert!(!lowers_mark(day + 11 * H - 4 * m, day + 11 * H + 3 * m));
    // 11:06: within the margin, 10:00-11:00 counts as settled already.
    assert!(lowers_mark(day + 11 * H - m, day + 11 * H + 6 * m));
    // 11:20: a live upload reaching back to 11:13 writes nothing again.
    assert!(!lowers_mark(day + 11 * H + 13 * m, day + 11 * H + 20 * m));
}

#[test]
fn periods_count_and_follow() {
    let tz = day_tz();
    let day = day_start(&tz, 1_790_000_000_000);
    assert_eq!(Period::Hour.next(day), day + H);
    assert_eq!(Period::Day.next(day), day + DAY_MS);
    assert_eq!(Period::Hour.count(day, day + 5 * H), 5);
    assert_eq!(Period::Day.count(day, day + 3 * DAY_MS), 3);
    assert_eq!(Period::Hour.count(day, day), 0);
    assert_eq!(Period::Hour.key("always"), "always/hour");
    assert_eq!(Period::Day.key("always"), "always");
}
