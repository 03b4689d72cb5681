//! The frame of every dashboard page (maud: every interpolation is escaped):
//! the header with the language switch and sign-out (each a form carrying
//! the session's form token), the embedded stylesheet, and the plain message
//! page that page errors answer with.

use super::i18n::{Lang, T, tr};
use super::session::{PageError, Viewer};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};

/// The stylesheet, served at [`CSS_PATH`] (no CDN, nothing fetched).
pub const CSS: &str = include_str!("app.css");
pub const CSS_PATH: &str = "/static/app.css";

/// `GET /static/app.css`.
pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// A whole page.
pub fn page(lang: Lang, title: &str, viewer: Option<&Viewer>, back: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.as_str()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (tr(lang, T::Title)) }
                link rel="stylesheet" href=(CSS_PATH);
            }
            body {
                header {
                    a.brand href="/fleet" { (tr(lang, T::Title)) }
                    @if let Some(v) = viewer {
                        a href="/fleet" { (tr(lang, T::Fleet)) }
                        a href=(super::urls::REPORTS_PATH) { (tr(lang, T::Reports)) }
                        form.search method="get" action="/search" role="search" {
                            input type="search" name="q" maxlength="100" aria-label=(tr(lang, T::Search)) placeholder=(tr(lang, T::Search));
                        }
                        @if v.session.user.role == crate::collector::model::Role::Admin {
                            a href="/users" { (tr(lang, T::Users)) }
                        }
                        span { (v.session.user.name) }
                        form method="post" action="/lang" {
                            input type="hidden" name="csrf" value=(v.csrf());
                            input type="hidden" name="lang" value=(lang.other().as_str());
                            input type="hidden" name="back" value=(back);
                            button type="submit" lang=(lang.other().as_str()) { (tr(lang.other(), T::LangName)) }
                        }
                        form method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(v.csrf());
                            button type="submit" { (tr(lang, T::SignOut)) }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page saying `text` (errors).
pub fn message_page(lang: Lang, text: &str) -> Markup {
    page(
        lang,
        text,
        None,
        "/fleet",
        html! { p.error { (text) } p { a href="/fleet" { (tr(lang, T::Fleet)) } } },
    )
}

/// Page errors answer with the message page (or send to sign-in).
impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let lang = Lang::En;
        let (status, text) = match self {
            PageError::SignIn { expired } => {
                let to = if expired {
                    "/signin?expired=1"
                } else {
                    "/signin"
                };
                return Redirect::to(to).into_response();
            }
            PageError::BadRequest(why) => (
                StatusCode::BAD_REQUEST,
                format!("{}: {why}", tr(lang, T::BadRequest)),
            ),
            PageError::NotFound => (StatusCode::NOT_FOUND, tr(lang, T::NotFound).to_string()),
            PageError::Forged => (
                StatusCode::FORBIDDEN,
                "this form has expired or did not come from this page: reload and try again"
                    .to_string(),
            ),
            PageError::Busy => (
                StatusCode::SERVICE_UNAVAILABLE,
                "too many reports are being made at once: try again in a moment".to_string(),
            ),
            PageError::Store(why) => {
                tracing::warn!(error = %why, "dashboard: store failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the database is not answering: try again shortly".to_string(),
                )
            }
        };
        (status, message_page(lang, &text)).into_response()
    }
}
