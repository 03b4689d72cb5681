//! The admin page of dashboard users (`/users`, admins only; anyone else
//! gets 404, as for a page that does not exist): the users with their role,
//! branch and language, a form to add one (the checks of `linkwatch user
//! add`: name, password length, a branch that exists) and a button to
//! remove each (its sessions end at once; not oneself), and a form to
//! give one a new password (its sessions end too). Every form carries
//! the session's form token; a refusal re-shows the page with the reason.

use super::WebState;
use super::fleet::level_word;
use super::i18n::{Lang, T, time, tr};
use super::layout::page as frame;
use super::session::{PageError, Viewer, fields, form_text, store_err, viewer};
use super::users::{AddUserError, MAX_NAME, MAX_PASSWORD, add_user, set_password};
use crate::collector::last_seen::now_ms;
use crate::collector::model::{Level, Role};
use crate::collector::store::StoreError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};

pub const USERS_PATH: &str = "/users";
pub const ADD_PATH: &str = "/users/add";
pub const REMOVE_PATH: &str = "/users/remove";
pub const PASSWORD_PATH: &str = "/users/password";

/// The signed-in admin, or 404 for anyone else.
async fn admin(ws: &WebState, headers: &HeaderMap) -> Result<Viewer, PageError> {
    let v = viewer(ws, headers).await?;
    if v.session.user.role != Role::Admin {
        return Err(PageError::NotFound);
    }
    Ok(v)
}

fn role_word(lang: Lang, r: Role) -> &'static str {
    tr(
        lang,
        match r {
            Role::Admin => T::RoleAdmin,
            Role::Read => T::RoleRead,
        },
    )
}

/// The page, with `said` (a refusal or what was done) above the table.
async fn users_page(
    ws: &WebState,
    v: &Viewer,
    said: Option<(bool, String)>,
) -> Result<Markup, PageError> {
    let lang = v.lang;
    let users = ws.api.store().list_users().await.map_err(store_err)?;
    let body = html! {
        h1 { (tr(lang, T::Users)) }
        @if let Some((ok, text)) = &said {
            p class=(if *ok { "done" } else { "error" }) role="status" { (text) }
        }
        div.wide { table {
            thead { tr {
                th { (tr(lang, T::UserName)) } th { (tr(lang, T::Role)) } th { (tr(lang, T::Branch)) }
                th { (tr(lang, T::Language)) } th { (tr(lang, T::Created)) } th {}
            } }
            tbody {
                @for u in &users {
                    tr data-user=(u.name) {
                        td { (u.name) }
                        td { (role_word(lang, u.role)) }
                        td { @match &u.branch {
                            Some(b) => { (level_word(lang, b.level)) ": " (b.name) },
                            None => (tr(lang, T::Whole)),
                        } }
                        td { (u.lang) }
                        td { (time(lang, u.created_at_ms)) }
                        td { @if u.id != v.session.user.id {
                            form method="post" action=(REMOVE_PATH) {
                                input type="hidden" name="csrf" value=(v.csrf());
                                input type="hidden" name="name" value=(u.name);
                                button type="submit" { (tr(lang, T::Remove)) }
                            }
                        } }
                    }
                }
            }
        } }
        h2 { (tr(lang, T::SetPassword)) }
        form.add.password method="post" action=(PASSWORD_PATH) {
            input type="hidden" name="csrf" value=(v.csrf());
            label { (tr(lang, T::UserName)) select name="name" {
                @for u in &users { option value=(u.name) { (u.name) } }
            } }
            label { (tr(lang, T::Password)) input name="password" type="password" required minlength="12" maxlength=(MAX_PASSWORD) autocomplete="new-password"; }
            button type="submit" { (tr(lang, T::SetPassword)) }
        }
        h2 { (tr(lang, T::AddUser)) }
        form.add method="post" action=(ADD_PATH) {
            input type="hidden" name="csrf" value=(v.csrf());
            label { (tr(lang, T::UserName)) input name="name" required maxlength=(MAX_NAME) autocomplete="off"; }
            label { (tr(lang, T::Password)) input name="password" type="password" required minlength="12" maxlength=(MAX_PASSWORD) autocomplete="new-password"; }
            label { (tr(lang, T::Role)) select name="role" {
                option value="read" { (role_word(lang, Role::Read)) }
                option value="admin" { (role_word(lang, Role::Admin)) }
            } }
            label { (tr(lang, T::Branch)) select name="level" {
                option value="" { (tr(lang, T::Whole)) }
                @for l in Level::ALL { option value=(l.as_str()) { (level_word(lang, l)) } }
            } }
            label { (tr(lang, T::BranchName)) input name="branch" maxlength="300"; }
            button type="submit" { (tr(lang, T::AddUser)) }
        }
    };
    Ok(frame(lang, tr(lang, T::Users), Some(v), USERS_PATH, body))
}

/// `GET /users`.
pub(super) async fn page(
    State(ws): State<WebState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let v = admin(&ws, &headers).await?;
    Ok(users_page(&ws, &v, None).await?.into_response())
}

/// The page again with a refusal, answered 400.
async fn refused(ws: &WebState, v: &Viewer, why: String) -> Result<Response, PageError> {
    Ok((
        StatusCode::BAD_REQUEST,
        users_page(ws, v, Some((false, why))).await?,
    )
        .into_response())
}

/// `POST /users/add`.
pub(super) async fn add(
    State(ws): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = admin(&ws, &headers).await?;
    let f = fields(
        form_text(&body)?,
        &["csrf", "name", "password", "role", "level", "branch"],
    )?;
    v.check_csrf(f.get("csrf"))?;
    let get = |k: &str| f.get(k).map(String::as_str).unwrap_or("");
    let Some(role) = Role::parse(get("role")) else {
        return refused(&ws, &v, "`role` must be read or admin".into()).await;
    };
    let branch = match (get("level").trim(), get("branch").trim()) {
        ("", "") => None,
        ("", _) => {
            return refused(
                &ws,
                &v,
                "choose the branch's level, or leave its name empty".into(),
            )
            .await;
        }
        (level, name) => match Level::parse(level) {
            Some(_) if name.is_empty() => {
                return refused(&ws, &v, "name the branch (for an office, its code)".into()).await;
            }
            Some(l) => Some((l, name)),
            None => {
                return refused(
                    &ws,
                    &v,
                    "`level` must be division, district, upazila or office".into(),
                )
                .await;
            }
        },
    };
    let name = get("name").trim();
    match add_user(
        ws.api.store().as_ref(),
        name,
        role,
        branch,
        get("password"),
        now_ms(),
    )
    .await
    {
        Ok(u) => {
            tracing::info!(by = %v.session.user.name, user = %u.name, "dashboard: user added");
            Ok(Redirect::to(USERS_PATH).into_response())
        }
        Err(AddUserError::Store(StoreError::UserExists(n))) => {
            refused(&ws, &v, format!("a user named `{n}` already exists")).await
        }
        Err(AddUserError::Store(e)) => Err(store_err(e)),
        Err(AddUserError::Branch(b)) => {
            refused(&ws, &v, format!("{}: {}", b.level, b.message)).await
        }
        Err(e) => refused(&ws, &v, e.to_string()).await,
    }
}

/// `POST /users/remove`.
pub(super) async fn remove(
    State(ws): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = admin(&ws, &headers).await?;
    let f = fields(form_text(&body)?, &["csrf", "name"])?;
    v.check_csrf(f.get("csrf"))?;
    let name = f.get("name").map(String::as_str).unwrap_or("");
    if name == v.session.user.name {
        return refused(
            &ws,
            &v,
            "you cannot remove yourself: ask another admin".into(),
        )
        .await;
    }
    if !ws.api.store().remove_user(name).await.map_err(store_err)? {
        return Err(PageError::NotFound);
    }
    tracing::info!(by = %v.session.user.name, user = %name, "dashboard: user removed");
    Ok(Redirect::to(USERS_PATH).into_response())
}

/// `POST /users/password`: a new password for a user; its sessions end
/// (an admin's own included: they sign in again with it).
pub(super) async fn password(
    State(ws): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let v = admin(&ws, &headers).await?;
    let f = fields(form_text(&body)?, &["csrf", "name", "password"])?;
    v.check_csrf(f.get("csrf"))?;
    let name = f.get("name").map(String::as_str).unwrap_or("");
    let pw = f.get("password").map(String::as_str).unwrap_or("");
    match set_password(ws.api.store().as_ref(), name, pw).await {
        Ok(true) => {
            tracing::info!(by = %v.session.user.name, user = %name, "dashboard: password set");
            Ok(Redirect::to(USERS_PATH).into_response())
        }
        Ok(false) => Err(PageError::NotFound),
        Err(AddUserError::Store(e)) => Err(store_err(e)),
        Err(e) => refused(&ws, &v, e.to_string()).await,
    }
}
