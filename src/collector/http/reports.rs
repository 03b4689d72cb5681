//! The read API's figures for IT staff (see `docs/api.md`): the uptime
//! report, the outage list and a device's timeline. Each handler checks the
//! token, parses and checks the parameters (400 naming the parameter), asks
//! [`crate::collector::report`], [`crate::collector::outages`] or
//! [`crate::collector::timeline`], and renders JSON or CSV.

use super::auth::{authenticate, visible_device};
use super::error::ReadError;
use super::params::{csv, query_params, wants_csv};
use super::state::ApiState;
use crate::collector::outages;
use crate::collector::report::{
    self, RawQuery, ReportQuery, parse_by, parse_schedule, parse_window,
};
use crate::collector::timeline::{device_timeline_of, timeline_body};
use crate::shared::time::now_ms;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};

/// `GET`: uptime report.
pub const UPTIME_PATH: &str = report::UPTIME_PATH;
/// `GET`: one device's timeline.
pub const TIMELINE_PATH: &str = "/api/v1/devices/{name}/timeline";
/// `GET`: outage list.
pub const OUTAGES_PATH: &str = "/api/v1/outages";

const REPORT_PARAMS: &[&str] = &[
    "from", "to", "by", "schedule", "target", "format", "limit", "division", "district", "upazila",
    "office",
];

/// `GET /api/v1/reports/uptime`.
pub(super) async fn uptime_report(
    State(st): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ReadError> {
    let access = authenticate(&st, &headers).await?;
    let p = query_params(&uri, REPORT_PARAMS)?;
    let as_csv = wants_csv(&p)?;
    let get = |k: &str| p.get(k).map(String::as_str);
    let q = ReportQuery::parse(&RawQuery {
        from: get("from"),
        to: get("to"),
        by: get("by"),
        schedule: get("schedule"),
        target: get("target"),
        limit: get("limit"),
        division: get("division"),
        district: get("district"),
        upazila: get("upazila"),
        office: get("office"),
    })?;
    let q = ReportQuery {
        schedule: q.schedule.with_holidays(st.holidays().clone()),
        ..q
    };
    let r = report::run_report(st.store().as_ref(), &q, Some(&access), now_ms()).await?;
    Ok(if as_csv {
        csv(report::render_csv(&r))
    } else {
        Json(r).into_response()
    })
}

const OUTAGE_PARAMS: &[&str] = &[
    "from", "to", "by", "group", "schedule", "format", "division", "district", "upazila", "office",
];

/// `GET /api/v1/outages`.
pub(super) async fn outage_list(
    State(st): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ReadError> {
    let access = authenticate(&st, &headers).await?;
    let p = query_params(&uri, OUTAGE_PARAMS)?;
    let as_csv = wants_csv(&p)?;
    let get = |k: &str| p.get(k).map(String::as_str);
    let (from_ms, to_ms) = parse_window(get("from"), get("to"))?;
    let by = parse_by(get("by"))?;
    let schedule = parse_schedule(get("schedule"))?.with_holidays(st.holidays().clone());
    let group = match get("group").map(str::trim) {
        Some("") => return Err(ReadError::param("group", "`group` is empty")),
        g => g,
    };
    let raw = RawQuery {
        division: get("division"),
        district: get("district"),
        upazila: get("upazila"),
        office: get("office"),
        ..Default::default()
    };
    let q = ReportQuery {
        from_ms,
        to_ms,
        by,
        schedule,
        target_pct: None,
        limit: None,
        branch: raw.branch()?,
    };
    let list = outages::list(st.store().as_ref(), &q, group, &access, now_ms()).await?;
    Ok(if as_csv {
        csv(outages::render_csv(&list))
    } else {
        Json(list).into_response()
    })
}

/// `GET /api/v1/devices/{name}/timeline`.
pub(super) async fn device_timeline(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, ReadError> {
    let access = authenticate(&st, &headers).await?;
    let p = query_params(&uri, &["from", "to"])?;
    let (from_ms, to_ms) = parse_window(
        p.get("from").map(String::as_str),
        p.get("to").map(String::as_str),
    )?;
    let d = visible_device(&st, &access, &name).await?;
    let tl = device_timeline_of(st.store().as_ref(), &d, from_ms, to_ms, now_ms()).await?;
    Ok(Json(timeline_body(&d, &tl, from_ms, to_ms)).into_response())
}
