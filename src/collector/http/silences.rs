//! Silences and maintenance windows over HTTP: `GET /api/v1/silences`
//! (those in force or planned, API tokens, within the token's branch),
//! `POST /api/v1/silences` (admin tokens: a JSON
//! [`SilenceRequest`], at most [`MAX_SILENCE_BODY`] bytes) and
//! `DELETE /api/v1/silences/{id}` (admin tokens). A token limited to a
//! branch silences only inside it: a device or office outside is answered
//! 404 as one that does not exist, a branch reaching beyond it 403.
//!
//! A body over [`MAX_SILENCE_BODY`] is refused (413) without being read
//! further; the token is checked before the body is parsed; every field is
//! checked and bounded ([`crate::collector::alerts::silence`]).

use super::auth::{authenticate, offices, require_admin};
use super::error::ReadError;
use super::params::query_params;
use super::state::ApiState;
use crate::collector::access::Access;
use crate::collector::alerts::model::Target;
use crate::collector::alerts::silence::{Known, SilenceRequest, SilenceView, within};
use crate::collector::store::{Office, SilenceRecord, StoreError};
use crate::shared::time::now_ms;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use std::collections::BTreeMap;

pub const SILENCES_PATH: &str = "/api/v1/silences";
pub const SILENCE_PATH: &str = "/api/v1/silences/{id}";
/// Largest body of `POST /api/v1/silences`.
pub const MAX_SILENCE_BODY: usize = 4096;

const AREA: &str = "silences API";

fn store_failed(op: &str, e: &StoreError) -> ReadError {
    ReadError::store_failed(AREA, op, e)
}

/// The devices a set of targets names (name → office), read one by one.
async fn devices_named<'t>(
    st: &ApiState,
    targets: impl Iterator<Item = &'t Target>,
) -> Result<BTreeMap<String, Option<String>>, ReadError> {
    let mut out = BTreeMap::new();
    for t in targets {
        if let Target::Device(name) = t
            && !out.contains_key(name)
            && let Some(d) = st
                .store()
                .device_by_name(name)
                .await
                .map_err(|e| store_failed("device lookup", &e))?
        {
            out.insert(d.name, d.office);
        }
    }
    Ok(out)
}

fn visible(
    access: &Access,
    r: &SilenceRecord,
    devices: &BTreeMap<String, Option<String>>,
    offices: &BTreeMap<String, Office>,
) -> bool {
    within(
        &r.silence.target,
        access.branch.as_ref(),
        &Known { devices, offices },
    )
}

/// `GET /api/v1/silences`.
pub(super) async fn list(
    State(st): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Vec<SilenceView>>, ReadError> {
    let access = authenticate(&st, &headers).await?;
    query_params(&uri, &[])?;
    let now = now_ms();
    let all = st
        .store()
        .silences(now)
        .await
        .map_err(|e| store_failed("list silences", &e))?;
    let offices = offices(&st, AREA).await?;
    let devices = devices_named(&st, all.iter().map(|r| &r.silence.target)).await?;
    Ok(Json(
        all.iter()
            .filter(|r| visible(&access, r, &devices, &offices))
            .map(|r| SilenceView::new(&r.silence, &r.created_by, r.created_ms, now))
            .collect(),
    ))
}

/// `POST /api/v1/silences`.
pub(super) async fn add(
    State(st): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Result<(StatusCode, Json<SilenceView>), ReadError> {
    let access = authenticate(&st, &headers).await?;
    require_admin(&access, "silences API: adding a silence")?;
    query_params(&uri, &[])?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/json")
        });
    if !json {
        return Err(ReadError::param(
            "body",
            "send the silence as JSON (Content-Type: application/json)",
        ));
    }
    if body.len() > MAX_SILENCE_BODY {
        return Err(ReadError::param(
            "body",
            format!("a silence is at most {MAX_SILENCE_BODY} bytes of JSON"),
        ));
    }
    let req: SilenceRequest = serde_json::from_slice(&body).map_err(|e| {
        ReadError::param(
            "body",
            format!(
                "not a silence ({e}): send {{\"target\": \"device:NAME\", \"duration\": \"2h\", \"reason\": \"...\"}}"
            ),
        )
    })?;
    let offices = offices(&st, AREA).await?;
    let target = crate::collector::alerts::silence::parse_target(&req.target)
        .map_err(|e| ReadError::param(e.field, e.message))?;
    let devices = devices_named(&st, std::iter::once(&target)).await?;
    let known = Known {
        devices: &devices,
        offices: &offices,
    };
    let now = now_ms();
    let s = req.check(now, &known).map_err(|e| {
        if e.not_found {
            ReadError::NotFound(e.message)
        } else {
            ReadError::param(e.field, e.message)
        }
    })?;
    if !within(&s.target, access.branch.as_ref(), &known) {
        return Err(match &s.target {
            Target::Device(n) => ReadError::NotFound(format!("no device named `{n}`")),
            Target::Office(c) => ReadError::NotFound(format!("no office `{c}`")),
            Target::Branch(b) => ReadError::Forbidden(format!(
                "`{b}` reaches beyond this token's branch: silence a part of it"
            )),
        });
    }
    let by = format!("token:{}", access.token);
    let id = st
        .store()
        .add_silence(&s, &by, now)
        .await
        .map_err(|e| store_failed("add silence", &e))?;
    let s = crate::collector::alerts::model::Silence { id, ..s };
    tracing::info!(silence = id, target = ?s.target, token = %access.token, "silence added through the API");
    Ok((
        StatusCode::CREATED,
        Json(SilenceView::new(&s, &by, now, now)),
    ))
}

/// What `DELETE /api/v1/silences/{id}` answers.
#[derive(Debug, serde::Serialize)]
pub struct Removed {
    pub silence: i64,
    pub removed: bool,
}

/// `DELETE /api/v1/silences/{id}`.
pub(super) async fn remove(
    State(st): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Removed>, ReadError> {
    let access = authenticate(&st, &headers).await?;
    require_admin(&access, "silences API: removing a silence")?;
    query_params(&uri, &[])?;
    let not_found = || ReadError::NotFound(format!("no silence {id:.40}"));
    let id: i64 = match id.parse() {
        Ok(n) if n > 0 => n,
        _ => return Err(not_found()),
    };
    let Some(r) = st
        .store()
        .silence_by_id(id)
        .await
        .map_err(|e| store_failed("silence by id", &e))?
    else {
        return Err(not_found());
    };
    let offices = offices(&st, AREA).await?;
    let devices = devices_named(&st, std::iter::once(&r.silence.target)).await?;
    if !visible(&access, &r, &devices, &offices) {
        return Err(not_found());
    }
    let removed = st
        .store()
        .remove_silence(id)
        .await
        .map_err(|e| store_failed("remove silence", &e))?;
    if removed {
        tracing::info!(silence = id, token = %access.token, "silence removed through the API");
    }
    Ok(Json(Removed {
        silence: id,
        removed,
    }))
}
