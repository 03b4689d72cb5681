//! The collector's HTTP API: `POST /api/v1/ingest` (protocol v1, see
//! `docs/protocol.md`), `GET /health` and `GET /metrics`; the read API for
//! IT staff is merged in from [`crate::collector::read_api`]. Owns the request
//! checks (overload, bearer token, size, encoding, batch validation), their
//! mapping to status codes, and the collector's Prometheus metrics.

use crate::collector::devices::token_hash;
use crate::collector::store::{Device, Store, StoreError};
use crate::wire::v1::{self, Ack, Batch, Invalid};
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;

/// Path of the ingest endpoint.
pub const INGEST_PATH: &str = "/api/v1/ingest";
/// Longest a client may take to send its body before 408 (frees the slot of
/// a connection that died mid-upload). Generous: 4 MiB over a poor mobile link.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest `/health` waits for the database.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest accepted bearer token.
pub const MAX_TOKEN_LEN: usize = 512;
/// `Retry-After` on 429, seconds.
pub const RETRY_AFTER_OVERLOAD: u32 = 1;
/// `Retry-After` on 503, seconds.
pub const RETRY_AFTER_UNAVAILABLE: u32 = 5;

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
    /// 408: the body did not arrive within [`BODY_TIMEOUT`].
    Timeout,
    /// 429: too many ingests in flight.
    Overloaded,
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
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Overloaded => StatusCode::TOO_MANY_REQUESTS,
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
            ApiError::TooLarge(m) | ApiError::BadBody(m) => m.clone(),
            ApiError::UnsupportedEncoding(e) => {
                format!("unsupported Content-Encoding `{e}`: send gzip or identity")
            }
            ApiError::Invalid(i) => i.message.clone(),
            ApiError::Timeout => "the request body did not arrive in time".into(),
            ApiError::Overloaded => "too many uploads at once: retry shortly".into(),
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

/// How the body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
}

/// The request's `Content-Encoding`: absent, `identity` or `gzip` (`x-gzip`).
pub fn content_encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let mut values = headers.get_all(header::CONTENT_ENCODING).iter();
    let Some(v) = values.next() else {
        return Ok(Encoding::Identity);
    };
    let text = v.to_str().unwrap_or("?").trim().to_ascii_lowercase();
    if values.next().is_some() {
        return Err(ApiError::UnsupportedEncoding(format!("{text}, ...")));
    }
    match text.as_str() {
        "" | "identity" => Ok(Encoding::Identity),
        "gzip" | "x-gzip" => Ok(Encoding::Gzip),
        _ => Err(ApiError::UnsupportedEncoding(text)),
    }
}

/// The JSON bytes of a body: as sent, or gunzipped up to `cap` bytes (413 past it).
pub fn decode_body(encoding: Encoding, body: Bytes, cap: usize) -> Result<Bytes, ApiError> {
    match encoding {
        Encoding::Identity => Ok(body),
        Encoding::Gzip => {
            let mut out = Vec::with_capacity((body.len() * 4).min(cap));
            let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::BadBody(format!("body is not valid gzip: {e}")))?;
            if out.len() > cap {
                return Err(ApiError::TooLarge(format!(
                    "body is over {cap} bytes once decompressed: send smaller batches"
                )));
            }
            Ok(Bytes::from(out))
        }
    }
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

/// Labels of the per-status-code request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabels {
    pub code: String,
}

/// The collector's Prometheus metrics.
pub struct CollectorMetrics {
    registry: Registry,
    pub requests: Family<CodeLabels, Counter>,
    pub records_stored: Counter,
    pub records_duplicate: Counter,
    pub latency: Histogram,
    pub inflight: Gauge,
    /// The periodic jobs' (who leads which, what they did).
    pub jobs: crate::collector::lead::JobMetrics,
}

impl Default for CollectorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl CollectorMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("linkwatch_collector");
        let requests = Family::<CodeLabels, Counter>::default();
        registry.register(
            "ingest_requests",
            "Ingest requests answered, by HTTP status code",
            requests.clone(),
        );
        let records_stored = Counter::default();
        registry.register(
            "ingest_records_stored",
            "Records stored for the first time",
            records_stored.clone(),
        );
        let records_duplicate = Counter::default();
        registry.register(
            "ingest_records_duplicate",
            "Records received again (replays) and not stored twice",
            records_duplicate.clone(),
        );
        let latency = Histogram::new([
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
        ]);
        registry.register(
            "ingest_duration_seconds",
            "Time to answer an ingest request",
            latency.clone(),
        );
        let inflight = Gauge::default();
        registry.register(
            "ingest_inflight",
            "Ingest requests being handled now",
            inflight.clone(),
        );
        let jobs = crate::collector::lead::JobMetrics::register(&mut registry);
        CollectorMetrics {
            registry,
            jobs,
            requests,
            records_stored,
            records_duplicate,
            latency,
            inflight,
        }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
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
    metrics: CollectorMetrics,
    inflight: Semaphore,
    max_body_bytes: usize,
    holidays: std::collections::BTreeSet<jiff::civil::Date>,
}

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState(Arc<Inner>);

impl ApiState {
    pub fn new(store: Arc<dyn Store>, opts: ApiOptions) -> Self {
        ApiState(Arc::new(Inner {
            store,
            metrics: CollectorMetrics::new(),
            inflight: Semaphore::new(opts.max_inflight.min(Semaphore::MAX_PERMITS)),
            max_body_bytes: opts.max_body_bytes,
            holidays: opts.holidays,
        }))
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
        .layer(DefaultBodyLimit::max(limit))
        .with_state(state)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

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
    let _permit = inner.inflight.try_acquire().map_err(|_| {
        tracing::debug!("ingest: more than the allowed uploads in flight; answering 429");
        ApiError::Overloaded
    })?;
    let _gauge = InflightGauge::enter(&inner.metrics.inflight);

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
    let body = match tokio::time::timeout(BODY_TIMEOUT, Bytes::from_request(req, &())).await {
        Err(_) => return Err(ApiError::Timeout),
        Ok(Err(rej)) if rej.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return Err(ApiError::TooLarge(format!(
                "body is over {} bytes: send smaller batches",
                inner.max_body_bytes
            )));
        }
        Ok(Err(rej)) => return Err(ApiError::BadBody(format!("cannot read the body: {rej}"))),
        Ok(Ok(b)) => b,
    };
    let now = now_ms();
    let dev = device.clone();
    // Decompression and parsing are CPU work on up to 32 MiB: off the async threads.
    let batch = tokio::task::spawn_blocking(move || {
        let json = decode_body(encoding, body, v1::MAX_BODY_DECOMPRESSED)?;
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
        .ingest(device.id, &batch.records, now)
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
    use std::io::Write;

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

    fn gz(data: &[u8]) -> Bytes {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        Bytes::from(e.finish().unwrap())
    }

    #[test]
    fn encodings_and_decompression_caps() {
        assert_eq!(content_encoding(&headers(&[])).unwrap(), Encoding::Identity);
        assert_eq!(
            content_encoding(&headers(&[("content-encoding", "GZIP")])).unwrap(),
            Encoding::Gzip
        );
        let e = content_encoding(&headers(&[("content-encoding", "br")])).unwrap_err();
        assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let data = b"{\"v\":1}";
        assert_eq!(
            &decode_body(Encoding::Gzip, gz(data), 100).unwrap()[..],
            data
        );
        assert_eq!(
            &decode_body(Encoding::Identity, Bytes::from_static(data), 1).unwrap()[..],
            data
        );
        let bomb = gz(&vec![b' '; 10_000]);
        assert!(bomb.len() < 200);
        let e = decode_body(Encoding::Gzip, bomb.clone(), 9_999).unwrap_err();
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            decode_body(Encoding::Gzip, bomb, 10_000).unwrap().len(),
            10_000
        );
        let e = decode_body(Encoding::Gzip, Bytes::from_static(b"not gzip"), 100).unwrap_err();
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
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

    #[test]
    fn metrics_encode_the_ingest_series() {
        let m = CollectorMetrics::new();
        m.requests
            .get_or_create(&CodeLabels { code: "200".into() })
            .inc();
        m.records_stored.inc_by(3);
        m.latency.observe(0.01);
        let text = m.encode();
        assert!(
            text.contains("linkwatch_collector_ingest_requests_total{code=\"200\"} 1"),
            "{text}"
        );
        assert!(text.contains("linkwatch_collector_ingest_records_stored_total 3"));
        assert!(text.contains("linkwatch_collector_ingest_duration_seconds_bucket"));
    }
}
