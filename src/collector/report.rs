//! Uptime reports: per device, office or administrative area, over a window
//! and a schedule. The pure parts (parameter parsing, grouping, rendering)
//! are separate from the one function that reads the store ([`run_report`]),
//! which feeds each device's records to the uptime engine
//! ([`crate::collector::uptime`]).
//!
//! Groups are weighted by time: their durations are the sums of their
//! devices' milliseconds, and their uptime is `online / (online + offline)`
//! over those sums, `None` ("no data") when there is neither.

use crate::collector::api::{ApiState, ErrorBody};
use crate::collector::schedule::{self, Schedule};
use crate::collector::store::{Device, Office, Store, StoreError};
use crate::collector::uptime::{self, Figures, Params, Rec};
use crate::wire::v1::Body;
use axum::Json;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use jiff::civil::Date;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt::{self, Write};
use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

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

impl fmt::Display for GroupBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GroupBy::Device => "device",
            GroupBy::Office => "office",
            GroupBy::Upazila => "upazila",
            GroupBy::District => "district",
            GroupBy::Division => "division",
        })
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
}

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
}

/// Strictly `YYYY-MM-DD`.
fn parse_date(s: &str) -> Option<Date> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    Date::new(
        s[0..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..10].parse().ok()?,
    )
    .ok()
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
        let from = raw
            .from
            .ok_or_else(|| param("from", "`from` is required (RFC 3339 or YYYY-MM-DD)"))?;
        let to = raw
            .to
            .ok_or_else(|| param("to", "`to` is required (RFC 3339 or YYYY-MM-DD)"))?;
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
        let by = match raw.by {
            None => GroupBy::Office,
            Some(b) => GroupBy::parse(b).ok_or_else(|| {
                param(
                    "by",
                    format!("unknown `by` = `{b}`: use one of {}", GroupBy::VALID),
                )
            })?,
        };
        let schedule = schedule::parse_schedule(raw.schedule.unwrap_or("office"))
            .map_err(|e| param("schedule", format!("`schedule`: {e}")))?;
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
        Ok(ReportQuery {
            from_ms,
            to_ms,
            by,
            schedule,
            target_pct,
        })
    }
}

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
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
}

/// A report: its parameters and rows, worst uptime first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub from_ms: i64,
    pub to_ms: i64,
    pub by: GroupBy,
    pub schedule: String,
    pub target_pct: Option<f64>,
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
        a.outage_total += f.outages.iter().map(|o| o.end - o.start).sum::<i64>();
        if let Some(l) = f.longest_outage_ms {
            a.longest = Some(a.longest.map_or(l, |x| x.max(l)));
        }
    }
    let mut rows: Vec<Row> = groups
        .into_iter()
        .map(|(group, a)| {
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

/// A stored record as the engine takes it.
fn to_rec(device: &str, r: crate::collector::store::StoredRecord) -> Result<Rec, ReportError> {
    let bad = |error: String| ReportError::BadRecord {
        device: device.to_string(),
        seq: r.seq,
        error,
    };
    let body: Body = serde_json::from_str(&r.body).map_err(|e| bad(e.to_string()))?;
    let seq = u64::try_from(r.seq).map_err(|_| bad("negative seq".into()))?;
    Ok(Rec {
        seq,
        seq_end: u64::try_from(r.seq_end).unwrap_or(seq).max(seq),
        at_ms: r.at_ms,
        mono_ms: u64::try_from(r.mono_ms).unwrap_or(0),
        boot_id: r.boot_id,
        body,
    })
}

/// All records of a device, paging through the store.
async fn all_records(store: &dyn Store, device: &Device) -> Result<Vec<Rec>, ReportError> {
    let mut out = Vec::new();
    let mut from = 0;
    loop {
        let page = store.records(device.id, from, PAGE).await?;
        let n = page.len();
        for r in page {
            from = from.max(r.seq + 1);
            out.push(to_rec(&device.name, r)?);
        }
        if (n as i64) < PAGE {
            return Ok(out);
        }
    }
}

/// The figures of one device over the query's window and schedule.
pub fn device_figures(recs: &[Rec], q: &ReportQuery, now_ms: i64) -> Figures {
    let tl = uptime::timeline(recs, q.from_ms, q.to_ms, now_ms, &Params::default());
    uptime::figures(&tl, recs, &q.schedule.mask(q.from_ms, q.to_ms))
}

/// Make the report: every registered device (revoked ones too: their past
/// counts), grouped as the query says.
pub async fn run_report(
    store: &dyn Store,
    q: &ReportQuery,
    now_ms: i64,
) -> Result<Report, ReportError> {
    let devices = store.list_devices().await?;
    let offices = store.list_offices().await?;
    let mut per_device = Vec::with_capacity(devices.len());
    for d in devices {
        let recs = all_records(store, &d).await?;
        let f = device_figures(&recs, q, now_ms);
        per_device.push((d, f));
    }
    Ok(Report {
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        by: q.by,
        schedule: q.schedule.to_string(),
        target_pct: q.target_pct,
        rows: build_rows(q.by, q.target_pct, &per_device, &offices),
    })
}

// ---------------------------------------------------------------------------
// Rendering

/// Pretty JSON.
pub fn render_json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_default() + "\n"
}

/// One CSV field, quoted when needed (RFC 4180).
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ') {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

pub const CSV_HEADER: &str = "group,devices,online_ms,offline_ms,not_running_ms,no_data_ms,\
uptime_pct,uptime,compliant,outages,longest_outage_ms,mean_time_to_recover_ms";

/// CSV: a header line, then one line per row. `uptime_pct` is empty and
/// `uptime` says `no data` when there is none.
pub fn render_csv(r: &Report) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push_str("\r\n");
    for row in &r.rows {
        let fields = [
            csv_field(&row.group),
            row.devices.to_string(),
            row.online_ms.to_string(),
            row.offline_ms.to_string(),
            row.not_running_ms.to_string(),
            row.no_data_ms.to_string(),
            opt(row.uptime_pct.map(|p| format!("{p:.3}"))),
            csv_field(&row.uptime),
            opt(row.compliant),
            row.outages.to_string(),
            opt(row.longest_outage_ms),
            opt(row.mean_time_to_recover_ms),
        ];
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// A duration for people: `6h 30m`, `45m`, `12s`, `0m`.
pub fn human_ms(ms: i64) -> String {
    let s = ms / 1000;
    let (h, m) = (s / 3600, (s % 3600) / 60);
    match (h, m) {
        (0, 0) if s > 0 => format!("{s}s"),
        (0, m) => format!("{m}m"),
        (h, 0) => format!("{h}h"),
        (h, m) => format!("{h}h {m}m"),
    }
}

fn ts(ms: i64) -> String {
    Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// Aligned text table with a title line.
pub fn render_table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "uptime by {} from {} to {}, schedule {}{}",
        r.by,
        ts(r.from_ms),
        ts(r.to_ms),
        r.schedule,
        r.target_pct
            .map(|t| format!(", target {t}%"))
            .unwrap_or_default()
    );
    let header = [
        "GROUP",
        "DEVICES",
        "UPTIME",
        "ONLINE",
        "OFFLINE",
        "NOT RUNNING",
        "NO DATA",
        "OUTAGES",
        "LONGEST",
        "MTTR",
        "COMPLIANT",
    ];
    let rows: Vec<[String; 11]> = r
        .rows
        .iter()
        .map(|row| {
            [
                row.group.clone(),
                row.devices.to_string(),
                row.uptime.clone(),
                human_ms(row.online_ms),
                human_ms(row.offline_ms),
                human_ms(row.not_running_ms),
                human_ms(row.no_data_ms),
                row.outages.to_string(),
                row.longest_outage_ms.map_or("-".into(), human_ms),
                row.mean_time_to_recover_ms.map_or("-".into(), human_ms),
                match row.compliant {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "-".into(),
                },
            ]
        })
        .collect();
    let mut w = header.map(|h| h.chars().count());
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = w[i] - c.chars().count();
            if i == 0 {
                s.push_str(c);
                s.push_str(&" ".repeat(pad));
            } else {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            }
        }
        s.trim_end().to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row));
    }
    if rows.is_empty() {
        out.push_str("(no devices)\n");
    }
    out
}

// ---------------------------------------------------------------------------
// HTTP

/// Path of the uptime report endpoint.
pub const UPTIME_PATH: &str = "/api/v1/reports/uptime";
/// Why a non-loopback client is refused.
pub const LOOPBACK_ONLY: &str = "reports are available on loopback only until read tokens exist";

/// `GET /api/v1/reports/uptime?from=&to=&by=&schedule=&target=&format=json|csv`.
///
/// Authentication: read tokens with roles (who may see which offices) are not
/// built yet. Until they are, reports are served only to clients on a
/// loopback address (the collector's own host, e.g. through an SSH tunnel);
/// everyone else gets 403. The peer address comes from axum's
/// `ConnectInfo<SocketAddr>`: when the server does not provide it (a router
/// not served with `into_make_service_with_connect_info`), the request is
/// refused too — fail closed, never open to the world.
pub async fn uptime_endpoint(State(st): State<ApiState>, req: Request) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if !peer.is_some_and(|ip| ip.is_loopback() || ip.to_canonical().is_loopback()) {
        return error(StatusCode::FORBIDDEN, LOOPBACK_ONLY, None);
    }
    let params: HashMap<String, String> = match Query::try_from_uri(req.uri()) {
        Ok(Query(p)) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.body_text(), None),
    };
    let get = |k: &str| params.get(k).map(String::as_str);
    let csv = match get("format").map(str::trim) {
        None | Some("") | Some("json") => false,
        Some("csv") => true,
        Some(f) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("unknown `format` = `{f}`: use json or csv"),
                Some("format"),
            );
        }
    };
    let raw = RawQuery {
        from: get("from"),
        to: get("to"),
        by: get("by"),
        schedule: get("schedule"),
        target: get("target"),
    };
    let q = match ReportQuery::parse(&raw) {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, &e.message, Some(e.field)),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    match run_report(st.store().as_ref(), &q, now).await {
        Ok(r) if csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            render_csv(&r),
        )
            .into_response(),
        Ok(r) => Json(r).into_response(),
        Err(ReportError::Store(e)) => {
            tracing::error!(error = %e, "uptime report: store failed");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage unavailable: retry later",
                None,
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "uptime report failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string(), None)
        }
    }
}

fn error(status: StatusCode, message: &str, field: Option<&str>) -> Response {
    (
        status,
        Json(ErrorBody {
            error: message.to_string(),
            field: field.map(String::from),
        }),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(from: &'a str, to: &'a str) -> RawQuery<'a> {
        RawQuery {
            from: Some(from),
            to: Some(to),
            ..Default::default()
        }
    }

    #[test]
    fn dates_are_dhaka_midnight_and_rfc3339_is_taken() {
        let q = ReportQuery::parse(&raw("2026-11-29", "2026-11-30")).unwrap();
        assert_eq!(ts(q.from_ms), "2026-11-28T18:00:00Z");
        assert_eq!(q.to_ms - q.from_ms, DAY_MS);
        assert_eq!(q.by, GroupBy::Office);
        let q =
            ReportQuery::parse(&raw("2026-11-29T09:00:00+06:00", "2026-11-29T17:00:00Z")).unwrap();
        assert_eq!(ts(q.from_ms), "2026-11-29T03:00:00Z");
        for bad in [
            "2026-11-31",
            "29/11/2026",
            "2026-11-29T09:00",
            "yesterday",
            "",
        ] {
            let e = ReportQuery::parse(&raw(bad, "2026-12-01")).unwrap_err();
            assert_eq!(e.field, "from", "{bad}: {e}");
        }
    }

    #[test]
    fn errors_name_the_parameter() {
        let e = ReportQuery::parse(&raw("2026-11-30", "2026-11-29")).unwrap_err();
        assert_eq!(
            (e.field, e.message.as_str()),
            ("to", "`to` must be after `from`")
        );
        let e = ReportQuery::parse(&raw("2026-11-29", "2026-11-29")).unwrap_err();
        assert_eq!(e.field, "to");
        let e = ReportQuery::parse(&raw("2025-01-01", "2026-11-29")).unwrap_err();
        assert_eq!(e.field, "to");
        assert!(e.message.contains("400 days"), "{e}");
        let mut r = raw("2026-11-29", "2026-11-30");
        r.by = Some("ward");
        let e = ReportQuery::parse(&r).unwrap_err();
        assert_eq!(e.field, "by");
        assert!(e.message.contains(GroupBy::VALID), "{e}");
        r.by = Some("district");
        r.schedule = Some("office:Asia/Dhakka");
        let e = ReportQuery::parse(&r).unwrap_err();
        assert_eq!(e.field, "schedule");
        assert!(e.message.contains("Asia/Dhakka"), "{e}");
        r.schedule = Some("always");
        r.target = Some("101");
        assert_eq!(ReportQuery::parse(&r).unwrap_err().field, "target");
        r.target = Some("99.5");
        let q = ReportQuery::parse(&r).unwrap();
        assert_eq!(
            (q.by, q.schedule, q.target_pct),
            (GroupBy::District, Schedule::Always, Some(99.5))
        );
        let e = ReportQuery::parse(&RawQuery::default()).unwrap_err();
        assert_eq!(e.field, "from");
    }

    fn dev(id: i64, name: &str, office: Option<&str>) -> Device {
        Device {
            id,
            name: name.into(),
            office: office.map(String::from),
            revoked: false,
            acked: 0,
            created_at_ms: 0,
        }
    }

    fn fig(online: i64, offline: i64) -> Figures {
        Figures {
            online_ms: online,
            offline_ms: offline,
            ..Default::default()
        }
    }

    #[test]
    fn groups_sum_time_and_sort_worst_first() {
        let offices = vec![Office {
            code: "o1".into(),
            name: "Office 1".into(),
            division: "Dhaka".into(),
            district: "Dhaka".into(),
            upazila: "Savar".into(),
        }];
        let per = vec![
            (dev(1, "a", Some("o1")), fig(90, 10)),
            (dev(2, "b", Some("o1")), fig(10, 90)),
            (dev(3, "c", None), fig(0, 0)),
            (dev(4, "d", None), fig(50, 0)),
        ];
        let rows = build_rows(GroupBy::Office, Some(90.0), &per, &offices);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].group, "o1");
        assert_eq!(rows[0].uptime_pct, Some(50.0));
        assert_eq!(rows[0].compliant, Some(false));
        assert_eq!(rows[1].group, NO_OFFICE);
        assert_eq!(rows[1].uptime, "100.0%");
        let rows = build_rows(GroupBy::Device, None, &per, &offices);
        let names: Vec<&str> = rows.iter().map(|r| r.group.as_str()).collect();
        assert_eq!(names, ["b", "a", "d", "c"]);
        assert_eq!(rows[3].uptime, "no data");
        assert_eq!(rows[3].compliant, None);
        let rows = build_rows(GroupBy::Upazila, None, &per, &offices);
        assert_eq!(rows[0].group, "Dhaka / Dhaka / Savar");
    }

    #[test]
    fn csv_quotes_and_table_aligns() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(human_ms(23_400_000), "6h 30m");
        assert_eq!(human_ms(1_800_000), "30m");
        assert_eq!(human_ms(3_600_000), "1h");
        assert_eq!(human_ms(0), "0m");
        let r = Report {
            from_ms: 0,
            to_ms: DAY_MS,
            by: GroupBy::Device,
            schedule: "always".into(),
            target_pct: None,
            rows: build_rows(
                GroupBy::Device,
                None,
                &[(dev(1, "x,y", None), fig(1, 0))],
                &[],
            ),
        };
        let csv = render_csv(&r);
        assert!(csv.starts_with(CSV_HEADER), "{csv}");
        assert!(
            csv.contains("\r\n\"x,y\",1,1,0,0,0,100.000,100.0%,,0,,\r\n"),
            "{csv}"
        );
        let t = render_table(&r);
        assert!(t.contains("100.0%"), "{t}");
    }
}
