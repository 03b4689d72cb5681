//! The web dashboard the collector serves (feature `collector`): sign-in
//! with users and server-side sessions, "fleet now" by branch of the
//! hierarchy, and a device's page with its day timeline drawn as SVG.
//! Server-rendered HTML (maud, which escapes every interpolation), one
//! embedded stylesheet and no script; English and Bangla per user, times in
//! Asia/Dhaka.
//!
//! Inside: the pure parts ([`i18n`], [`limit`], [`now`], [`svg`]), users
//! and passwords ([`users`]), sessions, form tokens and the checked query
//! strings ([`session`]), the page frame ([`layout`]), every device's state
//! now from bulk reads ([`states`]), the week's worst offices and the open
//! alerts ([`week`]), search ([`search`]), the reports page and its CSV
//! ([`reports`]), the users' admin page ([`admin`]),
//! then one module of handlers per page; this file routes to them and bounds every request
//! (body size, time) and sets the security headers of every answer.
//! Readers see what an API token with the same role and branch would see
//! (the same [`Access`](crate::collector::access::Access) rules; a device
//! outside the branch is 404), and the figures come from the same code as
//! the API and CLI.

pub mod admin;
mod device;
mod fleet;
pub mod i18n;
pub mod layout;
pub mod limit;
pub mod now;
pub mod reports;
pub mod search;
pub mod session;
mod signin;
pub mod states;
pub mod svg;
pub mod urls;
pub mod users;
pub mod week;

use crate::collector::http::ApiState;
use crate::collector::last_seen::Silence;
use crate::config::collector::CollectorConfig;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest form body accepted (bytes).
pub const MAX_FORM_BYTES: usize = 8 * 1024;
/// Longest a page may take before it answers 503.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// The dashboard's settings.
#[derive(Debug, Clone)]
pub struct WebOptions {
    /// Mark cookies `Secure` (the collector serves HTTPS).
    pub secure_cookies: bool,
    pub session_ttl: Duration,
    /// When a device counts as silent (as `linkwatch device list` says).
    pub silence: Silence,
    pub limits: limit::Limits,
    pub page_timeout: Duration,
}

impl WebOptions {
    /// The settings `cfg` implies: Secure cookies when it serves TLS, its
    /// upload interval and grace.
    pub fn for_config(cfg: &CollectorConfig) -> Self {
        let (interval_ms, grace_ms) = cfg.silence_ms();
        WebOptions {
            secure_cookies: cfg.tls().is_some(),
            session_ttl: SESSION_TTL,
            silence: Silence {
                interval_ms,
                grace_ms,
            },
            limits: limit::Limits::default(),
            page_timeout: PAGE_TIMEOUT,
        }
    }
}

/// What the dashboard's handlers share.
#[derive(Clone)]
pub struct WebState {
    pub(crate) api: ApiState,
    pub(crate) opts: Arc<WebOptions>,
    pub(crate) attempts: Arc<Mutex<limit::Attempts>>,
    /// What each device's last state-setting records said (the fleet pages).
    pub(crate) said: Arc<tokio::sync::Mutex<states::SaidCache>>,
    /// The week's worst offices per branch (the fleet page).
    pub(crate) week: Arc<Mutex<week::WeekCache>>,
    /// Turns to make a report ([`reports::CONCURRENT`] at once).
    pub(crate) reports: Arc<tokio::sync::Semaphore>,
    /// Reports made lately ([`reports::KEEP_MS`]).
    pub(crate) made: Arc<Mutex<reports::Made>>,
    /// Places for reports in the making ([`reports::QUEUED`]).
    pub(crate) queued: Arc<tokio::sync::Semaphore>,
    /// Reports in the making, by key: one making each, the others wait.
    pub(crate) making: Arc<Mutex<std::collections::HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    /// The offices the reports page names, with the catalog version read.
    pub(crate) offices: Arc<Mutex<reports::OfficesRead>>,
    /// When a signed-in page was last asked for (Unix ms; 0: never since
    /// the start): reports are made ahead only while the dashboard is used.
    pub(crate) last_view_ms: Arc<std::sync::atomic::AtomicI64>,
}

impl WebState {
    fn attempts(&self) -> std::sync::MutexGuard<'_, limit::Attempts> {
        self.attempts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The dashboard's routes, on the API's state (merge with
/// [`crate::collector::http::router`]).
pub fn router(api: ApiState, opts: WebOptions) -> Router {
    routes(web_state(api, opts))
}

/// [`router`], and a task that reads the whole fleet's states and the
/// week's worst offices once, in the background: the first view after a
/// start then finds them read instead of reading every device's records
/// itself (tens of seconds at 100,000 devices). The same task then makes
/// the reports page's default reports ahead ([`reports::premake`]): at
/// start, and every [`PREMAKE_EVERY`] while the dashboard is in use (a
/// page viewed within [`IN_USE_MS`]). Call within the runtime.
pub fn router_warmed(api: ApiState, opts: WebOptions) -> Router {
    let state = web_state(api, opts);
    tokio::spawn(warm_up(state.clone()));
    routes(state)
}

async fn warm_up(ws: WebState) {
    let all = crate::collector::access::Access {
        token: "dashboard warm-up".into(),
        role: crate::collector::model::Role::Admin,
        branch: None,
    };
    let started = std::time::Instant::now();
    match states::states(&ws, &all).await {
        Ok((devices, _)) => {
            week::worst(&ws, &all, crate::collector::last_seen::now_ms()).await;
            tracing::info!(
                devices = devices.len(),
                took_ms = started.elapsed().as_millis() as u64,
                "dashboard: the fleet's states are read"
            );
        }
        Err(e) => tracing::warn!("dashboard: reading the fleet's states at start: {e:?}"),
    }
    let mut first = true;
    loop {
        let now = crate::collector::last_seen::now_ms();
        let viewed = ws.last_view_ms.load(std::sync::atomic::Ordering::Relaxed);
        if first || now - viewed < IN_USE_MS {
            reports::premake(&ws).await;
        }
        first = false;
        tokio::time::sleep(PREMAKE_EVERY).await;
    }
}

/// How often the default reports are made again while the dashboard is in
/// use: under [`reports::KEEP_MS`], so the one kept never lapses.
const PREMAKE_EVERY: Duration = Duration::from_secs(4 * 60);
/// The dashboard is in use while a page was viewed within this.
const IN_USE_MS: i64 = 30 * 60_000;

fn web_state(api: ApiState, opts: WebOptions) -> WebState {
    WebState {
        api,
        opts: Arc::new(opts),
        attempts: Arc::default(),
        said: Arc::default(),
        week: Arc::default(),
        reports: Arc::new(tokio::sync::Semaphore::new(reports::CONCURRENT)),
        made: Arc::default(),
        queued: Arc::new(tokio::sync::Semaphore::new(reports::QUEUED)),
        making: Arc::default(),
        offices: Arc::default(),
        last_view_ms: Arc::default(),
    }
}

fn routes(state: WebState) -> Router {
    let timeout = state.opts.page_timeout;
    Router::new()
        .route("/", get(|| async { Redirect::to("/fleet") }))
        .route("/signin", get(signin::form).post(signin::submit))
        .route("/signout", post(signin::signout))
        .route("/lang", post(signin::language))
        .route("/fleet", get(fleet::page))
        .route("/devices/{name}", get(device::page))
        .route("/search", get(search::page))
        .route(reports::PATH, get(reports::page))
        .route(reports::CSV_PATH, get(reports::csv))
        .route(admin::USERS_PATH, get(admin::page))
        .route(admin::ADD_PATH, post(admin::add))
        .route(admin::REMOVE_PATH, post(admin::remove))
        .route(admin::PASSWORD_PATH, post(admin::password))
        .route(layout::CSS_PATH, get(layout::css))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            bounded(req, next, timeout)
        }))
        .with_state(state)
}

/// Every answer within `timeout` (else 503) and with the security headers:
/// no script, styles and images from here only, no framing, no caching of
/// pages, no referrer.
async fn bounded(req: Request, next: Next, timeout: Duration) -> Response {
    let mut resp = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("dashboard: a page took longer than {timeout:?}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "the page took too long: try again",
            )
                .into_response()
        }
    };
    let h = resp.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
    ];
    for (k, v) in set {
        h.insert(k, HeaderValue::from_static(v));
    }
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    resp
}
