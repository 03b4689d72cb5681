//! `GET /api/v1/storage` (admin, whole hierarchy): the storage view, rows
//! and bytes by kind of data and the oldest raw minute kept
//! (`collector::storage`). Measuring reads the whole database, so one
//! measurement runs at a time (others wait their turn) and each is cut off
//! after [`STORAGE_TIMEOUT`].

use super::auth::{authenticate, require_admin};
use super::error::ReadError;
use super::params::query_params;
use super::state::ApiState;
use crate::collector::storage::{StorageView, view};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use std::time::Duration;
use tokio::sync::Mutex;

/// `GET` (admin of the whole hierarchy): the storage view.
pub const STORAGE_PATH: &str = "/api/v1/storage";
/// Longest a request waits for its turn and its measurement together.
pub const STORAGE_TIMEOUT: Duration = Duration::from_secs(120);

/// One measurement at a time, across every request of this process.
static TURN: Mutex<()> = Mutex::const_new(());

/// `GET /api/v1/storage`.
pub(super) async fn storage(
    State(st): State<ApiState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<StorageView>, ReadError> {
    let access = authenticate(&st, &headers).await?;
    require_admin(&access, "read API: storage")?;
    if access.branch.is_some() {
        tracing::info!(token = %access.token, "read API: storage refused to a branch admin");
        return Err(ReadError::Forbidden(
            "the storage figures cover the whole database: this needs an admin token \
             for the whole hierarchy"
                .into(),
        ));
    }
    query_params(&uri, &[])?;
    let measured = tokio::time::timeout(STORAGE_TIMEOUT, async {
        let _turn = TURN.lock().await;
        st.store().storage().await
    })
    .await;
    match measured {
        Ok(Ok(facts)) => Ok(Json(view(&facts, st.raw_retention_days()))),
        Ok(Err(e)) => Err(ReadError::store_failed("read API", "measure storage", &e)),
        Err(_) => {
            tracing::warn!("read API: the storage measurement took too long");
            Err(ReadError::Unavailable)
        }
    }
}
