//! The clock of roll-ups: the time zone of roll-up days, when a day or an
//! hour is settled, and the day and hour boundaries ([`Period`]) reports and
//! the maintainer cut time at.

use super::DAY_MS;
use crate::shared::schedule::DEFAULT_TZ;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The time zone of roll-up days (that of report dates).
pub fn day_tz() -> TimeZone {
    static TZ: std::sync::OnceLock<TimeZone> = std::sync::OnceLock::new();
    TZ.get_or_init(|| {
        jiff::tz::db()
            .get(DEFAULT_TZ)
            .or_else(|_| jiff::tz::TimeZoneDatabase::bundled().get(DEFAULT_TZ))
            .unwrap_or(TimeZone::UTC)
    })
    .clone()
}

/// A day or an hour is rolled up once it has been over this long (uploads
/// come every five minutes; later data marks it dirty again).
pub const SETTLE_MS: i64 = 15 * 60_000;

/// The start of the first day not yet due at `now_ms`: the days before it
/// are settled (the maintainer computes them).
pub fn settled_before(now_ms: i64) -> i64 {
    day_start(&day_tz(), now_ms - SETTLE_MS)
}

/// The start of the first hour not yet due at `now_ms`: the hours before it
/// are settled (the maintainer computes them; a device's mark is moved at
/// most here).
pub fn hours_settled_before(now_ms: i64) -> i64 {
    hour_start(now_ms - SETTLE_MS)
}

const HOUR_MS: i64 = 3_600_000;

/// The start of the local hour containing `t`. Roll-up days are Asia/Dhaka
/// days, whose offset from UTC (+06:00, no daylight saving since 2009) is a
/// whole number of hours: local hours start on UTC hours.
pub fn hour_start(t: i64) -> i64 {
    t - t.rem_euclid(HOUR_MS)
}

/// The first hour start at or after `t`.
pub fn hour_ceil(t: i64) -> i64 {
    let h = hour_start(t);
    if h == t { h } else { h + HOUR_MS }
}

/// What a roll-up row covers: a local day, or one hour. Hour rows are kept
/// so that reports over windows that cut a day (today so far, office hours
/// of one afternoon) read them too; both live in `rollup_days` (`day_ms` is
/// the row's start), hour rows under [`Period::key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Hour,
}

impl Period {
    /// The start of the period after the one starting at `start`.
    pub fn next(self, start: i64) -> i64 {
        match self {
            Period::Day => next_day(&day_tz(), start),
            Period::Hour => start + HOUR_MS,
        }
    }

    /// The stored schedule name of this period's rows of the schedule
    /// stored as `key` (see [`schedule_key`]).
    pub fn key(self, key: &str) -> String {
        match self {
            Period::Day => key.to_string(),
            Period::Hour => format!("{key}/hour"),
        }
    }

    /// How many periods start in `[a, b)`.
    pub fn count(self, a: i64, b: i64) -> i64 {
        match self {
            Period::Day => days_between(&day_tz(), a, b).len() as i64,
            Period::Hour => ((b - a).max(0) + HOUR_MS - 1) / HOUR_MS,
        }
    }
}

/// The start of the local day containing `t` (Unix ms).
pub fn day_start(tz: &TimeZone, t: i64) -> i64 {
    let Ok(ts) = Timestamp::from_millisecond(t) else {
        return t - t.rem_euclid(DAY_MS);
    };
    let date = ts.to_zoned_datetime(tz.clone()).date();
    tz.to_timestamp(date.at(0, 0, 0, 0))
        .map(|x| x.as_millisecond())
        .unwrap_or(t - t.rem_euclid(DAY_MS))
}

/// The start of the local day after the one starting at `day`.
pub fn next_day(tz: &TimeZone, day: i64) -> i64 {
    // Local days are 23 to 25 hours long: 36 hours from the start is always
    // inside the next one.
    day_start(tz, day + DAY_MS + DAY_MS / 2)
}

/// The whole local days inside `[from, to)`: `(first day start, end of the
/// last)`, empty when `start >= end`.
pub fn whole_days(tz: &TimeZone, from: i64, to: i64) -> (i64, i64) {
    let d = day_start(tz, from);
    let first = if d == from { d } else { next_day(tz, d) };
    (first, day_start(tz, to).max(first))
}

/// The days starting in `[from, to)` (both day starts).
pub fn days_between(tz: &TimeZone, from: i64, to: i64) -> Vec<i64> {
    let mut out = Vec::new();
    let mut d = from;
    while d < to {
        out.push(d);
        d = next_day(tz, d);
    }
    out
}
