//! The read API for IT staff (see `docs/api.md`): uptime reports, a device's
//! timeline, outage lists, and for admin tokens the device list and device
//! revocation. Owns the API-token authentication of these endpoints, their
//! query-parameter checks (400 naming the parameter) and the mapping of
//! failures to status codes. The figures come from
//! [`crate::collector::report`], [`crate::collector::outages`] and the
//! uptime engine; who sees what from [`crate::collector::access`].
//!
//! Authentication: `Authorization: Bearer TOKEN` with an API token made by
//! `linkwatch token add`. No or a malformed header, an unknown or a revoked
//! token: 401. A device's (ingest) token: 403. A token limited to a branch
//! sees only the devices of that branch; a device outside it is answered 404,
//! as one that does not exist.

use crate::collector::access::{Access, Role};
use crate::collector::api::{ApiState, ErrorBody, bearer_token};
use crate::collector::devices::token_hash;
use crate::collector::outages::{self, OutageList};
use crate::collector::report::{
    self, ParamError, RawQuery, ReportError, ReportQuery, parse_by, parse_schedule, parse_window,
    ts,
};
use crate::collector::rollup;
use crate::collector::store::{Office, StoreError};
use crate::collector::uptime::{self, DeviceState, Interval, Params};
use crate::wire::{LinkKind, LinkState};
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// `GET`: uptime report.
pub const UPTIME_PATH: &str = report::UPTIME_PATH;
/// `GET`: one device's timeline.
pub const TIMELINE_PATH: &str = "/api/v1/devices/{name}/timeline";
/// `GET`: outage list.
pub const OUTAGES_PATH: &str = "/api/v1/outages";
/// `GET` (admin): device list.
pub const DEVICES_PATH: &str = "/api/v1/devices";
/// `POST` (admin): revoke a device's token.
pub const REVOKE_PATH: &str = "/api/v1/devices/{name}/revoke";

/// Why a read request was refused; each maps to one status code.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadError {
    /// 401: no usable `Authorization: Bearer` header.
    MissingToken(String),
    /// 401: a token that is no API token, or a revoked one.
    InvalidToken(&'static str),
    /// 403: a device's ingest token.
    DeviceToken,
    /// 403: a read-only token on an admin endpoint.
    NotAdmin,
    /// 404: no such device, or not one this token may see.
    NotFound(String),
    /// 400: a parameter that cannot be used.
    Param(ParamError),
    /// 503: the store failed.
    Unavailable,
    /// 500: stored data that cannot be read.
    Internal(String),
}

impl ReadError {
    pub fn status(&self) -> StatusCode {
        match self {
            ReadError::MissingToken(_) | ReadError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ReadError::DeviceToken | ReadError::NotAdmin => StatusCode::FORBIDDEN,
            ReadError::NotFound(_) => StatusCode::NOT_FOUND,
            ReadError::Param(_) => StatusCode::BAD_REQUEST,
            ReadError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ReadError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let (error, field) = match self {
            ReadError::MissingToken(m) => (m.clone(), None),
            ReadError::InvalidToken(m) => (m.to_string(), None),
            ReadError::DeviceToken => (
                "this is a device's upload token: reading needs an API token \
                 (linkwatch token add)"
                    .to_string(),
                None,
            ),
            ReadError::NotAdmin => ("this needs an admin token".to_string(), None),
            ReadError::NotFound(m) => (m.clone(), None),
            ReadError::Param(p) => (p.message.clone(), Some(p.field.to_string())),
            ReadError::Unavailable => ("storage unavailable: retry later".to_string(), None),
            ReadError::Internal(m) => (m.clone(), None),
        };
        ErrorBody { error, field }
    }
}

impl IntoResponse for ReadError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), Json(self.body())).into_response();
        let auth = match &self {
            ReadError::MissingToken(_) => Some("Bearer realm=\"linkwatch\""),
            ReadError::InvalidToken(_) => {
                Some("Bearer realm=\"linkwatch\", error=\"invalid_token\"")
            }
            _ => None,
        };
        if let Some(v) = auth {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(v));
        }
        if matches!(self, ReadError::Unavailable) {
            resp.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(crate::collector::api::RETRY_AFTER_UNAVAILABLE),
            );
        }
        resp
    }
}

impl From<ParamError> for ReadError {
    fn from(p: ParamError) -> Self {
        ReadError::Param(p)
    }
}

fn store_failed(op: &str, e: &StoreError) -> ReadError {
    tracing::error!(error = %e, "read API: {op} failed; answering 503");
    ReadError::Unavailable
}

impl From<ReportError> for ReadError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Store(e) => store_failed("report", &e),
            ReportError::Param(p) => ReadError::Param(p),
            e @ (ReportError::BadRecord { .. } | ReportError::Internal(_)) => {
                tracing::error!(error = %e, "read API: report failed");
                ReadError::Internal(e.to_string())
            }
        }
    }
}

/// The reader behind a request's bearer token.
pub async fn authenticate(st: &ApiState, headers: &HeaderMap) -> Result<Access, ReadError> {
    let token = bearer_token(headers).map_err(|e| ReadError::MissingToken(e.body().error))?;
    let hash = token_hash(token);
    let store = st.store();
    match store
        .api_token_by_hash(&hash)
        .await
        .map_err(|e| store_failed("API token lookup", &e))?
    {
        Some(t) if t.revoked => {
            tracing::info!(token = %t.name, "read API: revoked token");
            Err(ReadError::InvalidToken("token revoked"))
        }
        Some(t) => Ok(Access {
            token: t.name,
            role: t.role,
            branch: t.branch,
        }),
        None => {
            let device = store
                .device_by_token(&hash)
                .await
                .map_err(|e| store_failed("token lookup", &e))?;
            if let Some(d) = device {
                tracing::info!(device = %d.name, "read API: a device token was used to read");
                return Err(ReadError::DeviceToken);
            }
            Err(ReadError::InvalidToken("unknown token"))
        }
    }
}

/// The query string as a map; unknown and repeated parameters are refused,
/// naming them (a misspelt `divison` must not widen a report silently).
pub fn query_params(
    uri: &Uri,
    allowed: &[&'static str],
) -> Result<HashMap<String, String>, ReadError> {
    let Query(pairs): Query<Vec<(String, String)>> = Query::try_from_uri(uri).map_err(|e| {
        ReadError::Param(ParamError {
            field: "query",
            message: e.body_text(),
        })
    })?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        let Some(field) = allowed.iter().find(|a| **a == k) else {
            return Err(ReadError::Param(ParamError {
                field: "query",
                message: format!(
                    "unknown parameter `{k}`: this endpoint takes {}",
                    allowed.join(", ")
                ),
            }));
        };
        if out.insert(k, v).is_some() {
            return Err(ReadError::Param(ParamError {
                field,
                message: format!("`{field}` is given more than once"),
            }));
        }
    }
    Ok(out)
}

/// `format`: json (default) or csv.
fn wants_csv(params: &HashMap<String, String>) -> Result<bool, ReadError> {
    match params.get("format").map(|s| s.trim()) {
        None | Some("") | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(f) => Err(ReadError::Param(ParamError {
            field: "format",
            message: format!("unknown `format` = `{f}`: use json or csv"),
        })),
    }
}

use crate::shared::time::now_ms;

fn csv(text: String) -> Response {
    ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], text).into_response()
}

/// The read API's routes (merged into [`crate::collector::api::router`]).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route(UPTIME_PATH, get(uptime_report))
        .route(TIMELINE_PATH, get(device_timeline))
        .route(OUTAGES_PATH, get(outage_list))
        .route(DEVICES_PATH, get(device_list))
        .route(REVOKE_PATH, post(revoke_device))
}

const REPORT_PARAMS: &[&str] = &[
    "from", "to", "by", "schedule", "target", "format", "limit", "division", "district", "upazila",
    "office",
];

/// `GET /api/v1/reports/uptime`.
async fn uptime_report(State(st): State<ApiState>, headers: HeaderMap, uri: Uri) -> Response {
    uptime_inner(&st, &headers, &uri)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn uptime_inner(
    st: &ApiState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, ReadError> {
    let access = authenticate(st, headers).await?;
    let p = query_params(uri, REPORT_PARAMS)?;
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
async fn outage_list(State(st): State<ApiState>, headers: HeaderMap, uri: Uri) -> Response {
    outages_inner(&st, &headers, &uri)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn outages_inner(
    st: &ApiState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, ReadError> {
    let access = authenticate(st, headers).await?;
    let p = query_params(uri, OUTAGE_PARAMS)?;
    let as_csv = wants_csv(&p)?;
    let get = |k: &str| p.get(k).map(String::as_str);
    let (from_ms, to_ms) = parse_window(get("from"), get("to"))?;
    let by = parse_by(get("by"))?;
    let schedule = parse_schedule(get("schedule"))?.with_holidays(st.holidays().clone());
    let group = match get("group").map(str::trim) {
        Some("") => {
            return Err(ReadError::Param(ParamError {
                field: "group",
                message: "`group` is empty".into(),
            }));
        }
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
    let (per_device, offices, branch) = report::figures_in_scope(
        st.store().as_ref(),
        &q,
        Some(&access),
        now_ms(),
        report::Uses::Outages,
    )
    .await?;
    let rows = outages::outage_rows(by, group, &per_device, &offices)?;
    let list = OutageList {
        from_ms,
        to_ms,
        by,
        group: group.map(String::from),
        schedule: q.schedule.to_string(),
        branch,
        token_branch: access.branch.clone(),
        outages: rows,
    };
    Ok(if as_csv {
        csv(outages::render_csv(&list))
    } else {
        Json(list).into_response()
    })
}

/// One interval of a timeline, with both Unix ms and RFC 3339.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Span<S> {
    pub state: S,
    pub cause: Option<String>,
    pub start_ms: i64,
    pub end_ms: i64,
    pub start: String,
    pub end: String,
    pub duration_ms: i64,
}

fn span<S: Copy>(iv: &Interval<S>) -> Span<S> {
    Span {
        state: iv.state,
        cause: iv.cause.clone(),
        start_ms: iv.start,
        end_ms: iv.end,
        start: ts(iv.start),
        end: ts(iv.end),
        duration_ms: iv.duration_ms(),
    }
}

/// One link's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkTimeline {
    pub name: String,
    pub kind: LinkKind,
    pub intervals: Vec<Span<LinkState>>,
}

/// `GET /api/v1/devices/{name}/timeline` answers this.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TimelineBody {
    pub device: String,
    pub office: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub from: String,
    pub to: String,
    /// The device's states: contiguous, covering exactly the window.
    pub intervals: Vec<Span<DeviceState>>,
    /// Each link's states while the agent ran and the link's state was known
    /// (there may be gaps), by link name.
    pub links: Vec<LinkTimeline>,
}

/// The timeline of a device as the endpoint shows it (pure).
pub fn timeline_body(
    device: &crate::collector::store::Device,
    tl: &uptime::Timeline,
    from_ms: i64,
    to_ms: i64,
) -> TimelineBody {
    TimelineBody {
        device: device.name.clone(),
        office: device.office.clone(),
        from_ms,
        to_ms,
        from: ts(from_ms),
        to: ts(to_ms),
        intervals: tl.device.iter().map(span).collect(),
        links: tl
            .links
            .iter()
            .map(|(name, (kind, v))| LinkTimeline {
                name: name.clone(),
                kind: *kind,
                intervals: v.iter().map(span).collect(),
            })
            .collect(),
    }
}

/// The device `name` if this reader may see it; 404 otherwise.
async fn visible_device(
    st: &ApiState,
    access: &Access,
    name: &str,
) -> Result<crate::collector::store::Device, ReadError> {
    let not_found = || ReadError::NotFound(format!("no device named `{name}`"));
    let store = st.store();
    let d = store
        .device_by_name(name)
        .await
        .map_err(|e| store_failed("device lookup", &e))?
        .ok_or_else(not_found)?;
    if access.branch.is_some() {
        let offices = office_map(
            store
                .list_offices()
                .await
                .map_err(|e| store_failed("list offices", &e))?,
        );
        if !access.sees(&d, &offices) {
            return Err(not_found());
        }
    }
    Ok(d)
}

fn office_map(offices: Vec<Office>) -> BTreeMap<String, Office> {
    offices.into_iter().map(|o| (o.code.clone(), o)).collect()
}

async fn device_timeline(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    timeline_inner(&st, &name, &headers, &uri)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn timeline_inner(
    st: &ApiState,
    name: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, ReadError> {
    let access = authenticate(st, headers).await?;
    let p = query_params(uri, &["from", "to"])?;
    let (from_ms, to_ms) = parse_window(
        p.get("from").map(String::as_str),
        p.get("to").map(String::as_str),
    )?;
    let d = visible_device(st, &access, name).await?;
    let tl = device_timeline_of(st.store().as_ref(), &d, from_ms, to_ms, now_ms()).await?;
    Ok(Json(timeline_body(&d, &tl, from_ms, to_ms)).into_response())
}

/// A device's timeline over `[from_ms, to_ms)`: the settled whole days from
/// the stored day timelines when all of them are there and current, the rest
/// computed from the records.
pub async fn device_timeline_of(
    store: &dyn crate::collector::store::Store,
    d: &crate::collector::store::Device,
    from_ms: i64,
    to_ms: i64,
    now: i64,
) -> Result<uptime::Timeline, ReportError> {
    let raw = |a: i64, b: i64| async move {
        let recs = report::records_around(store, d, a, b).await?;
        Ok::<_, ReportError>(uptime::timeline(&recs, a, b, now, &Params::default()))
    };
    let tz = rollup::day_tz();
    let (r0, r1) = rollup::whole_days(&tz, from_ms, to_ms);
    let mark = store
        .dirty_mark(d.id)
        .await?
        .map(|m| rollup::day_start(&tz, m.from_ms));
    let r1 = r1
        .min(rollup::day_start(&tz, now))
        .min(mark.unwrap_or(r0))
        .max(r0);
    let days = rollup::days_between(&tz, r0, r1);
    if days.is_empty() {
        return raw(from_ms, to_ms).await;
    }
    let stored = store.rollup_timelines(d.id, r0, r1).await?;
    let parsed: Option<Vec<uptime::Timeline>> = (stored.len() == days.len())
        .then(|| {
            stored
                .iter()
                .map(|(_, body)| serde_json::from_str(body).ok())
                .collect()
        })
        .flatten();
    let Some(parsed) = parsed else {
        return raw(from_ms, to_ms).await;
    };
    let mut parts = Vec::with_capacity(parsed.len() + 2);
    if from_ms < r0 {
        parts.push(raw(from_ms, r0).await?);
    }
    parts.extend(parsed);
    if r1 < to_ms {
        parts.push(raw(r1, to_ms).await?);
    }
    Ok(rollup::concat_timelines(parts))
}

/// A device as the admin list shows it (never its token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceInfo {
    pub name: String,
    pub office: Option<String>,
    pub revoked: bool,
    /// Highest sequence number up to which every record is stored.
    pub acked_seq: i64,
    pub created_at_ms: i64,
    pub created_at: String,
    /// When the collector last received an upload from it (Unix ms and
    /// RFC 3339); `null` before the first.
    pub last_upload_ms: Option<i64>,
    pub last_upload: Option<String>,
    /// Placed time of its newest record.
    pub last_record_ms: Option<i64>,
    pub last_record: Option<String>,
    /// The deadline its agent announced for the next upload; `null` for
    /// agents that announce none.
    pub next_upload_due_ms: Option<i64>,
    pub next_upload_due: Option<String>,
}

fn require_admin(access: &Access) -> Result<(), ReadError> {
    if access.role == Role::Admin {
        Ok(())
    } else {
        tracing::info!(token = %access.token, "read API: admin endpoint refused to a read token");
        Err(ReadError::NotAdmin)
    }
}

async fn device_list(State(st): State<ApiState>, headers: HeaderMap, uri: Uri) -> Response {
    device_list_inner(&st, &headers, &uri)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn device_list_inner(
    st: &ApiState,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, ReadError> {
    let access = authenticate(st, headers).await?;
    require_admin(&access)?;
    query_params(uri, &[])?;
    let store = st.store();
    let offices = office_map(
        store
            .list_offices()
            .await
            .map_err(|e| store_failed("list offices", &e))?,
    );
    let list: Vec<DeviceInfo> = store
        .list_devices()
        .await
        .map_err(|e| store_failed("list devices", &e))?
        .into_iter()
        .filter(|d| access.sees(d, &offices))
        .map(|d| DeviceInfo {
            created_at: ts(d.created_at_ms),
            name: d.name,
            office: d.office,
            revoked: d.revoked,
            acked_seq: d.acked,
            created_at_ms: d.created_at_ms,
            last_upload_ms: d.seen.last_upload_ms,
            last_upload: d.seen.last_upload_ms.map(ts),
            last_record_ms: d.seen.last_record_ms,
            last_record: d.seen.last_record_ms.map(ts),
            next_upload_due_ms: d.seen.next_upload_due_ms,
            next_upload_due: d.seen.next_upload_due_ms.map(ts),
        })
        .collect();
    Ok(Json(list).into_response())
}

/// What `POST /api/v1/devices/{name}/revoke` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revoked {
    pub device: String,
    pub revoked: bool,
}

async fn revoke_device(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    revoke_inner(&st, &name, &headers, &uri)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

async fn revoke_inner(
    st: &ApiState,
    name: &str,
    headers: &HeaderMap,
    uri: &Uri,
) -> Result<Response, ReadError> {
    let access = authenticate(st, headers).await?;
    require_admin(&access)?;
    query_params(uri, &[])?;
    let d = visible_device(st, &access, name).await?;
    let done = st
        .store()
        .revoke_device(&d.name)
        .await
        .map_err(|e| store_failed("revoke device", &e))?;
    if !done {
        return Err(ReadError::NotFound(format!("no device named `{name}`")));
    }
    tracing::info!(device = %d.name, token = %access.token, "device revoked through the API");
    Ok(Json(Revoked {
        device: d.name,
        revoked: true,
    })
    .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_status_and_headers() {
        let r = ReadError::MissingToken("missing".into()).into_response();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(
            ReadError::InvalidToken("token revoked").status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(ReadError::DeviceToken.status(), StatusCode::FORBIDDEN);
        assert_eq!(ReadError::NotAdmin.status(), StatusCode::FORBIDDEN);
        let p = ReadError::Param(ParamError {
            field: "limit",
            message: "bad".into(),
        });
        assert_eq!(p.status(), StatusCode::BAD_REQUEST);
        assert_eq!(p.body().field.as_deref(), Some("limit"));
    }

    #[test]
    fn unknown_and_repeated_parameters_are_named() {
        let uri: Uri = "/x?from=a&divison=Dhaka".parse().unwrap();
        match query_params(&uri, &["from", "division"]).unwrap_err() {
            ReadError::Param(p) => assert!(p.message.contains("`divison`"), "{}", p.message),
            e => panic!("{e:?}"),
        }
        let uri: Uri = "/x?from=a&from=b".parse().unwrap();
        match query_params(&uri, &["from"]).unwrap_err() {
            ReadError::Param(p) => assert_eq!(p.field, "from"),
            e => panic!("{e:?}"),
        }
        let uri: Uri = "/x?from=2026-11-29%2B06".parse().unwrap();
        assert_eq!(
            query_params(&uri, &["from"]).unwrap()["from"],
            "2026-11-29+06"
        );
    }
}
