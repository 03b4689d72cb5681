//! `POST /api/v1/ingest` (protocol v1, see `docs/protocol.md`): the order of
//! an upload's checks (declared size, overload, bearer token, the device's
//! slots, body, encoding, batch validation; the body's limits are in
//! [`super::intake`]), the store's acknowledgement, and the ingest metrics.
//! The token is checked from a cache ([`super::tokens`]) and again where the
//! batch is written, so a revocation or new token holds at once.

use super::auth::bearer_token;
use super::error::ApiError;
use super::intake::{self, content_encoding, decode_body};
use super::state::ApiState;
use crate::collector::devices::token_hash;
use crate::collector::metrics::CodeLabels;
use crate::collector::store::{Device, StoreError, UploadMeta};
use crate::shared::time::now_ms;
use crate::wire::v1::{self, Ack, Batch};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prometheus_client::metrics::gauge::Gauge;
use std::time::Instant;

/// Path of the ingest endpoint.
pub const INGEST_PATH: &str = "/api/v1/ingest";

/// Parse a batch, check it belongs to `device`, and validate it.
pub fn check_batch(json: &[u8], device: &Device) -> Result<Batch, ApiError> {
    let batch = v1::parse_batch(json).map_err(|mut i| {
        // serde_path_to_error says `?` when the JSON breaks before any field.
        if i.path == "?" {
            i.path = "body".into();
        }
        ApiError::Invalid(i)
    })?;
    if batch.device != device.name {
        return Err(ApiError::WrongDevice {
            token_device: device.name.clone(),
        });
    }
    batch.validate().map_err(ApiError::Invalid)?;
    Ok(batch)
}

fn store_failed(op: &str, e: &StoreError) -> ApiError {
    tracing::error!(error = %e, "ingest: {op} failed; answering 503");
    ApiError::Unavailable
}

pub(super) async fn ingest(State(st): State<ApiState>, req: Request) -> Response {
    let started = Instant::now();
    let m = st.metrics();
    let resp = match ingest_inner(&st, req).await {
        Ok(ack) => (StatusCode::OK, Json(ack)).into_response(),
        Err(e) => e.into_response(),
    };
    m.requests
        .get_or_create(&CodeLabels {
            code: resp.status().as_u16().to_string(),
        })
        .inc();
    m.latency.observe(started.elapsed().as_secs_f64());
    resp
}

async fn ingest_inner(st: &ApiState, req: Request) -> Result<Ack, ApiError> {
    let inner = &st.0;
    // A declared length over the limit: 413 before anything else, before a
    // byte of the body is read and before any slot is taken.
    if let Err(e) = intake::check_declared_length(req.headers(), inner.max_body_bytes) {
        // A body up to twice the limit (a client that overshot) is read and
        // thrown away after the answer, so the client sees the 413 and not
        // a reset connection; a larger one is not read at all.
        if let Some(n) = intake::declared_length(req.headers())
            && n <= 2 * inner.max_body_bytes as u64
        {
            tokio::spawn(intake::discard(req.into_body(), n));
        }
        return Err(e);
    }
    let _permit = inner.inflight.try_acquire().map_err(|_| {
        tracing::debug!("ingest: more than the allowed uploads in flight; answering 429");
        ApiError::Overloaded
    })?;
    let _gauge = InflightGauge::enter(&inner.metrics.inflight);

    // Who is sending, before a byte of the body is read.
    let token = bearer_token(req.headers()).inspect_err(|e| {
        tracing::debug!(error = ?e, "ingest: no usable bearer token");
    })?;
    let hash = token_hash(token);
    let device = match inner.tokens.get(&hash, Instant::now()) {
        Some(device) => device,
        None => {
            let device = known_device(st, &hash).await?;
            inner.tokens.put(&hash, &device, Instant::now());
            device
        }
    };
    let encoding = content_encoding(req.headers())?;
    let _slot = inner.devices.try_take(device.id).ok_or_else(|| {
        tracing::debug!(
            device = %device.name,
            max = inner.devices.max(),
            "ingest: the device's uploads in flight are at the limit; answering 429"
        );
        ApiError::DeviceBusy {
            max: inner.devices.max(),
        }
    })?;
    let body = intake::read_body(
        req.into_body(),
        inner.max_body_bytes,
        inner.limits.min_body_rate,
        inner.limits.body_rate_window,
    )
    .await
    .inspect_err(|e| {
        tracing::info!(device = %device.name, error = ?e, "ingest: body not read");
    })?;
    let cap = intake::decompressed_limit(inner.max_body_bytes);
    let now = now_ms();
    let dev = device.clone();
    // Decompression and parsing are CPU work on up to `cap` bytes: off the
    // async threads.
    let batch = tokio::task::spawn_blocking(move || {
        let json = decode_body(encoding, body, cap)?;
        check_batch(&json, &dev)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "ingest: decoding task failed");
        ApiError::Unavailable
    })?
    .inspect_err(|e| match e {
        ApiError::WrongDevice { .. } => {
            tracing::warn!(device = %device.name, "ingest: token used for another device's batch")
        }
        e => tracing::warn!(device = %device.name, error = ?e, "ingest: batch refused"),
    })?;
    let ack = match inner
        .store
        .ingest_authenticated(
            device.id,
            &hash,
            &batch.records,
            UploadMeta {
                next_upload_due_ms: batch.next_upload_due_ms(now),
                backlog: batch.backlog,
            },
            now,
        )
        .await
    {
        Ok(ack) => ack,
        Err(StoreError::TokenWithdrawn) => {
            // Revoked or replaced since the (cached) check: nothing stored;
            // the answer says which, as a fresh lookup would.
            inner.tokens.forget(&hash);
            known_device(st, &hash).await?;
            tracing::warn!(device = %device.name, "ingest: the token changed while the upload was read");
            return Err(ApiError::Unavailable);
        }
        Err(e) => return Err(store_failed("storing the batch", &e)),
    };
    inner.metrics.records_stored.inc_by(u64::from(ack.stored));
    inner
        .metrics
        .records_duplicate
        .inc_by(u64::from(ack.duplicates));
    tracing::debug!(
        device = %device.name,
        records = batch.records.len(),
        stored = ack.stored,
        duplicates = ack.duplicates,
        acked = ack.acked,
        "ingest"
    );
    Ok(ack)
}

/// The device a token hash belongs to, from the store: 401 when none, 403
/// when it is revoked.
async fn known_device(st: &ApiState, hash: &str) -> Result<Device, ApiError> {
    let device =
        st.0.store
            .device_by_token(hash)
            .await
            .map_err(|e| store_failed("token lookup", &e))?
            .ok_or_else(|| {
                tracing::info!("ingest: unknown token");
                ApiError::UnknownToken
            })?;
    if device.revoked {
        tracing::info!(device = %device.name, "ingest: revoked token");
        return Err(ApiError::Revoked);
    }
    Ok(device)
}

/// Counts one request in the in-flight gauge for as long as it lives.
struct InflightGauge<'a>(&'a Gauge);

impl<'a> InflightGauge<'a> {
    fn enter(g: &'a Gauge) -> Self {
        g.inc();
        InflightGauge(g)
    }
}

impl Drop for InflightGauge<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_of_another_device_are_refused_before_validation() {
        let dev = Device {
            id: 1,
            name: "gw1".into(),
            office: None,
            revoked: false,
            acked: 0,
            created_at_ms: 0,
            seen: Default::default(),
        };
        let ok = br#"{"v":1,"device":"gw1","records":[]}"#;
        check_batch(ok, &dev).unwrap();
        let other = br#"{"v":1,"device":"gw2","records":[]}"#;
        assert_eq!(
            check_batch(other, &dev).unwrap_err(),
            ApiError::WrongDevice {
                token_device: "gw1".into()
            }
        );
        let bad = br#"{"v":2,"device":"gw1","records":[]}"#;
        match check_batch(bad, &dev).unwrap_err() {
            ApiError::Invalid(i) => assert_eq!(i.path, "v"),
            e => panic!("{e:?}"),
        }
        match check_batch(b"{", &dev).unwrap_err() {
            ApiError::Invalid(i) => assert_eq!(i.path, "body"),
            e => panic!("{e:?}"),
        }
    }
}
