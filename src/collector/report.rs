//! Uptime reports: per device, office or administrative area, over a window
//! and a schedule. This file owns the pure parts: parameter parsing and
//! grouping (rendering in `render.rs`). Reading the store, roll-ups and each
//! device's records for the uptime engine ([`crate::collector::uptime`]),
//! is `scope.rs` ([`figures_in_scope`]); [`run_report`] puts the two together.
//!
//! Groups are weighted by time: their durations are the sums of their
//! devices' milliseconds, and their uptime is `online / (online + offline)`
//! over those sums, `None` ("no data") when there is neither. The share of
//! each link kind is its milliseconds over the group's online milliseconds.
//! Loss is `lost / sent` over the group's probes (probe-weighted); the RTT
//! median of a group is the median of its devices' medians weighted by their
//! answered probes (the engine keeps only per-summary medians, so the true
//! median cannot be rebuilt: an approximation, as within one device).
//!
//! Which devices a report covers: every registered device, or only those in
//! the branch the reader's API token is limited to ([`Access`]), further
//! restricted to one branch when the query asks (`division`, `district`,
//! `upazila`, `office`). The HTTP side lives in
//! [`crate::collector::http`].

use crate::collector::access::{Access, Branch, Level};
use crate::collector::store::{Device, Office, Store, StoreError};
use crate::collector::uptime::Figures;
use crate::shared::schedule::{self, Schedule};
use crate::shared::time::parse_date;
use crate::wire::LinkKind;
use jiff::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::{self, Write};

/// Path of the uptime report endpoint (served by [`crate::collector::http`]).
pub const UPTIME_PATH: &str = "/api/v1/reports/uptime";
/// Longest window a report may cover.
pub const MAX_RANGE_DAYS: i64 = 400;
/// Time zone of `YYYY-MM-DD` dates in `from` and `to` (midnight there).
pub const DATE_TZ: &str = schedule::DEFAULT_TZ;
/// Group of the devices attached to no office.
pub const NO_OFFICE: &str = "(no office)";
/// Records read from the store per page.
const PAGE: i64 = 5_000;
const DAY_MS: i64 = 86_400_000;

/// How rows are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Device,
    Office,
    Upazila,
    District,
    Division,
}

impl GroupBy {
    pub const VALID: &'static str = "device, office, upazila, district, division";

    pub fn parse(s: &str) -> Option<GroupBy> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "device" => GroupBy::Device,
            "office" => GroupBy::Office,
            "upazila" => GroupBy::Upazila,
            "district" => GroupBy::District,
            "division" => GroupBy::Division,
            _ => return None,
        })
    }
}

impl GroupBy {
    /// The spelling `parse` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Device => "device",
            GroupBy::Office => "office",
            GroupBy::Upazila => "upazila",
            GroupBy::District => "district",
            GroupBy::Division => "division",
        }
    }
}

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a report covers.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportQuery {
    /// Window `[from_ms, to_ms)`, Unix ms.
    pub from_ms: i64,
    pub to_ms: i64,
    pub by: GroupBy,
    pub schedule: Schedule,
    /// Target uptime in percent; rows then say whether they meet it.
    pub target_pct: Option<f64>,
    /// Only the worst this many rows.
    pub limit: Option<usize>,
    /// Only this branch (level and name as given; resolved against the
    /// offices when the report runs).
    pub branch: Option<(Level, String)>,
}

/// Largest `limit` accepted.
pub const MAX_LIMIT: usize = 100_000;

/// A report parameter that cannot be used; `field` names it (`from`, `to`,
/// `by`, `schedule`, `target`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParamError {
    pub field: &'static str,
    pub message: String,
}

fn param(field: &'static str, message: impl Into<String>) -> ParamError {
    ParamError {
        field,
        message: message.into(),
    }
}

/// The raw parameters, as text (CLI flags or query string).
#[derive(Debug, Clone, Default)]
pub struct RawQuery<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub by: Option<&'a str>,
    pub schedule: Option<&'a str>,
    pub target: Option<&'a str>,
    pub limit: Option<&'a str>,
    pub division: Option<&'a str>,
    pub district: Option<&'a str>,
    pub upazila: Option<&'a str>,
    pub office: Option<&'a str>,
}

impl RawQuery<'_> {
    /// The one branch filter given, if any; two or more are refused, naming
    /// the second.
    pub fn branch(&self) -> Result<Option<(Level, String)>, ParamError> {
        let given = [
            (Level::Division, self.division),
            (Level::District, self.district),
            (Level::Upazila, self.upazila),
            (Level::Office, self.office),
        ];
        let mut found: Option<(Level, String)> = None;
        for (level, v) in given {
            let Some(v) = v else { continue };
            if let Some((first, _)) = &found {
                return Err(param(
                    level.as_str(),
                    format!(
                        "give one of division, district, upazila, office: `{first}` and `{level}` both given"
                    ),
                ));
            }
            found = Some((level, v.to_string()));
        }
        Ok(found)
    }
}

/// The window `[from, to)` of `from` and `to` (both required), checked: `to`
/// after `from`, at most [`MAX_RANGE_DAYS`] long.
pub fn parse_window(from: Option<&str>, to: Option<&str>) -> Result<(i64, i64), ParamError> {
    let from = from.ok_or_else(|| param("from", "`from` is required (RFC 3339 or YYYY-MM-DD)"))?;
    let to = to.ok_or_else(|| param("to", "`to` is required (RFC 3339 or YYYY-MM-DD)"))?;
    let from_ms = parse_instant("from", from)?;
    let to_ms = parse_instant("to", to)?;
    if to_ms <= from_ms {
        return Err(param("to", "`to` must be after `from`"));
    }
    if to_ms - from_ms > MAX_RANGE_DAYS * DAY_MS {
        return Err(param(
            "to",
            format!("the range from `from` to `to` is longer than {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok((from_ms, to_ms))
}

/// `by`: defaults to `office`.
pub fn parse_by(by: Option<&str>) -> Result<GroupBy, ParamError> {
    match by {
        None => Ok(GroupBy::Office),
        Some(b) => GroupBy::parse(b).ok_or_else(|| {
            param(
                "by",
                format!("unknown `by` = `{b}`: use one of {}", GroupBy::VALID),
            )
        }),
    }
}

/// `schedule`: defaults to `office`.
pub fn parse_schedule(text: Option<&str>) -> Result<Schedule, ParamError> {
    schedule::parse_schedule(text.unwrap_or("office"))
        .map_err(|e| param("schedule", format!("`schedule`: {e}")))
}

/// An instant: RFC 3339 (`2026-11-29T09:00:00+06:00`) or a date
/// (`2026-11-29`, midnight in Asia/Dhaka).
pub fn parse_instant(field: &'static str, text: &str) -> Result<i64, ParamError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(param(field, format!("`{field}` is empty")));
    }
    let bad = || {
        param(
            field,
            format!(
                "`{field}` = `{t}` is neither an RFC 3339 time (2026-11-29T09:00:00+06:00) \
                 nor a date (2026-11-29, midnight {DATE_TZ})"
            ),
        )
    };
    if let Some(d) = parse_date(t) {
        let tz = jiff::tz::db()
            .get(DATE_TZ)
            .or_else(|_| jiff::tz::TimeZoneDatabase::bundled().get(DATE_TZ))
            .map_err(|_| bad())?;
        return tz
            .to_timestamp(d.at(0, 0, 0, 0))
            .map(|ts| ts.as_millisecond())
            .map_err(|_| bad());
    }
    // RFC 3339 requires a date, a `T` (or space) and an offset.
    if t.len() < 20 {
        return Err(bad());
    }
    t.parse::<Timestamp>()
        .map(|ts| ts.as_millisecond())
        .map_err(|_| bad())
}

impl ReportQuery {
    /// Check and convert the parameters. `from` and `to` are required; `by`
    /// defaults to `office`, `schedule` to `office` (Asia/Dhaka, Sunday to
    /// Thursday, 09:00-17:00).
    pub fn parse(raw: &RawQuery<'_>) -> Result<ReportQuery, ParamError> {
        let (from_ms, to_ms) = parse_window(raw.from, raw.to)?;
        let by = parse_by(raw.by)?;
        let schedule = parse_schedule(raw.schedule)?;
        let target_pct = match raw.target.map(str::trim) {
            None | Some("") => None,
            Some(t) => {
                let v: f64 = t
                    .parse()
                    .map_err(|_| param("target", format!("`target` = `{t}` is not a number")))?;
                if !(0.0..=100.0).contains(&v) {
                    return Err(param(
                        "target",
                        format!("`target` = `{t}` is not a percentage between 0 and 100"),
                    ));
                }
                Some(v)
            }
        };
        let limit = match raw.limit.map(str::trim) {
            None | Some("") => None,
            Some(t) => match t.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Some(n),
                _ => {
                    return Err(param(
                        "limit",
                        format!("`limit` = `{t}` is not a whole number from 1 to {MAX_LIMIT}"),
                    ));
                }
            },
        };
        Ok(ReportQuery {
            from_ms,
            to_ms,
            by,
            schedule,
            target_pct,
            limit,
            branch: raw.branch()?,
        })
    }
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A parameter names something that is not there (an unknown branch).
    #[error(transparent)]
    Param(#[from] ParamError),
    #[error("internal error: {0}")]
    Internal(String),
    #[error("stored record {seq} of device `{device}` is unreadable: {error}")]
    BadRecord {
        device: String,
        seq: i64,
        error: String,
    },
}

/// One row of a report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub group: String,
    pub devices: u32,
    pub online_ms: i64,
    pub offline_ms: i64,
    pub not_running_ms: i64,
    pub no_data_ms: i64,
    /// Percent; `None` when there was no online or offline time.
    pub uptime_pct: Option<f64>,
    /// `uptime_pct` as shown: `92.9%` or `no data`.
    pub uptime: String,
    /// Against the target, when one was given and there is an uptime.
    pub compliant: Option<bool>,
    pub outages: u32,
    pub longest_outage_ms: Option<i64>,
    pub mean_time_to_recover_ms: Option<i64>,
    /// Online time carried by each kind of link (may sum to less than
    /// `online_ms`: time only heartbeats tell about is not attributed).
    pub broadband_ms: i64,
    pub wifi_ms: i64,
    pub mobile_ms: i64,
    /// The same as percentages of `online_ms`; `None` without online time.
    pub broadband_pct: Option<f64>,
    pub wifi_pct: Option<f64>,
    pub mobile_pct: Option<f64>,
    /// Switches of the default route from one link to another.
    pub failovers: u32,
    /// Median probe round-trip time (see the module documentation).
    pub rtt_p50_ms: Option<f64>,
    /// Probes lost over probes sent, percent; `None` without probes.
    pub loss_pct: Option<f64>,
}

/// A report: its parameters and rows, worst uptime first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from_ms: i64,
    pub to_ms: i64,
    pub by: GroupBy,
    pub schedule: String,
    pub target_pct: Option<f64>,
    /// The query's `limit`: only the worst this many rows are shown.
    pub limit: Option<usize>,
    /// The branch the query restricted the report to.
    pub branch: Option<Branch>,
    /// The branch the reader's token is limited to.
    pub token_branch: Option<Branch>,
    pub rows: Vec<Row>,
}

/// Text of an uptime: `92.9%` or `no data`.
pub fn uptime_text(pct: Option<f64>) -> String {
    match pct {
        Some(p) => format!("{p:.1}%"),
        None => "no data".into(),
    }
}

/// The group of a device.
pub fn group_of(by: GroupBy, device: &Device, offices: &BTreeMap<String, Office>) -> String {
    if by == GroupBy::Device {
        return device.name.clone();
    }
    let Some(o) = device.office.as_ref().and_then(|c| offices.get(c)) else {
        return NO_OFFICE.to_string();
    };
    match by {
        GroupBy::Device => unreachable!(),
        GroupBy::Office => o.code.clone(),
        // Qualified: upazila and district names repeat across the country.
        GroupBy::Upazila => format!("{} / {} / {}", o.division, o.district, o.upazila),
        GroupBy::District => format!("{} / {}", o.division, o.district),
        GroupBy::Division => o.division.clone(),
    }
}

#[derive(Default)]
struct Acc {
    devices: u32,
    online: i64,
    offline: i64,
    not_running: i64,
    no_data: i64,
    outages: u32,
    outage_total: i64,
    longest: Option<i64>,
    kinds: BTreeMap<LinkKind, i64>,
    failovers: u32,
    sent: f64,
    lost: f64,
    /// Device RTT medians and their answered probes.
    rtts: Vec<(f64, f64)>,
}

/// The weighted median of `(value, weight)` pairs (the smallest value at
/// which half the weight is reached); `None` without weight.
pub fn weighted_median(mut v: Vec<(f64, f64)>) -> Option<f64> {
    v.retain(|(x, w)| x.is_finite() && *w > 0.0);
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = v.iter().map(|x| x.1).sum::<f64>() / 2.0;
    let mut acc = 0.0;
    v.iter().find_map(|(x, w)| {
        acc += w;
        (acc >= half).then_some(*x)
    })
}

/// Group the devices' figures into rows, worst uptime first (no data last,
/// then by group name).
pub fn build_rows(
    by: GroupBy,
    target_pct: Option<f64>,
    per_device: &[(Device, Figures)],
    offices: &[Office],
) -> Vec<Row> {
    let offices: BTreeMap<String, Office> = offices
        .iter()
        .map(|o| (o.code.clone(), o.clone()))
        .collect();
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    for (d, f) in per_device {
        let a = groups.entry(group_of(by, d, &offices)).or_default();
        a.devices += 1;
        a.online += f.online_ms;
        a.offline += f.offline_ms;
        a.not_running += f.not_running_ms;
        a.no_data += f.no_data_ms;
        a.outages += f.outage_count;
        a.outage_total += f.outage_ms;
        if let Some(l) = f.longest_outage_ms {
            a.longest = Some(a.longest.map_or(l, |x| x.max(l)));
        }
        for (k, ms) in &f.per_kind_ms {
            *a.kinds.entry(*k).or_default() += ms;
        }
        a.failovers += f.failovers;
        a.sent += f.probes_sent;
        a.lost += f.probes_lost;
        if let Some(r) = f.rtt_p50_ms {
            a.rtts.push((r, f.probes_sent - f.probes_lost));
        }
    }
    let mut rows: Vec<Row> = groups
        .into_iter()
        .map(|(group, a)| {
            let kind = |k: LinkKind| a.kinds.get(&k).copied().unwrap_or(0);
            let share = |ms: i64| (a.online > 0).then(|| ms as f64 * 100.0 / a.online as f64);
            let judged = a.online + a.offline;
            let uptime_pct = (judged > 0).then(|| a.online as f64 * 100.0 / judged as f64);
            Row {
                group,
                devices: a.devices,
                online_ms: a.online,
                offline_ms: a.offline,
                not_running_ms: a.not_running,
                no_data_ms: a.no_data,
                uptime_pct,
                uptime: uptime_text(uptime_pct),
                compliant: target_pct.and_then(|t| uptime_pct.map(|u| u + 1e-9 >= t)),
                outages: a.outages,
                longest_outage_ms: a.longest,
                mean_time_to_recover_ms: (a.outages > 0)
                    .then(|| a.outage_total / i64::from(a.outages)),
                broadband_ms: kind(LinkKind::Broadband),
                wifi_ms: kind(LinkKind::Wifi),
                mobile_ms: kind(LinkKind::Mobile),
                broadband_pct: share(kind(LinkKind::Broadband)),
                wifi_pct: share(kind(LinkKind::Wifi)),
                mobile_pct: share(kind(LinkKind::Mobile)),
                failovers: a.failovers,
                rtt_p50_ms: weighted_median(a.rtts),
                loss_pct: (a.sent > 0.0).then(|| 100.0 * a.lost / a.sent),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        let key = |r: &Row| r.uptime_pct.unwrap_or(f64::INFINITY);
        key(a)
            .total_cmp(&key(b))
            .then_with(|| a.group.cmp(&b.group))
    });
    rows
}

/// Make the report for a reader (`access`; `None`: everything, as the
/// command line on the database sees it), grouped as the query says, worst
/// first, cut to the query's `limit`.
pub async fn run_report(
    store: &dyn Store,
    q: &ReportQuery,
    access: Option<&Access>,
    now_ms: i64,
) -> Result<Report, ReportError> {
    let (per_device, offices, branch) =
        figures_in_scope(store, q, access, now_ms, Uses::Report).await?;
    let mut rows = build_rows(q.by, q.target_pct, &per_device, &offices);
    if let Some(n) = q.limit {
        rows.truncate(n);
    }
    Ok(Report {
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        by: q.by,
        schedule: q.schedule.to_string(),
        target_pct: q.target_pct,
        limit: q.limit,
        branch,
        token_branch: access.and_then(|a| a.branch.clone()),
        rows,
    })
}

mod render;
mod scope;

pub use render::{
    CSV_COLUMNS, CSV_HEADER, human_ms, render_csv, render_json, render_table, render_table_in, ts,
};
pub(crate) use scope::to_rec;
pub use scope::{
    Uses, all_records, device_figures, figures_in_scope, records_around, select_devices,
};

#[cfg(test)]
mod tests;
