//! The dashboard over loopback HTTP for the dashboard tests: the collector's
//! whole router (API and dashboard) on an ephemeral port with the peer's
//! address known, a small browser that keeps cookies and never follows
//! redirects, and readers of what the pages show.

use linkwatch::collector::http::{self as api, ApiOptions, ApiState};
use linkwatch::collector::store::Store;
use linkwatch::collector::web::{self, WebOptions};
use linkwatch::config::collector::CollectorConfig;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub struct Web {
    pub base: String,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The dashboard's settings as the embedded default config gives them.
pub fn default_options() -> WebOptions {
    WebOptions::for_config(&CollectorConfig::embedded())
}

/// Serve the collector's API and dashboard on `store`.
pub async fn serve(store: Arc<dyn Store>, opts: WebOptions) -> Web {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cfg = CollectorConfig::embedded();
    let state = ApiState::new(
        store,
        ApiOptions {
            max_body_bytes: cfg.collector.max_body_bytes,
            max_inflight: cfg.collector.max_inflight,
            holidays: Default::default(),
        },
    );
    let app = api::router(state.clone()).merge(web::router(state, opts));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Web {
        base: format!("http://{addr}"),
        _stop: tx,
    }
}

/// One answer.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookies: Vec<String>,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Page {
    /// The value of the first `name="csrf"` field.
    pub fn csrf(&self) -> String {
        between(&self.text, "name=\"csrf\" value=\"", "\"")
            .unwrap_or_else(|| panic!("no csrf field in {}", self.text))
    }
    /// The text of the page's error line, if any.
    pub fn error(&self) -> Option<String> {
        between(&self.text, "role=\"alert\">", "</p>")
    }
    /// A fleet page's count of `state` (`online`, ..., `total`).
    pub fn count(&self, state: &str) -> String {
        between(&self.text, &format!("data-count=\"{state}\"><b>"), "</b>")
            .unwrap_or_else(|| panic!("no count {state} in {}", self.text))
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    }
}

/// The text between the first `start` and the next `end`.
pub fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let i = text.find(start)? + start.len();
    let j = text[i..].find(end)? + i;
    Some(text[i..j].to_string())
}

/// A client that keeps cookies by name and follows no redirect.
pub struct Browser {
    client: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(web: &Web) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            base: web.base.clone(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = if self.cookies.is_empty() {
            req
        } else {
            req.header("cookie", self.cookie_header())
        };
        let resp = req.send().await.unwrap();
        let headers = resp.headers().clone();
        let set_cookies: Vec<String> = headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap();
            let (k, v) = first.split_once('=').unwrap();
            if c.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
        }
        Page {
            status: resp.status().as_u16(),
            location: headers
                .get("location")
                .map(|v| v.to_str().unwrap().to_string()),
            set_cookies,
            headers,
            text: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// POST a form (`application/x-www-form-urlencoded`).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = serde_urlencoded::to_string(form).unwrap();
        self.post_raw(path, body).await
    }

    pub async fn post_raw(&mut self, path: &str, body: String) -> Page {
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(req).await
    }

    /// Open the sign-in page and submit `name` and `password` with its token.
    pub async fn sign_in(&mut self, name: &str, password: &str) -> Page {
        let form = self.get("/signin").await;
        assert_eq!(form.status, 200, "{}", form.text);
        let csrf = form.csrf();
        self.post(
            "/signin",
            &[("csrf", &csrf), ("name", name), ("password", password)],
        )
        .await
    }
}
