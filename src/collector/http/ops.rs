//! The endpoints for operators and monitors: `GET /health` (the store
//! answers within [`HEALTH_TIMEOUT`]) and `GET /metrics` (Prometheus,
//! OpenMetrics text; the figures are [`crate::collector::metrics`]).

use super::state::ApiState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use std::time::Duration;

/// Longest `/health` waits for the database.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn health(State(st): State<ApiState>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(HEALTH_TIMEOUT, st.store().ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health: store ping failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
        }
        Err(_) => {
            tracing::warn!("health: store ping timed out");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n")
        }
    }
}

pub(super) async fn metrics(State(st): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics().encode(),
    )
}
