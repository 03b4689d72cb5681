//! How the collector's HTTP API says no: the JSON error body every endpoint
//! answers with ([`ErrorBody`]), the refusals of the ingest endpoint
//! ([`ApiError`]) and of the read and alerts APIs ([`ReadError`]), each
//! mapped to one status code and its headers (`WWW-Authenticate` on 401,
//! `Retry-After` on 429 and 503).

use crate::collector::report::{ParamError, ReportError};
use crate::collector::store::StoreError;
use crate::wire::v1::Invalid;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `Retry-After` on 429, seconds.
pub const RETRY_AFTER_OVERLOAD: u32 = 1;
/// `Retry-After` on 503, seconds.
pub const RETRY_AFTER_UNAVAILABLE: u32 = 5;
/// `Retry-After` on 429 for a device whose earlier uploads are still in
/// flight, seconds.
pub const RETRY_AFTER_DEVICE_BUSY: u32 = 5;

/// `WWW-Authenticate` when no usable token was sent.
const AUTH_MISSING: &str = "Bearer realm=\"linkwatch\"";
/// `WWW-Authenticate` when the token is not one the collector accepts.
const AUTH_INVALID: &str = "Bearer realm=\"linkwatch\", error=\"invalid_token\"";

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
    /// 408: the body arrived too slowly, or not within
    /// [`super::intake::BODY_TIMEOUT`].
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
        let retry = |s: u32| vec![(header::RETRY_AFTER, HeaderValue::from(s))];
        match self {
            ApiError::MissingToken(_) => auth_header(AUTH_MISSING),
            ApiError::UnknownToken => auth_header(AUTH_INVALID),
            ApiError::Overloaded => retry(RETRY_AFTER_OVERLOAD),
            ApiError::DeviceBusy { .. } => retry(RETRY_AFTER_DEVICE_BUSY),
            ApiError::Unavailable => retry(RETRY_AFTER_UNAVAILABLE),
            _ => vec![],
        }
    }
}

fn auth_header(value: &'static str) -> Vec<(header::HeaderName, HeaderValue)> {
    vec![(header::WWW_AUTHENTICATE, HeaderValue::from_static(value))]
}

/// `status` with `body` as JSON and `headers` added.
fn answer(
    status: StatusCode,
    body: ErrorBody,
    headers: Vec<(header::HeaderName, HeaderValue)>,
) -> Response {
    let mut resp = (status, Json(body)).into_response();
    for (k, v) in headers {
        resp.headers_mut().insert(k, v);
    }
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        answer(self.status(), self.body(), self.headers())
    }
}

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

    /// Extra headers: `WWW-Authenticate` on 401, `Retry-After` on 503.
    pub fn headers(&self) -> Vec<(header::HeaderName, HeaderValue)> {
        match self {
            ReadError::MissingToken(_) => auth_header(AUTH_MISSING),
            ReadError::InvalidToken(_) => auth_header(AUTH_INVALID),
            ReadError::Unavailable => vec![(
                header::RETRY_AFTER,
                HeaderValue::from(RETRY_AFTER_UNAVAILABLE),
            )],
            _ => vec![],
        }
    }

    /// 400 naming `field`.
    pub fn param(field: &'static str, message: impl Into<String>) -> Self {
        ReadError::Param(ParamError {
            field,
            message: message.into(),
        })
    }

    /// 503 for a failed store operation `op` of `area` (`read API`,
    /// `alerts API`), logged.
    pub fn store_failed(area: &str, op: &str, e: &StoreError) -> Self {
        tracing::error!(error = %e, "{area}: {op} failed; answering 503");
        ReadError::Unavailable
    }
}

impl IntoResponse for ReadError {
    fn into_response(self) -> Response {
        answer(self.status(), self.body(), self.headers())
    }
}

impl From<ParamError> for ReadError {
    fn from(p: ParamError) -> Self {
        ReadError::Param(p)
    }
}

impl From<ReportError> for ReadError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Store(e) => ReadError::store_failed("read API", "report", &e),
            ReportError::Param(p) => ReadError::Param(p),
            e @ (ReportError::BadRecord { .. } | ReportError::Internal(_)) => {
                tracing::error!(error = %e, "read API: report failed");
                ReadError::Internal(e.to_string())
            }
        }
    }
}

#[cfg(test)]
mod tests;
