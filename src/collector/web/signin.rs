//! Signing in and out, and switching language: the sign-in form (its token
//! in a SameSite=Strict cookie and in the form), password checks with the
//! same cost for unknown users, attempts rate-limited per account and per
//! address with one generic error (counted in memory and in the database,
//! so replicas share one limit), a fresh session at each sign-in.

use super::WebState;
use super::i18n::{Lang, T, tr};
use super::layout::page;
use super::limit;
use super::session::{
    PageError, SESSION_COOKIE, SIGNIN_COOKIE, cookie, fields, form_text, same, secret, set_cookie,
    store_err, viewer,
};
use super::users::{decoy_hash, verify_password};
use crate::collector::devices::token_hash;
use crate::collector::last_seen::now_ms;
use crate::collector::store::NewSession;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use std::net::SocketAddr;

/// How long the sign-in form's token lasts (s).
const FORM_TTL_S: i64 = 1800;

fn render(
    lang: Lang,
    token: &str,
    error: Option<&str>,
    secure: bool,
    status: StatusCode,
) -> Response {
    let body = html! {
        form.signin method="post" action="/signin" {
            h1 { (tr(lang, T::SignIn)) }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            input type="hidden" name="csrf" value=(token);
            input type="hidden" name="lang" value=(lang.as_str());
            label for="name" { (tr(lang, T::UserName)) }
            input #name name="name" autocomplete="username" required maxlength="64";
            label for="password" { (tr(lang, T::Password)) }
            input #password type="password" name="password" autocomplete="current-password"
                required maxlength="256";
            button type="submit" { (tr(lang, T::SignIn)) }
            p.note {
                a href={"/signin?lang=" (lang.other().as_str())} lang=(lang.other().as_str()) {
                    (tr(lang.other(), T::LangName))
                }
            }
        }
    };
    (
        status,
        [(
            header::SET_COOKIE,
            set_cookie(SIGNIN_COOKIE, token, FORM_TTL_S, secure),
        )],
        page(lang, tr(lang, T::SignIn), None, "/fleet", body),
    )
        .into_response()
}

fn lang_of(v: Option<&String>) -> Result<Lang, PageError> {
    match v.map(String::as_str) {
        None | Some("") => Ok(Lang::En),
        Some(s) => {
            Lang::parse(s).ok_or_else(|| PageError::BadRequest("`lang` must be en or bn".into()))
        }
    }
}

/// `GET /signin`.
pub(super) async fn form(
    State(ws): State<WebState>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let q = fields(uri.query().unwrap_or(""), &["expired", "lang"])?;
    let lang = lang_of(q.get("lang"))?;
    if viewer(&ws, &headers).await.is_ok() {
        return Ok(Redirect::to("/fleet").into_response());
    }
    let note = q.contains_key("expired").then(|| tr(lang, T::Expired));
    Ok(render(
        lang,
        &secret(),
        note,
        ws.opts.secure_cookies,
        StatusCode::OK,
    ))
}

/// `POST /signin`.
pub(super) async fn submit(
    State(ws): State<WebState>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let f = fields(form_text(&body)?, &["csrf", "lang", "name", "password"])?;
    let lang = lang_of(f.get("lang"))?;
    match (cookie(&headers, SIGNIN_COOKIE), f.get("csrf")) {
        (Some(c), Some(sent)) if same(c, sent) => {}
        _ => return Err(PageError::Forged),
    }
    let name = f.get("name").map(|s| s.trim()).unwrap_or("");
    let password = f.get("password").map(String::as_str).unwrap_or("");
    let address = peer.map_or_else(
        || "unknown".to_string(),
        |Extension(ConnectInfo(a))| a.ip().to_string(),
    );
    let now = now_ms();
    let limits = ws.opts.limits;
    let secure = ws.opts.secure_cookies;
    let shared = limit::shared_keys(&limits, name, &address);
    let allowed = ws.attempts().allowed(&limits, name, &address, now) && {
        let keys = [shared[0].0.clone(), shared[1].0.clone()];
        let rows = ws
            .api
            .store()
            .signin_failures(&keys)
            .await
            .map_err(store_err)?;
        !limit::shared_blocked(&limits, &shared, &rows, now)
    };
    if !allowed {
        tracing::info!(user = %name, %address, "dashboard: sign-in refused, too many attempts");
        return Ok(render(
            lang,
            &secret(),
            Some(tr(lang, T::TooMany)),
            secure,
            StatusCode::TOO_MANY_REQUESTS,
        ));
    }
    let user = if name.is_empty() || name.len() > super::users::MAX_NAME {
        None
    } else {
        ws.api.store().user_by_name(name).await.map_err(store_err)?
    };
    let phc = user
        .as_ref()
        .map_or(decoy_hash().to_string(), |u| u.password_hash.clone());
    let pw = password.to_string();
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &phc))
        .await
        .unwrap_or(false);
    let Some(user) = user.filter(|_| ok) else {
        ws.attempts().failed(&limits, name, &address, now);
        ws.api
            .store()
            .add_signin_failure(&shared, now)
            .await
            .map_err(store_err)?;
        tracing::info!(user = %name, %address, "dashboard: sign-in failed");
        return Ok(render(
            lang,
            &secret(),
            Some(tr(lang, T::BadSignIn)),
            secure,
            StatusCode::UNAUTHORIZED,
        ));
    };
    ws.attempts().succeeded(name);
    ws.api
        .store()
        .clear_signin_failures(&shared[0].0)
        .await
        .map_err(store_err)?;
    let value = secret();
    let id_hash = token_hash(&value);
    let csrf = secret();
    let ttl_ms = ws.opts.session_ttl.as_millis() as i64;
    ws.api
        .store()
        .add_session(&NewSession {
            id_hash: &id_hash,
            user_id: user.id,
            csrf: &csrf,
            now_ms: now,
            expires_ms: now + ttl_ms,
        })
        .await
        .map_err(store_err)?;
    tracing::info!(user = %user.name, %address, "dashboard: signed in");
    let mut resp = Redirect::to("/fleet").into_response();
    let h = resp.headers_mut();
    h.append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &value, ttl_ms / 1000, secure),
    );
    h.append(header::SET_COOKIE, set_cookie(SIGNIN_COOKIE, "", 0, secure));
    Ok(resp)
}

/// `POST /signout`.
pub(super) async fn signout(
    State(ws): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = viewer(&ws, &headers).await?;
    let f = fields(form_text(&body)?, &["csrf"])?;
    v.check_csrf(f.get("csrf"))?;
    ws.api
        .store()
        .delete_session(&v.id_hash)
        .await
        .map_err(store_err)?;
    let mut resp = Redirect::to("/signin").into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, "", 0, ws.opts.secure_cookies),
    );
    Ok(resp)
}

/// Is `back` a page of the dashboard to go back to (never another site)?
fn local_page(back: &str) -> bool {
    (back == "/fleet"
        || back.starts_with("/fleet?")
        || back.starts_with("/devices/")
        || back.starts_with("/search?")
        || back == "/users")
        && !back.contains("//")
        && !back.contains('\\')
        && back.len() <= 512
}

/// `POST /lang`: the user's language, then back to the page.
pub(super) async fn language(
    State(ws): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = viewer(&ws, &headers).await?;
    let f = fields(form_text(&body)?, &["csrf", "lang", "back"])?;
    v.check_csrf(f.get("csrf"))?;
    let lang = f
        .get("lang")
        .and_then(|l| Lang::parse(l))
        .ok_or_else(|| PageError::BadRequest("`lang` must be en or bn".into()))?;
    ws.api
        .store()
        .set_user_lang(v.session.user.id, lang.as_str())
        .await
        .map_err(store_err)?;
    let back = f
        .get("back")
        .map(String::as_str)
        .filter(|b| local_page(b))
        .unwrap_or("/fleet");
    Ok(Redirect::to(back).into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_dashboard_pages_are_gone_back_to() {
        use super::local_page;
        assert!(local_page("/fleet?level=division&name=Dhaka"));
        assert!(local_page("/devices/savar-1?day=2026-11-01"));
        assert!(local_page("/search?q=savar&page=2"));
        assert!(local_page("/users"));
        for bad in [
            "https://evil.example/",
            "//evil.example",
            "/fleet//x",
            "/api/v1/devices",
            "/devices/\\\\x",
        ] {
            assert!(!local_page(bad), "{bad}");
        }
    }
}
