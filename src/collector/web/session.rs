//! Who is looking: session cookies (HttpOnly, SameSite=Strict, Secure over
//! HTTPS; the server keeps only their SHA-256, with an expiry), the form
//! token (CSRF) every POST must carry, the checked query strings and form
//! bodies of the pages (unknown or repeated fields: 400), and the errors the
//! pages answer with.

use super::WebState;
use super::i18n::Lang;
use crate::collector::access::Access;
use crate::collector::devices::{new_token, token_hash};
use crate::collector::last_seen::now_ms;
use crate::collector::store::WebSession;
use axum::http::{HeaderMap, HeaderValue, header};
use std::collections::HashMap;

/// The session cookie.
pub const SESSION_COOKIE: &str = "lw_session";
/// The sign-in form's token cookie (no session yet: double submit).
pub const SIGNIN_COOKIE: &str = "lw_signin";
/// Longest cookie value read.
const MAX_COOKIE: usize = 128;

/// What a page answers when it cannot show itself.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in (or the session ended): to the sign-in page.
    SignIn {
        expired: bool,
    },
    BadRequest(String),
    NotFound,
    /// A POST without the right form token.
    Forged,
    /// Too much work in hand (reports being made): try again shortly.
    Busy,
    Store(String),
}

/// A store failure as a page error.
pub fn store_err(e: impl std::fmt::Display) -> PageError {
    PageError::Store(e.to_string())
}

/// The value of cookie `name` (the first, if sent more than once).
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty() && v.len() <= MAX_COOKIE)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/`, Secure when
/// `secure`; `max_age_s` 0 deletes it.
pub fn set_cookie(name: &str, value: &str, max_age_s: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("lw_invalid=; Max-Age=0"))
}

/// A fresh random secret (a session cookie, a form token).
pub fn secret() -> String {
    new_token()
}

/// Equal without an early exit on the first difference.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A signed-in user looking at a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub session: WebSession,
    pub lang: Lang,
    /// What this user may see: the same rules as an API token.
    pub access: Access,
    /// The SHA-256 of the session cookie (to sign out).
    pub id_hash: String,
}

impl Viewer {
    /// The form token of this session's pages.
    pub fn csrf(&self) -> &str {
        &self.session.csrf
    }
    /// Refuse a POST whose form token is not this session's.
    pub fn check_csrf(&self, sent: Option<&String>) -> Result<(), PageError> {
        match sent {
            Some(s) if same(s, &self.session.csrf) => Ok(()),
            _ => {
                tracing::info!(user = %self.session.user.name, "dashboard: form token refused");
                Err(PageError::Forged)
            }
        }
    }
}

/// The signed-in user behind the request's session cookie.
pub async fn viewer(ws: &WebState, headers: &HeaderMap) -> Result<Viewer, PageError> {
    let Some(value) = cookie(headers, SESSION_COOKIE) else {
        return Err(PageError::SignIn { expired: false });
    };
    let id_hash = token_hash(value);
    let session = ws
        .api
        .store()
        .session(&id_hash, now_ms())
        .await
        .map_err(store_err)?
        .ok_or(PageError::SignIn { expired: true })?;
    ws.last_view_ms
        .store(now_ms(), std::sync::atomic::Ordering::Relaxed);
    let u = &session.user;
    Ok(Viewer {
        lang: Lang::parse(&u.lang).unwrap_or(Lang::En),
        access: Access {
            token: format!("user:{}", u.name),
            role: u.role,
            branch: u.branch.clone(),
        },
        id_hash,
        session,
    })
}

/// Parsed `name=value` pairs (a query string or a form body): each name at
/// most once and among `allowed`, else 400 naming it.
pub fn fields(
    text: &str,
    allowed: &[&'static str],
) -> Result<HashMap<&'static str, String>, PageError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text)
        .map_err(|e| PageError::BadRequest(format!("malformed parameters: {e}")))?;
    let mut out = HashMap::new();
    for (k, v) in pairs {
        let Some(field) = allowed.iter().find(|a| **a == k) else {
            return Err(PageError::BadRequest(format!(
                "unknown parameter `{}`",
                k.chars().take(40).collect::<String>()
            )));
        };
        if out.insert(*field, v).is_some() {
            return Err(PageError::BadRequest(format!(
                "`{field}` is given more than once"
            )));
        }
    }
    Ok(out)
}

/// A form body as text (bounded by the router's body limit).
pub fn form_text(body: &[u8]) -> Result<&str, PageError> {
    std::str::from_utf8(body).map_err(|_| PageError::BadRequest("form is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_read_and_set_strictly() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, "a=1; lw_session=abc".parse().unwrap());
        h.append(header::COOKIE, "lw_session=second".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "b"), None);
        let c = set_cookie(SESSION_COOKIE, "v", 60, true);
        let c = c.to_str().unwrap();
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Secure",
            "Max-Age=60",
            "Path=/",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(
            !set_cookie("x", "v", 0, false)
                .to_str()
                .unwrap()
                .contains("Secure")
        );
    }

    #[test]
    fn fields_refuse_unknown_and_repeated_names() {
        let f = fields("level=division&name=Dhaka", &["level", "name"]).unwrap();
        assert_eq!(f["name"], "Dhaka");
        assert!(matches!(
            fields("page=1&page=2", &["page"]),
            Err(PageError::BadRequest(_))
        ));
        assert!(matches!(
            fields("evil=1", &["page"]),
            Err(PageError::BadRequest(_))
        ));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
