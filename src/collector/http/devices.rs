//! The read API's administration of devices, for admin tokens within their
//! branch: `GET /api/v1/devices` (the device list, never a token) and
//! `POST /api/v1/devices/{name}/revoke`.

use super::auth::{authenticate, offices, require_admin, visible_device};
use super::error::ReadError;
use super::params::query_params;
use super::state::ApiState;
use crate::collector::report::ts;
use crate::collector::store::Device;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use serde::Serialize;

/// `GET` (admin): device list.
pub const DEVICES_PATH: &str = "/api/v1/devices";
/// `POST` (admin): revoke a device's token.
pub const REVOKE_PATH: &str = "/api/v1/devices/{name}/revoke";

/// What the log names an admin action refused to a read token.
const ADMIN: &str = "read API: admin endpoint";

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

impl From<Device> for DeviceInfo {
    fn from(d: Device) -> Self {
        DeviceInfo {
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
        }
    }
}

/// `GET /api/v1/devices`.
pub(super) async fn device_list(
    State(st): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Vec<DeviceInfo>>, ReadError> {
    let access = authenticate(&st, &headers).await?;
    require_admin(&access, ADMIN)?;
    query_params(&uri, &[])?;
    let offices = offices(&st, "read API").await?;
    let list = st
        .store()
        .list_devices()
        .await
        .map_err(|e| ReadError::store_failed("read API", "list devices", &e))?
        .into_iter()
        .filter(|d| access.sees(d, &offices))
        .map(DeviceInfo::from)
        .collect();
    Ok(Json(list))
}

/// What `POST /api/v1/devices/{name}/revoke` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Revoked {
    pub device: String,
    pub revoked: bool,
}

/// `POST /api/v1/devices/{name}/revoke`.
pub(super) async fn revoke_device(
    State(st): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<Revoked>, ReadError> {
    let access = authenticate(&st, &headers).await?;
    require_admin(&access, ADMIN)?;
    query_params(&uri, &[])?;
    let d = visible_device(&st, &access, &name).await?;
    let done = st
        .store()
        .revoke_device(&d.name)
        .await
        .map_err(|e| ReadError::store_failed("read API", "revoke device", &e))?;
    if !done {
        return Err(ReadError::NotFound(format!("no device named `{name}`")));
    }
    tracing::info!(device = %d.name, token = %access.token, "device revoked through the API");
    Ok(Json(Revoked {
        device: d.name,
        revoked: true,
    }))
}
