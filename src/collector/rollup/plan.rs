//! Which parts of a report window come from roll-up rows and which from the
//! records, as pure code. [`plan`] cuts a window into its whole settled days
//! (day rows), the whole hours before and after them (hour rows), and the
//! minutes left at either end (records); [`for_device`] turns the row parts
//! a device's roll-ups do not cover yet into record parts, joining
//! neighbours, so each device reads its records once per stretch.

use super::{Period, day_start, day_tz, hour_ceil, hour_start, whole_days};

/// A stretch `[a, b)` of a report window and where its figures come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Computed from the records.
    Raw(i64, i64),
    /// Summed from the rows of the periods starting in `[a, b)`.
    Rows(Period, i64, i64),
}

impl Part {
    pub fn start(self) -> i64 {
        match self {
            Part::Raw(a, _) | Part::Rows(_, a, _) => a,
        }
    }

    pub fn end(self) -> i64 {
        match self {
            Part::Raw(_, b) | Part::Rows(_, _, b) => b,
        }
    }

    /// `(period, a, b)` of a row part.
    pub fn rows(self) -> Option<(Period, i64, i64)> {
        match self {
            Part::Rows(period, a, b) => Some((period, a, b)),
            Part::Raw(..) => None,
        }
    }
}

/// The parts of `[from, to)` at `now`, in order, covering it exactly. Rows
/// are planned only for periods over by `now` (whether a device's are
/// there and current is [`for_device`]'s question).
pub fn plan(from: i64, to: i64, now: i64) -> Vec<Part> {
    let tz = day_tz();
    let mut out = Vec::new();
    if from >= to {
        return out;
    }
    let (r0, r1) = whole_days(&tz, from, to);
    let r1 = r1.min(day_start(&tz, now)).max(r0);
    let top = hour_start(now);
    let hours = |a: i64, b: i64, out: &mut Vec<Part>| {
        if a >= b {
            return;
        }
        let h0 = hour_ceil(a);
        let h1 = hour_start(b.min(top));
        if h0 < h1 {
            if a < h0 {
                out.push(Part::Raw(a, h0));
            }
            out.push(Part::Rows(Period::Hour, h0, h1));
            if h1 < b {
                out.push(Part::Raw(h1, b));
            }
        } else {
            out.push(Part::Raw(a, b));
        }
    };
    if r0 < r1 {
        hours(from, r0, &mut out);
        out.push(Part::Rows(Period::Day, r0, r1));
        hours(r1, to, &mut out);
    } else {
        hours(from, to, &mut out);
    }
    out
}

/// The parts of one device: a row part stays only when `current(part)`
/// (every row is there and the device's mark is past its end); the others
/// become record parts, joined with record parts next to them.
pub fn for_device(parts: &[Part], current: impl Fn(Part) -> bool) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::with_capacity(parts.len());
    for &p in parts {
        let p = match p {
            Part::Rows(_, a, b) if !current(p) => Part::Raw(a, b),
            p => p,
        };
        match (out.last_mut(), p) {
            (Some(Part::Raw(_, end)), Part::Raw(_, b)) => *end = b,
            _ => out.push(p),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: i64 = 3_600_000;
    const M: i64 = 60_000;

    fn day0() -> i64 {
        day_start(&day_tz(), 1_790_000_000_000)
    }

    #[test]
    fn today_so_far_reads_hours_and_the_minutes_since() {
        let d = day0();
        let now = d + 14 * H + 20 * M;
        assert_eq!(
            plan(d, now, now),
            vec![
                Part::Rows(Period::Hour, d, d + 14 * H),
                Part::Raw(d + 14 * H, now)
            ]
        );
        // An hour-aligned window inside a day: hours only.
        assert_eq!(
            plan(d + 9 * H, d + 17 * H, now),
            vec![
                Part::Rows(Period::Hour, d + 9 * H, d + 14 * H),
                Part::Raw(d + 14 * H, d + 17 * H)
            ]
        );
        let later = d + 3 * 24 * H;
        assert_eq!(
            plan(d + 9 * H, d + 17 * H, later),
            vec![Part::Rows(Period::Hour, d + 9 * H, d + 17 * H)]
        );
    }

    #[test]
    fn a_month_and_a_bit_reads_days_then_hours() {
        let d = day0();
        let now = d + 40 * 24 * H + 30 * M;
        let from = d + 7 * H + 30 * M;
        let to = d + 30 * 24 * H + 14 * H + 5 * M;
        assert_eq!(
            plan(from, to, now),
            vec![
                Part::Raw(from, d + 8 * H),
                Part::Rows(Period::Hour, d + 8 * H, d + 24 * H),
                Part::Rows(Period::Day, d + 24 * H, d + 30 * 24 * H),
                Part::Rows(Period::Hour, d + 30 * 24 * H, d + 30 * 24 * H + 14 * H),
                Part::Raw(d + 30 * 24 * H + 14 * H, to),
            ]
        );
    }

    #[test]
    fn parts_not_current_join_their_neighbours() {
        let d = day0();
        let now = d + 3 * 24 * H + 10 * H + 5 * M;
        let parts = plan(d + 30 * M, now, now);
        // The mark is in today's 08:00: today's hours are not current.
        let mark = d + 3 * 24 * H + 8 * H;
        let mine = for_device(&parts, |p| p.end() <= mark);
        assert_eq!(
            mine,
            vec![
                Part::Raw(d + 30 * M, d + H),
                Part::Rows(Period::Hour, d + H, d + 24 * H),
                Part::Rows(Period::Day, d + 24 * H, d + 3 * 24 * H),
                Part::Raw(d + 3 * 24 * H, now),
            ]
        );
        assert_eq!(
            for_device(&parts, |_| false),
            vec![Part::Raw(d + 30 * M, now)]
        );
    }

    proptest! {
        /// Parts cover the window exactly, in order; rows only of whole
        /// periods over by `now`; hours never where a whole day could serve.
        #[test]
        fn parts_tile_the_window(a in 0i64..40 * 24 * 60, len in 1i64..40 * 24 * 60, n in 0i64..50 * 24 * 60, keep in any::<u8>()) {
            let d = day0();
            let (from, to, now) = (d + a * M, d + (a + len) * M, d + n * M);
            let parts = plan(from, to, now);
            let mine = for_device(&parts, |p| (p.start() / M) % 8 != i64::from(keep % 8));
            for ps in [&parts, &mine] {
                prop_assert_eq!(ps.first().map(|p| p.start()), Some(from));
                prop_assert_eq!(ps.last().map(|p| p.end()), Some(to));
                for w in ps.windows(2) {
                    prop_assert_eq!(w[0].end(), w[1].start());
                    prop_assert!(!matches!((w[0], w[1]), (Part::Raw(..), Part::Raw(..))));
                }
                for p in ps.iter() {
                    prop_assert!(p.start() < p.end());
                    if let Part::Rows(period, s, e) = *p {
                        prop_assert!(e <= hour_start(now));
                        match period {
                            Period::Hour => {
                                prop_assert_eq!(s % H, 0);
                                prop_assert_eq!(e % H, 0);
                                // No whole day over by `now` inside.
                                let tz = day_tz();
                                let (d0, d1) = whole_days(&tz, s, e);
                                prop_assert!(d0 >= d1.min(day_start(&tz, now)));
                            }
                            Period::Day => {
                                prop_assert_eq!(day_start(&day_tz(), s), s);
                                prop_assert_eq!(day_start(&day_tz(), e), e);
                            }
                        }
                    }
                }
            }
        }
    }
}
