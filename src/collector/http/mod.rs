//! The collector's web layer: the router and the state its handlers share,
//! the ingest endpoint for agents (`POST /api/v1/ingest`), `/health` and
//! `/metrics`, the read API for IT staff (reports, outages, timelines,
//! devices, storage) and the alerts API (with silences). Handlers parse, authorise, call the domain
//! code (`report`, `outages`, `timeline`, the store) and render; how
//! connections are admitted and timed out is [`crate::collector::conn`].
//!
//! Inside, nothing imports upwards: `error` and `state` at the bottom, then
//! `auth`, `params` and `intake`, then one module of handlers per area, and
//! this file, which routes to them.

mod alerts;
mod auth;
mod devices;
mod error;
mod ingest;
pub mod intake;
mod ops;
mod params;
mod reports;
mod silences;
mod state;
mod storage;
mod tokens;

pub use alerts::{ACK_PATH, ALERTS_PATH, Acked, AlertList, LINK_PATH, MAX_LIMIT, html_escape};
pub use auth::{MAX_TOKEN_LEN, authenticate, bearer_token, visible_device};
pub use devices::{DEVICES_PATH, DeviceInfo, REVOKE_PATH, Revoked};
pub use error::{
    ApiError, ErrorBody, RETRY_AFTER_DEVICE_BUSY, RETRY_AFTER_OVERLOAD, RETRY_AFTER_UNAVAILABLE,
    ReadError,
};
pub use ingest::{INGEST_PATH, check_batch};
pub use intake::BODY_TIMEOUT;
pub use ops::HEALTH_TIMEOUT;
pub use params::query_params;
pub use reports::{OUTAGES_PATH, TIMELINE_PATH, UPTIME_PATH};
pub use silences::{MAX_SILENCE_BODY, Removed, SILENCE_PATH, SILENCES_PATH};
pub use state::{ApiOptions, ApiState};
pub use storage::{STORAGE_PATH, STORAGE_TIMEOUT};

use crate::collector::metrics::CollectorMetrics;
use crate::collector::store::Store;
use crate::config::collector::CollectorConfig;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};
use std::sync::Arc;

/// The state of the API `cfg` describes (its limits and holidays), on
/// `store`, reporting into `metrics` (shared with the connection guard).
pub fn state_for(
    store: Arc<dyn Store>,
    cfg: &CollectorConfig,
    metrics: Arc<CollectorMetrics>,
) -> ApiState {
    let c = &cfg.collector;
    let state = ApiState::with_limits(
        store,
        ApiOptions {
            max_body_bytes: c.max_body_bytes,
            max_inflight: c.max_inflight,
            holidays: cfg.holidays.clone(),
        },
        cfg.ingest_limits(),
        metrics,
    );
    state.set_raw_retention_days(cfg.rollup_settings().raw_retention_days);
    state
}

/// Every route of the API, with the body limit applied.
pub fn router(state: ApiState) -> Router {
    let limit = state.max_body_bytes();
    Router::new()
        .route(INGEST_PATH, post(ingest::ingest))
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics))
        // Reports, timelines, outages, admin: API tokens.
        .route(UPTIME_PATH, get(reports::uptime_report))
        .route(TIMELINE_PATH, get(reports::device_timeline))
        .route(OUTAGES_PATH, get(reports::outage_list))
        .route(DEVICES_PATH, get(devices::device_list))
        .route(REVOKE_PATH, post(devices::revoke_device))
        .route(STORAGE_PATH, get(storage::storage))
        // Alerts: API tokens, and the signed links of messages.
        .route(ALERTS_PATH, get(alerts::list))
        .route(ACK_PATH, post(alerts::ack))
        .route(LINK_PATH, get(alerts::link_page).post(alerts::link_ack))
        // Silences and maintenance windows: API tokens (admin to change).
        .route(
            SILENCES_PATH,
            get(silences::list)
                .post(silences::add)
                .layer(DefaultBodyLimit::max(MAX_SILENCE_BODY)),
        )
        .route(SILENCE_PATH, delete(silences::remove))
        .fallback(no_route)
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// A path no route takes (the dashboard's, merged in, are taken): 404 with
/// the error body, like every other refusal (the path is not echoed).
async fn no_route() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(ErrorBody {
            error: "no such endpoint: see the README's API section".into(),
            field: None,
        }),
    )
        .into_response()
}

/// A header map of `(name, value)` pairs, repeated names kept (tests).
#[cfg(test)]
fn test_headers(pairs: &[(&str, &str)]) -> axum::http::HeaderMap {
    use axum::http::{HeaderMap, HeaderName, HeaderValue};
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}
