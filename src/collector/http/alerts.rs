//! Alerts over HTTP: `GET /api/v1/alerts` (open and recent alerts, API
//! tokens, within the token's branch), `POST /api/v1/alerts/{id}/ack`
//! (admin tokens, within their branch), and the signed acknowledgement
//! link of the messages: `GET /api/v1/alerts/ack?t=` shows a page whose
//! button `POST`s the token (a mail scanner fetching the link acknowledges
//! nothing), `POST /api/v1/alerts/ack` acknowledges. A forged, altered or
//! expired link is refused (403) and changes nothing.
//!
//! The token is checked before anything else is read; parameters are
//! checked and bounded (`limit` at most [`MAX_LIMIT`]).

use super::auth::{authenticate, offices, require_admin};
use super::error::ReadError;
use super::params::{int_param, query_params};
use super::state::ApiState;
use crate::collector::access::Access;
use crate::collector::store::{AlertQuery, AlertRecord, Office, StoreError};
use crate::shared::time::now_ms;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::BTreeMap;

pub const ALERTS_PATH: &str = "/api/v1/alerts";
pub const ACK_PATH: &str = "/api/v1/alerts/{id}/ack";
/// Where the acknowledgement links of messages lead (`alerts.ack_url`
/// should name it, behind whatever proxy).
pub const LINK_PATH: &str = "/api/v1/alerts/ack";
/// Most alerts in one answer.
pub const MAX_LIMIT: i64 = 500;
const DEFAULT_LIMIT: i64 = 100;
/// "Recent": closed alerts opened within this long (by default).
const RECENT_MS: i64 = 7 * 86_400_000;
/// Pages read to fill one answer for a token limited to a branch.
const MAX_PAGES: usize = 20;

/// Names the API in logs.
const AREA: &str = "alerts API";

fn store_failed(op: &str, e: &StoreError) -> ReadError {
    ReadError::store_failed(AREA, op, e)
}

/// May `access` see an alert about `office` (`None`: no office; only
/// tokens of the whole hierarchy)?
fn sees(access: &Access, office: Option<&str>, offices: &BTreeMap<String, Office>) -> bool {
    match (&access.branch, office) {
        (None, _) => true,
        (Some(b), Some(code)) => offices.get(code).is_some_and(|o| b.contains(o)),
        (Some(_), None) => false,
    }
}

/// What `GET /api/v1/alerts` answers.
#[derive(Debug, Serialize)]
pub struct AlertList {
    pub alerts: Vec<AlertRecord>,
    /// Pass as `before` for the next (older) page; `null`: no more.
    pub next_before: Option<i64>,
}

/// `GET /api/v1/alerts`.
pub(super) async fn list(
    State(st): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<AlertList>, ReadError> {
    let access = authenticate(&st, &headers).await?;
    let params = query_params(&uri, &["state", "since", "limit", "before"])?;
    let open_only = match params.get("state").map(|s| s.trim()) {
        None | Some("") | Some("recent") => false,
        Some("open") => true,
        Some(_) => {
            return Err(ReadError::param(
                "state",
                "`state` must be `open` or `recent`",
            ));
        }
    };
    let now = now_ms();
    let since = match params.get("since") {
        None => now - RECENT_MS,
        Some(v) => match v.trim().parse::<jiff::Timestamp>() {
            Ok(t) => t.as_millisecond(),
            Err(_) => int_param(&params, "since", 0, i64::MAX)?.unwrap_or(0),
        },
    };
    let limit = int_param(&params, "limit", 1, MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let mut before = int_param(&params, "before", 1, i64::MAX)?;
    let offices = offices(&st, AREA).await?;
    let mut out = Vec::new();
    let mut exhausted = false;
    for _ in 0..MAX_PAGES {
        let page = st
            .store()
            .list_alerts(&AlertQuery {
                open_only,
                since_ms: since,
                before_id: before,
                limit: limit + 1,
            })
            .await
            .map_err(|e| store_failed("list alerts", &e))?;
        exhausted = (page.len() as i64) <= limit;
        for a in page {
            before = Some(a.alert.id);
            if sees(&access, a.alert.office.as_deref(), &offices) {
                out.push(a);
                if out.len() as i64 == limit {
                    break;
                }
            }
        }
        if out.len() as i64 >= limit || exhausted {
            break;
        }
    }
    // Another page may hold more (it may also turn out empty).
    let next_before = if out.len() as i64 >= limit {
        out.last().map(|a| a.alert.id)
    } else if !exhausted {
        before
    } else {
        None
    };
    Ok(Json(AlertList {
        alerts: out,
        next_before,
    }))
}

/// What an acknowledgement answers.
#[derive(Debug, Serialize)]
pub struct Acked {
    pub alert: i64,
    /// False when it was acknowledged before, or is closed.
    pub acknowledged: bool,
}

/// `POST /api/v1/alerts/{id}/ack`.
pub(super) async fn ack(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Acked>, ReadError> {
    let access = authenticate(&st, &headers).await?;
    require_admin(&access, "alerts API: acknowledgement")?;
    query_params(&uri, &[])?;
    let not_found = || ReadError::NotFound(format!("no alert {id:.40}"));
    let id: i64 = match id.parse() {
        Ok(n) if n > 0 => n,
        _ => return Err(not_found()),
    };
    let store = st.store();
    let Some(a) = store
        .alert_by_id(id)
        .await
        .map_err(|e| store_failed("alert by id", &e))?
    else {
        return Err(not_found());
    };
    if !sees(
        &access,
        a.alert.office.as_deref(),
        &offices(&st, AREA).await?,
    ) {
        return Err(not_found());
    }
    let done = store
        .ack_alert(id, &format!("token:{}", access.token), now_ms())
        .await
        .map_err(|e| store_failed("acknowledge alert", &e))?;
    if done {
        tracing::info!(alert = id, token = %access.token, "alert acknowledged through the API");
    }
    Ok(Json(Acked {
        alert: id,
        acknowledged: done,
    }))
}

/// HTML-escape text for an element or a quoted attribute.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>linkwatch</title></head>\
         <body>{body}</body></html>"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        html,
    )
        .into_response()
}

/// A refused link: the status and the page's text (HTML).
pub(super) struct Refused(StatusCode, String);

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        page(self.0, &self.1)
    }
}

/// The token of a link (`t`), checked: the alert it acknowledges, or the
/// page refusing it.
fn check_link(st: &ApiState, t: Option<&String>) -> Result<(i64, String), Refused> {
    let Some(key) = st.ack_key() else {
        return Err(Refused(
            StatusCode::NOT_FOUND,
            "<p>Acknowledgement links are not configured on this collector.</p>".into(),
        ));
    };
    let Some(t) = t.filter(|t| t.len() <= 200) else {
        return Err(Refused(
            StatusCode::BAD_REQUEST,
            "<p>This link carries no acknowledgement token.</p>".into(),
        ));
    };
    match key.verify(t, now_ms()) {
        Ok(id) => Ok((id, t.clone())),
        Err(e) => {
            tracing::warn!(error = %e, "alerts: acknowledgement link refused");
            Err(Refused(
                StatusCode::FORBIDDEN,
                format!(
                    "<p>Refused: {}. Nothing was changed.</p>",
                    html_escape(&e.to_string())
                ),
            ))
        }
    }
}

/// The one `t` among form or query pairs.
fn form_token(pairs: Vec<(String, String)>) -> Result<Option<String>, Refused> {
    let mut t = None;
    for (k, v) in pairs {
        if k == "t" {
            if t.is_some() {
                return Err(Refused(
                    StatusCode::BAD_REQUEST,
                    "<p>More than one token.</p>".into(),
                ));
            }
            t = Some(v);
        }
    }
    Ok(t)
}

fn unreadable() -> Refused {
    Refused(
        StatusCode::BAD_REQUEST,
        "<p>This link cannot be read.</p>".into(),
    )
}

/// The alert and token of a link's `t` among `pairs`, checked.
fn linked_alert(st: &ApiState, pairs: Vec<(String, String)>) -> Result<(i64, String), Refused> {
    check_link(st, form_token(pairs)?.as_ref())
}

/// `GET /api/v1/alerts/ack?t=`: the page whose button acknowledges.
pub(super) async fn link_page(State(st): State<ApiState>, uri: Uri) -> Result<Response, Refused> {
    let Query(pairs) =
        Query::<Vec<(String, String)>>::try_from_uri(&uri).map_err(|_| unreadable())?;
    let (id, token) = linked_alert(&st, pairs)?;
    Ok(page(
        StatusCode::OK,
        &format!(
            "<p>Acknowledge alert {id}? Its escalation stops.</p>\
             <form method=\"post\" action=\"ack\"><input type=\"hidden\" name=\"t\" value=\"{}\">\
             <button type=\"submit\">Acknowledge</button></form>",
            html_escape(&token)
        ),
    ))
}

/// `POST /api/v1/alerts/ack`: acknowledge the alert of the form's `t`.
pub(super) async fn link_ack(
    State(st): State<ApiState>,
    body: axum::body::Bytes,
) -> Result<Response, Refused> {
    let pairs = serde_urlencoded_pairs(&body).map_err(|_| unreadable())?;
    let (id, _) = linked_alert(&st, pairs)?;
    Ok(match st.store().ack_alert(id, "link", now_ms()).await {
        Ok(true) => {
            tracing::info!(alert = id, "alert acknowledged through its link");
            page(StatusCode::OK, &format!("<p>Alert {id} acknowledged.</p>"))
        }
        Ok(false) => page(
            StatusCode::OK,
            &format!("<p>Alert {id} was already acknowledged, or is over.</p>"),
        ),
        Err(e) => {
            tracing::error!(error = %e, "alerts: acknowledgement failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "<p>Storage unavailable: try again later.</p>",
            )
        }
    })
}

/// A form body's pairs (`application/x-www-form-urlencoded`).
fn serde_urlencoded_pairs(body: &[u8]) -> Result<Vec<(String, String)>, ()> {
    let text = std::str::from_utf8(body).map_err(|_| ())?;
    let uri: Uri = format!("/?{text}").parse().map_err(|_| ())?;
    Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|Query(p)| p)
        .map_err(|_| ())
}
