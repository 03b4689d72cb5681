//! Who is asking: the shape of an `Authorization: Bearer` header, the API
//! token behind it for the read and alerts APIs (a device's upload token is
//! refused there), the admin role, and the devices a token limited to a
//! branch may see (others are answered 404, as ones that do not exist).

use super::error::{ApiError, ReadError};
use super::state::ApiState;
use crate::collector::access::{Access, Role};
use crate::collector::devices::token_hash;
use crate::collector::store::{Device, Office};
use axum::http::{HeaderMap, header};
use std::collections::BTreeMap;

/// Longest accepted bearer token.
pub const MAX_TOKEN_LEN: usize = 512;

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

fn store_failed(op: &str, e: &crate::collector::store::StoreError) -> ReadError {
    ReadError::store_failed("read API", op, e)
}

/// The reader behind a request's bearer token.
pub async fn authenticate(st: &ApiState, headers: &HeaderMap) -> Result<Access, ReadError> {
    let token = bearer_token(headers).map_err(|e| ReadError::MissingToken(e.body().error))?;
    let hash = token_hash(token);
    let store = st.store();
    match store
        .api_token_by_hash(&hash)
        .await
        .map_err(|e| store_failed("API token lookup", &e))?
    {
        Some(t) if t.revoked => {
            tracing::info!(token = %t.name, "read API: revoked token");
            Err(ReadError::InvalidToken("token revoked"))
        }
        Some(t) => Ok(Access {
            token: t.name,
            role: t.role,
            branch: t.branch,
        }),
        None => {
            let device = store
                .device_by_token(&hash)
                .await
                .map_err(|e| store_failed("token lookup", &e))?;
            if let Some(d) = device {
                tracing::info!(device = %d.name, "read API: a device token was used to read");
                return Err(ReadError::DeviceToken);
            }
            Err(ReadError::InvalidToken("unknown token"))
        }
    }
}

/// 403 unless `access` is an admin token; `what` names the refused action
/// in the log.
pub fn require_admin(access: &Access, what: &str) -> Result<(), ReadError> {
    if access.role == Role::Admin {
        Ok(())
    } else {
        tracing::info!(token = %access.token, "{what} refused to a read token");
        Err(ReadError::NotAdmin)
    }
}

/// The offices of the hierarchy by code (to place devices and alerts in a
/// token's branch).
pub async fn offices(st: &ApiState, area: &str) -> Result<BTreeMap<String, Office>, ReadError> {
    Ok(st
        .store()
        .list_offices()
        .await
        .map_err(|e| ReadError::store_failed(area, "list offices", &e))?
        .into_iter()
        .map(|o| (o.code.clone(), o))
        .collect())
}

/// The device `name` if this reader may see it; 404 otherwise.
pub async fn visible_device(
    st: &ApiState,
    access: &Access,
    name: &str,
) -> Result<Device, ReadError> {
    let not_found = || ReadError::NotFound(format!("no device named `{name}`"));
    let d = st
        .store()
        .device_by_name(name)
        .await
        .map_err(|e| store_failed("device lookup", &e))?
        .ok_or_else(not_found)?;
    if access.branch.is_some() && !access.sees(&d, &offices(st, "read API").await?) {
        return Err(not_found());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::http::test_headers as headers;
    use axum::http::StatusCode;

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
}
