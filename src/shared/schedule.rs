//! When uptime counts: a schedule turns a report window into the intervals
//! during which the device is expected online ("the mask" the uptime figures
//! are restricted to). Pure code: no clock, no file reading (a holiday file's
//! text is handed in as `&str`).
//!
//! Spellings accepted by [`parse_schedule`]:
//! - `always`: every millisecond of the window counts (24/7; holidays do not
//!   apply);
//! - `office`: each office's own hours (the `hours` of the office in the
//!   imported hierarchy), and for devices of offices without them (or of no
//!   office) the defaults of the government circular: time zone
//!   `Asia/Dhaka`, Sunday to Thursday, 09:00 to 17:00 ([`Schedule::EachOffice`]);
//! - `office:<time zone>[:<days>[:<HH:MM>-<HH:MM>]]`, e.g.
//!   `office:Asia/Dhaka:sun-thu:09:00-17:00`. Days are three-letter (or full)
//!   English day names, ranges (`sun-thu`, wrapping like `fri-sun`) and lists
//!   (`sun-tue,thu`). The closing time may be `24:00` (end of the day); opening
//!   must be before closing (no shifts over midnight). Spelled out, it
//!   applies to every device alike, whatever its office's hours.
//!
//! Holidays ([`parse_holidays`]) are whole local days, one `YYYY-MM-DD` per
//! line, `#` starting a comment. Opening and closing times are local wall
//! times: on a day with a daylight-saving change they are resolved the
//! "compatible" way (a time in a gap moves forward, an ambiguous time takes
//! the earlier instant). Asia/Dhaka has had no DST since 2009.

use crate::shared::time::parse_date;
use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::{TimeZone, TimeZoneDatabase};
use std::collections::BTreeSet;
use std::fmt;

/// The default office time zone.
pub const DEFAULT_TZ: &str = "Asia/Dhaka";
/// Day names, Sunday first (the index into [`Schedule::OfficeHours::days`]).
const DAY_NAMES: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const FULL_DAY_NAMES: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];

/// When the device is expected online.
#[derive(Debug, Clone, PartialEq)]
pub enum Schedule {
    /// All the time.
    Always,
    /// On the given weekdays between `open` and `close` local time, except holidays.
    OfficeHours {
        tz: TimeZone,
        /// Sunday first: `days[0]` is Sunday, `days[6]` Saturday.
        days: [bool; 7],
        /// Opening time (hour, minute).
        open: (u8, u8),
        /// Closing time (hour, minute); `(24, 0)` is the end of the day.
        close: (u8, u8),
        holidays: BTreeSet<Date>,
    },
    /// Each office's own hours where its office has them (see
    /// [`Schedule::office_hours`] and [`Schedule::for_office`]), else this
    /// default. Alone (without the offices) it is the default.
    EachOffice(Box<Schedule>),
}

/// Each office's own schedule, by office code, for [`Schedule::EachOffice`].
pub type OfficeHours = std::collections::HashMap<String, Schedule>;

/// A schedule or holiday list that cannot be used; the message names the bad
/// part and how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(
        "unknown schedule `{0}`: write `always`, `office`, or \
         `office:<time zone>:<days>:<HH:MM>-<HH:MM>` (e.g. `office:Asia/Dhaka:sun-thu:09:00-17:00`)"
    )]
    Unknown(String),
    #[error(
        "unknown time zone `{0}` in the schedule: use an IANA time zone name such as `Asia/Dhaka`"
    )]
    UnknownTimeZone(String),
    #[error(
        "bad days `{days}` in the schedule ({why}): use day names or ranges such as \
         `sun-thu` or `sun,mon,tue`"
    )]
    BadDays { days: String, why: String },
    #[error(
        "bad office hours `{hours}` in the schedule ({why}): write `HH:MM-HH:MM` with opening \
         before closing, e.g. `09:00-17:00` (closing may be `24:00`)"
    )]
    BadHours { hours: String, why: String },
    #[error(
        "holiday file, line {line}: `{text}` is not a date: write one `YYYY-MM-DD` per line \
         (`#` starts a comment)"
    )]
    BadHoliday { line: usize, text: String },
}

/// Parse a schedule spelling (see the module documentation).
pub fn parse_schedule(spec: &str) -> Result<Schedule, ScheduleError> {
    let spec = spec.trim();
    if spec.eq_ignore_ascii_case("always") {
        return Ok(Schedule::Always);
    }
    if spec.eq_ignore_ascii_case("office") {
        return Ok(Schedule::EachOffice(Box::new(office_defaults()?)));
    }
    let mut parts = spec.splitn(4, ':');
    let kind = parts.next().unwrap_or_default();
    if !kind.eq_ignore_ascii_case("office") {
        return Err(ScheduleError::Unknown(spec.to_string()));
    }
    let tz_name = parts.next().unwrap_or(DEFAULT_TZ).trim();
    let days = match parts.next() {
        Some(d) => parse_days(d.trim())?,
        // Sunday to Thursday.
        None => [true, true, true, true, true, false, false],
    };
    let (open, close) = match parts.next() {
        Some(h) => parse_hours(h.trim())?,
        None => ((9, 0), (17, 0)),
    };
    Ok(Schedule::OfficeHours {
        tz: time_zone(tz_name)?,
        days,
        open,
        close,
        holidays: BTreeSet::new(),
    })
}

/// The circular's office hours: Asia/Dhaka, Sunday to Thursday, 09:00-17:00.
fn office_defaults() -> Result<Schedule, ScheduleError> {
    Ok(Schedule::OfficeHours {
        tz: time_zone(DEFAULT_TZ)?,
        days: [true, true, true, true, true, false, false],
        open: (9, 0),
        close: (17, 0),
        holidays: BTreeSet::new(),
    })
}

/// Look a time zone up in the system database, falling back to the copy
/// bundled into the binary (so it works without `/usr/share/zoneinfo`).
pub fn time_zone(name: &str) -> Result<TimeZone, ScheduleError> {
    if name.is_empty() {
        return Err(ScheduleError::UnknownTimeZone(name.to_string()));
    }
    jiff::tz::db()
        .get(name)
        .or_else(|_| TimeZoneDatabase::bundled().get(name))
        .map_err(|_| ScheduleError::UnknownTimeZone(name.to_string()))
}

fn day_index(word: &str) -> Option<usize> {
    let w = word.trim().to_ascii_lowercase();
    DAY_NAMES
        .iter()
        .position(|d| *d == w)
        .or_else(|| FULL_DAY_NAMES.iter().position(|d| *d == w))
}

fn parse_days(text: &str) -> Result<[bool; 7], ScheduleError> {
    let bad = |why: String| ScheduleError::BadDays {
        days: text.to_string(),
        why,
    };
    let mut days = [false; 7];
    for part in text.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(bad("an empty entry".into()));
        }
        let (a, b) = match part.split_once('-') {
            Some((a, b)) => (a, b),
            None => (part, part),
        };
        let a = day_index(a).ok_or_else(|| bad(format!("`{a}` is not a day")))?;
        let b = day_index(b).ok_or_else(|| bad(format!("`{b}` is not a day")))?;
        let mut i = a;
        loop {
            days[i] = true;
            if i == b {
                break;
            }
            i = (i + 1) % 7;
        }
    }
    Ok(days)
}

fn parse_time(text: &str) -> Option<(u8, u8)> {
    let (h, m) = text.trim().split_once(':')?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return None;
    }
    let h: u8 = h.parse().ok()?;
    let m: u8 = m.parse().ok()?;
    ((h < 24 && m < 60) || (h == 24 && m == 0)).then_some((h, m))
}

/// Hour and minute.
type Hm = (u8, u8);

fn parse_hours(text: &str) -> Result<(Hm, Hm), ScheduleError> {
    let bad = |why: &str| ScheduleError::BadHours {
        hours: text.to_string(),
        why: why.to_string(),
    };
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| bad("no `-` between the times"))?;
    let open = parse_time(a).ok_or_else(|| bad("the opening time is not HH:MM"))?;
    let close = parse_time(b).ok_or_else(|| bad("the closing time is not HH:MM"))?;
    if open.0 == 24 {
        return Err(bad("the office cannot open at 24:00"));
    }
    if open >= close {
        return Err(bad("opening is not before closing"));
    }
    Ok((open, close))
}

/// Parse a holiday list: one `YYYY-MM-DD` per line; blank lines and `#`
/// comments (whole-line or trailing) are ignored. The error names the line.
pub fn parse_holidays(text: &str) -> Result<BTreeSet<Date>, ScheduleError> {
    let mut out = BTreeSet::new();
    for (i, line) in text.lines().enumerate() {
        let content = line.split('#').next().unwrap_or_default().trim();
        if content.is_empty() {
            continue;
        }
        let date = parse_date(content).ok_or_else(|| ScheduleError::BadHoliday {
            line: i + 1,
            text: content.to_string(),
        })?;
        out.insert(date);
    }
    Ok(out)
}

impl Schedule {
    /// The holidays it skips.
    pub fn holidays(&self) -> BTreeSet<Date> {
        match self {
            Schedule::Always => BTreeSet::new(),
            Schedule::EachOffice(default) => default.holidays(),
            Schedule::OfficeHours { holidays, .. } => holidays.clone(),
        }
    }

    /// For [`Schedule::EachOffice`]: the offices' own schedules, from
    /// `(code, hours)` pairs (hours spelled as for [`parse_schedule`]), each
    /// with this schedule's holidays. Empty for other schedules (they apply
    /// to every device alike). An office whose hours do not parse (they are
    /// checked when imported) keeps the default, with a warning.
    pub fn office_hours<'a>(
        &self,
        offices: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> OfficeHours {
        if !matches!(self, Schedule::EachOffice(_)) {
            return OfficeHours::new();
        }
        let holidays = self.holidays();
        offices
            .into_iter()
            .filter_map(|(code, spec)| match parse_schedule(spec) {
                Ok(own) => {
                    let own = match own {
                        Schedule::EachOffice(default) => *default,
                        s => s,
                    };
                    Some((code.to_string(), own.with_holidays(holidays.clone())))
                }
                Err(error) => {
                    tracing::warn!(office = code, %error, "office hours do not parse; using the defaults");
                    None
                }
            })
            .collect()
    }

    /// The schedule of a device of `office`: for [`Schedule::EachOffice`]
    /// that office's own (from [`Schedule::office_hours`]) or else the
    /// default; any other schedule is itself.
    pub fn for_office<'a>(&'a self, hours: &'a OfficeHours, office: Option<&str>) -> &'a Schedule {
        match self {
            Schedule::EachOffice(default) => office.and_then(|o| hours.get(o)).unwrap_or(default),
            other => other,
        }
    }

    /// Add holidays (office hours only: `always` means 24/7, holidays included).
    pub fn with_holidays(self, extra: BTreeSet<Date>) -> Self {
        match self {
            Schedule::Always => Schedule::Always,
            Schedule::EachOffice(default) => {
                Schedule::EachOffice(Box::new(default.with_holidays(extra)))
            }
            Schedule::OfficeHours {
                tz,
                days,
                open,
                close,
                mut holidays,
            } => {
                holidays.extend(extra);
                Schedule::OfficeHours {
                    tz,
                    days,
                    open,
                    close,
                    holidays,
                }
            }
        }
    }

    /// The open intervals `[start, end)` within `[from, to)`, Unix
    /// milliseconds, sorted, non-overlapping and non-adjacent (touching
    /// intervals, e.g. `00:00-24:00` on consecutive days, are merged).
    pub fn mask(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        if from >= to {
            return Vec::new();
        }
        if let Schedule::EachOffice(default) = self {
            return default.mask(from, to);
        }
        let Schedule::OfficeHours {
            tz,
            days,
            open,
            close,
            holidays,
        } = self
        else {
            return vec![(from, to)];
        };
        let local_date = |ms: i64| {
            Timestamp::from_millisecond(ms)
                .ok()
                .map(|t| t.to_zoned_datetime(tz.clone()).date())
        };
        let (Some(first), Some(last)) = (local_date(from), local_date(to)) else {
            return Vec::new();
        };
        // One day of margin each side: an office day's hours stay within its
        // local date, but be generous about offsets.
        let mut day = first.yesterday().unwrap_or(first);
        let last = last.tomorrow().unwrap_or(last);
        let mut out: Vec<(i64, i64)> = Vec::new();
        loop {
            let weekday = day.weekday().to_sunday_zero_offset() as usize;
            if days[weekday] && !holidays.contains(&day) {
                let start = instant(tz, day, *open);
                let end = instant(tz, day, *close);
                if let (Some(s), Some(e)) = (start, end) {
                    let (s, e) = (s.max(from), e.min(to));
                    if s < e {
                        match out.last_mut() {
                            Some(prev) if prev.1 >= s => prev.1 = prev.1.max(e),
                            _ => out.push((s, e)),
                        }
                    }
                }
            }
            if day >= last {
                break;
            }
            match day.tomorrow() {
                Ok(d) => day = d,
                Err(_) => break,
            }
        }
        out
    }
}

/// The Unix ms of local time `hm` on `day` in `tz` (`24:00` = next midnight).
fn instant(tz: &TimeZone, day: Date, hm: (u8, u8)) -> Option<i64> {
    let (day, h) = if hm.0 == 24 {
        (day.tomorrow().ok()?, 0)
    } else {
        (day, hm.0)
    };
    let dt: DateTime = day.at(h as i8, hm.1 as i8, 0, 0);
    tz.to_timestamp(dt).ok().map(|t| t.as_millisecond())
}

impl fmt::Display for Schedule {
    /// The canonical spelling, parsed back by [`parse_schedule`] (holidays
    /// are not part of it).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Schedule::Always => f.write_str("always"),
            Schedule::EachOffice(_) => f.write_str("office"),
            Schedule::OfficeHours {
                tz,
                days,
                open,
                close,
                ..
            } => {
                // Runs of three days or more as ranges (`sun-thu`).
                let mut names: Vec<String> = Vec::new();
                let mut i = 0;
                while i < 7 {
                    if !days[i] {
                        i += 1;
                        continue;
                    }
                    let mut j = i;
                    while j + 1 < 7 && days[j + 1] {
                        j += 1;
                    }
                    if j >= i + 2 {
                        names.push(format!("{}-{}", DAY_NAMES[i], DAY_NAMES[j]));
                    } else {
                        names.extend((i..=j).map(|k| DAY_NAMES[k].to_string()));
                    }
                    i = j + 1;
                }
                write!(
                    f,
                    "office:{}:{}:{:02}:{:02}-{:02}:{:02}",
                    tz.iana_name().unwrap_or("UTC"),
                    names.join(","),
                    open.0,
                    open.1,
                    close.0,
                    close.1
                )
            }
        }
    }
}

#[cfg(test)]
mod tests;
