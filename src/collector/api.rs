//! The collector's HTTP API: `POST /api/v1/ingest` (protocol v1, see
//! `docs/protocol.md`), `GET /health` and `GET /metrics`; the read API for
//! IT staff is merged in from [`crate::collector::read_api`]. Owns the request
//! checks (declared size, overload, bearer token, the device's slots, body,
//! encoding, batch validation; the body's limits are in
//! [`crate::collector::intake`]) and their mapping to status codes.

use crate::collector::devices::token_hash;
use crate::collector::intake::{self, DeviceSlots, IngestLimits};
use crate::collector::store::{Device, Store, StoreError};
use crate::wire::v1::{self, Ack, Batch, Invalid};
use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

pub use crate::collector::intake::{Encoding, content_encoding, decode_body};
pub use crate::collector::metrics::{CodeLabels, CollectorMetrics};

/// Path of the ingest endpoint.
pub const INGEST_PATH: &str = "/api/v1/ingest";
/// Longest a client may take to send its whole body (see [`intake::read_body`]).
pub const BODY_TIMEOUT: Duration = intake::BODY_TIMEOUT;
/// Longest `/health` waits for the database.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest accepted bearer token.
pub const MAX_TOKEN_LEN: usize = 512;
/// `Retry-After` on 429, seconds.
pub const RETRY_AFTER_OVERLOAD: u32 = 1;
/// `Retry-After` on 503, seconds.
pub const RETRY_AFTER_UNAVAILABLE: u32 = 5;
/// `Retry-After` on 429 for a device whose earlier uploads are still in
/// flight, seconds.
pub const RETRY_AFTER_DEVICE_BUSY: u32 = 5;

/// Body of every error answer: `{"error": "...", "field": "records[3].at"}`
/// (`field` only when one field is to blame).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Why an ingest request was refused; each maps to one status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// 401: no usable `Authorization: Bearer` header.
    MissingToken(String),
    /// 401: a well-formed token nobody registered.
    UnknownToken,
    /// 403: the token's device is revoked.
    Revoked,
    /// 403: the batch names another device than the token's.
    WrongDevice { token_device: String },
    /// 413: body over the limit, as sent or once decompressed.
    TooLarge(String),
    /// 415: a `Content-Encoding` other than gzip or identity.
    UnsupportedEncoding(String),
    /// 400: the batch breaks the protocol.
    Invalid(Invalid),
    /// 400: the body could not be read or decompressed.
    BadBody(String),
    /// 408: the body arrived too slowly, or not within [`BODY_TIMEOUT`].
    Timeout(String),
    /// 429: too many ingests in flight.
    Overloaded,
    /// 429: this device already has its most uploads in flight.
    DeviceBusy { max: usize },
    /// 503: the store failed; the agent retries.
    Unavailable,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingToken(_) | ApiError::UnknownToken => StatusCode::UNAUTHORIZED,
            ApiError::Revoked | ApiError::WrongDevice { .. } => StatusCode::FORBIDDEN,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Invalid(_) | ApiError::BadBody(_) => StatusCode::BAD_REQUEST,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Overloaded | ApiError::DeviceBusy { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn body(&self) -> ErrorBody {
        let error = match self {
            ApiError::MissingToken(m) => m.clone(),
            ApiError::UnknownToken => "unknown token".into(),
            ApiError::Revoked => "token revoked".into(),
            ApiError::WrongDevice { token_device } => {
                format!("this token belongs to device {token_device}")
            }
            ApiError::TooLarge(m) | ApiError::BadBody(m) | ApiError::Timeout(m) => m.clone(),
            ApiError::UnsupportedEncoding(e) => {
                format!("unsupported Content-Encoding `{e}`: send gzip or identity")
            }
            ApiError::Invalid(i) => i.message.clone(),
            ApiError::Overloaded => "too many uploads at once: retry shortly".into(),
            ApiError::DeviceBusy { max } => format!(
                "this device already has {max} uploads in flight (at most {max} at once): \
                 retry after them"
            ),
            ApiError::Unavailable => "storage unavailable: retry later".into(),
        };
        let field = match self {
            ApiError::Invalid(i) => Some(i.path.clone()),
            _ => None,
        };
        ErrorBody { error, field }
    }

    /// Extra headers: `WWW-Authenticate` on 401, `Retry-After` on 429 and 503.
    pub fn headers(&self) -> Vec<(header::HeaderName, HeaderValue)> {
        let v = HeaderValue::from_static;
        match self {
            ApiError::MissingToken(_) => {
                vec![(header::WWW_AUTHENTICATE, v("Bearer realm=\"linkwatch\""))]
            }
            ApiError::UnknownToken => vec![(
                header::WWW_AUTHENTICATE,
                v("Bearer realm=\"linkwatch\", error=\"invalid_token\""),
            )],
            ApiError::Overloaded => {
                vec![(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_OVERLOAD))]
            }
            ApiError::DeviceBusy { .. } => vec![(
                header::RETRY_AFTER,
                HeaderValue::from(RETRY_AFTER_DEVICE_BUSY),
            )],
            ApiError::Unavailable => vec![(
                header::RETRY_AFTER,
                HeaderValue::from(RETRY_AFTER_UNAVAILABLE),
            )],
            _ => vec![],
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), Json(self.body())).into_response();
        for (k, v) in self.headers() {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}

/// The bearer token of a request, checked for shape only.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next().ok_or_else(|| {
        ApiError::MissingToken("missing `Authorization: Bearer TOKEN` header".into())
    })?;
    if values.next().is_some() {
        return Err(ApiError::MissingToken(
            "more than one Authorization header".into(),
        ));
    }
    let malformed =
        || ApiError::MissingToken("malformed Authorization header: expected `Bearer TOKEN`".into());
    let text = value.to_str().map_err(|_| malformed())?.trim();
    let (scheme, token) = text.split_once(' ').ok_or_else(malformed)?;
    let token = token.trim_start();
    if !scheme.eq_ignore_ascii_case("bearer")
        || token.is_empty()
        || token.len() > MAX_TOKEN_LEN
        || !is_token68(token)
    {
        return Err(malformed());
    }
    Ok(token)
}

/// RFC 7235 token68: `[A-Za-z0-9-._~+/]+ =*`.
fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

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

/// Limits of the API (from `[collector]`).
#[derive(Debug, Clone)]
pub struct ApiOptions {
    pub max_body_bytes: usize,
    pub max_inflight: usize,
    /// Holidays applied to every office-hours schedule of the read API.
    pub holidays: std::collections::BTreeSet<jiff::civil::Date>,
}

struct Inner {
    store: Arc<dyn Store>,
    metrics: Arc<CollectorMetrics>,
    inflight: Semaphore,
    devices: Arc<DeviceSlots>,
    max_body_bytes: usize,
    limits: IngestLimits,
    holidays: std::collections::BTreeSet<jiff::civil::Date>,
    /// The key of alert acknowledgement links, once alerts are configured.
    ack_key: std::sync::OnceLock<crate::collector::alerts::ack::AckKey>,
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

impl ApiState {
    /// With the default [`IngestLimits`].
    pub fn new(store: Arc<dyn Store>, opts: ApiOptions) -> Self {
        Self::with_limits(
            store,
            opts,
            IngestLimits::default(),
            Arc::new(CollectorMetrics::new()),
        )
    }

    /// With the ingest limits given, reporting into `metrics` (shared with
    /// the connection guard).
    pub fn with_limits(
        store: Arc<dyn Store>,
        opts: ApiOptions,
        limits: IngestLimits,
        metrics: Arc<CollectorMetrics>,
    ) -> Self {
        ApiState(Arc::new(Inner {
            store,
            metrics,
            inflight: Semaphore::new(opts.max_inflight.min(Semaphore::MAX_PERMITS)),
            devices: DeviceSlots::new(limits.max_inflight_per_device),
            max_body_bytes: opts.max_body_bytes,
            limits,
            holidays: opts.holidays,
            ack_key: std::sync::OnceLock::new(),
        }))
    }
    /// Accept acknowledgement links signed with `key` (once; later calls
    /// change nothing).
    pub fn set_ack_key(&self, key: crate::collector::alerts::ack::AckKey) {
        let _ = self.0.ack_key.set(key);
    }
    pub fn ack_key(&self) -> Option<&crate::collector::alerts::ack::AckKey> {
        self.0.ack_key.get()
    }
    /// Holidays applied to office-hours schedules of reports.
    pub fn holidays(&self) -> &std::collections::BTreeSet<jiff::civil::Date> {
        &self.0.holidays
    }
    pub fn metrics(&self) -> &CollectorMetrics {
        &self.0.metrics
    }
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.0.store
    }
}

/// The API's routes, with the body limit applied.
pub fn router(state: ApiState) -> Router {
    let limit = state.0.max_body_bytes;
    Router::new()
        .route(INGEST_PATH, post(ingest))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        // Reports, timelines, outages, admin: API tokens (see read_api.rs).
        .merge(crate::collector::read_api::routes())
        .merge(crate::collector::alerts_api::routes())
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

use crate::shared::time::now_ms;

fn store_failed(op: &str, e: &StoreError) -> ApiError {
    tracing::error!(error = %e, "ingest: {op} failed; answering 503");
    ApiError::Unavailable
}

async fn ingest(State(st): State<ApiState>, req: Request) -> Response {
    let started = Instant::now();
    let m = &st.0.metrics;
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
    let device = inner
        .store
        .device_by_token(&token_hash(token))
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
    let ack = inner
        .store
        .ingest_upload(
            device.id,
            &batch.records,
            batch.next_upload_due_ms(now),
            now,
        )
        .await
        .map_err(|e| store_failed("storing the batch", &e))?;
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

async fn health(State(st): State<ApiState>) -> (StatusCode, &'static str) {
    match tokio::time::timeout(HEALTH_TIMEOUT, st.0.store.ping()).await {
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

async fn metrics(State(st): State<ApiState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.0.metrics.encode(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        let ok = headers(&[("authorization", "Bearer lw1_abc-DEF_123")]);
        assert_eq!(bearer_token(&ok).unwrap(), "lw1_abc-DEF_123");
        let lower = headers(&[("authorization", "bearer  tok==")]);
        assert_eq!(bearer_token(&lower).unwrap(), "tok==");
        for bad in [
            vec![],
            vec![("authorization", "Basic dXNlcjpwYXNz")],
            vec![("authorization", "Bearer")],
            vec![("authorization", "Bearer ")],
            vec![("authorization", "Bearer a b")],
            vec![("authorization", "Bearer =")],
            vec![("authorization", "Bearer a"), ("authorization", "Bearer b")],
        ] {
            let e = bearer_token(&headers(&bad)).unwrap_err();
            assert!(matches!(e, ApiError::MissingToken(_)), "{bad:?}");
            assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(e.headers()[0].0, header::WWW_AUTHENTICATE);
        }
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert!(bearer_token(&headers(&[("authorization", &long)])).is_err());
    }

    #[test]
    fn errors_map_to_status_body_and_headers() {
        let inv = ApiError::Invalid(Invalid {
            path: "records[3].at".into(),
            message: "out of range".into(),
        });
        assert_eq!(inv.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            serde_json::to_value(inv.body()).unwrap(),
            serde_json::json!({"error": "out of range", "field": "records[3].at"})
        );
        let wrong = ApiError::WrongDevice {
            token_device: "gw1".into(),
        };
        assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
        assert_eq!(wrong.body().error, "this token belongs to device gw1");
        assert_eq!(wrong.body().field, None);
        assert_eq!(ApiError::Revoked.body().error, "token revoked");
        assert_eq!(ApiError::Revoked.status(), StatusCode::FORBIDDEN);
        let o = ApiError::Overloaded;
        assert_eq!(o.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            o.headers(),
            vec![(header::RETRY_AFTER, HeaderValue::from(1))]
        );
        assert_eq!(
            ApiError::Unavailable.status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(ApiError::Unavailable.headers()[0].0, header::RETRY_AFTER);
        assert_eq!(
            ApiError::TooLarge("x".into()).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert!(
            ApiError::UnknownToken.headers()[0]
                .1
                .to_str()
                .unwrap()
                .contains("invalid_token")
        );
        let busy = ApiError::DeviceBusy { max: 2 };
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(
            busy.headers(),
            vec![(
                header::RETRY_AFTER,
                HeaderValue::from(RETRY_AFTER_DEVICE_BUSY)
            )]
        );
        assert!(busy.body().error.contains("at most 2"), "{:?}", busy.body());
        let slow = ApiError::Timeout("slower than 1024 bytes/s".into());
        assert_eq!(slow.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(slow.body().error, "slower than 1024 bytes/s");
        let r = ApiError::Overloaded.into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "1");
        assert!(
            r.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
    }

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
